import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT, tempDir } from "../helpers.js";

const MOCHA = path.join(ROOT, "node_modules", ".bin", "mocha");

describe("the suite's own hygiene", function () {
  this.timeout(60_000);

  it("a developer can run one test file alone (.mocharc.json names no spec)", () => {
    const r = spawnSync(MOCHA, [path.join(ROOT, "dist", "test", "editor", "multistep-golden.test.js")], { cwd: ROOT, encoding: "utf8" });
    expect(r.status, r.stderr).to.equal(0);
    const passing = Number(/(\d+) passing/.exec(r.stdout)?.[1]);
    const its = (r.stdout.match(/✔/g) ?? []).length;
    expect(passing).to.equal(its);
    expect(r.stdout).to.contain("multistep samplers reproduce diffusers");
    expect(r.stdout).to.not.contain("HTTP service");
  });

  it("the caller's judge, OpenAI, Redis and ORT settings do not reach the tests", () => {
    const dir = tempDir();
    const probe = path.join(dir, "probe.test.mjs");
    writeFileSync(
      probe,
      `import assert from "node:assert";
it("sees a clean environment", () => {
  for (const k of ["REWARD_EDIT_JUDGE_MODEL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "REDIS_URL", "ORT_THREADS", "REWARD_EDIT_WORKERS"]) assert.strictEqual(process.env[k], undefined, k);
  assert.strictEqual(process.env.REWARD_EDIT_SKIP_PROVISION, "1");
});
`,
    );
    const env = { ...process.env, REWARD_EDIT_JUDGE_MODEL: "gpt-4o", OPENAI_API_KEY: "sk-leak", OPENAI_BASE_URL: "http://127.0.0.1:9", REDIS_URL: "redis://127.0.0.1:1", ORT_THREADS: "7", REWARD_EDIT_WORKERS: "3", REWARD_EDIT_SKIP_PROVISION: "1" };
    const r = spawnSync(MOCHA, [probe], { cwd: ROOT, encoding: "utf8", env });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.contain("1 passing");
  });
});
