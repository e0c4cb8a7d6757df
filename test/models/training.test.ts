import { expect } from "chai";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { ROOT, runCli, tempDir } from "../helpers.js";

const TRAIN = path.join(ROOT, "models", "train");
const py = (args: string[]) =>
  spawnSync("/usr/bin/python3", args, { cwd: TRAIN, encoding: "utf8", env: { ...process.env, OPENBLAS_NUM_THREADS: "1" } });

describe("training smoke test (Debian python3-torch; proves the trainer runs, not that it converges)", function () {
  this.timeout(120_000);

  it("prepare -> a few editor steps -> export gives a folder `models validate` accepts", async () => {
    const work = tempDir("reward-edit-train-");
    const prep = py(["train.py", "prepare", "--work", work, "--triplets", "64", "--ae-steps", "3", "--threads", "1"]);
    expect(prep.status, prep.stderr).to.equal(0);
    expect(prep.stdout).to.match(/triplets: 64/);
    const ed = py(["train.py", "editor", "--work", work, "--out", path.join(work, "run"), "--steps", "2", "--batch", "4"]);
    expect(ed.status, ed.stderr).to.equal(0);
    const out = path.join(work, "model");
    const ex = py(["export.py", "--checkpoint", path.join(work, "run", "checkpoint.pt"), "--work", work, "--out", out]);
    expect(ex.status, ex.stderr).to.equal(0);
    const v = await runCli(["models", "validate", out]);
    expect(v.code, v.stdout).to.equal(0);
    expect(v.stdout).to.match(/^ok: reward-edit-synthetic .*rewards/);
  });
});
