import { expect } from "chai";
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type ResultRow, readRows } from "../../src/benchmark/results.js";
import { PHOTOS, ROOT, TINY, TINY_NO_REWARDS, runCli, tempDir } from "../helpers.js";

const PRESETS = JSON.parse(readFileSync(path.join(ROOT, "src", "presets", "presets.json"), "utf8")) as Record<string, { rewards: number[]; steps?: number; text_guidance?: number; image_guidance?: number }>;
const TINY_DEFAULTS = JSON.parse(readFileSync(path.join(TINY, "reward-edit.json"), "utf8")).defaults as { steps: number; text_guidance: number; image_guidance: number };
const report = (dir: string) => JSON.parse(readFileSync(path.join(dir, "report.json"), "utf8"));
/** Following as the report defines it: % of scored following answers that are yes. */
const following = (rows: ResultRow[]) => {
  const scored = rows.filter((r) => r.scores?.following.status === "scored" && r.scores.following.yes !== undefined);
  return scored.length ? (100 * scored.filter((r) => r.scores!.following.yes).length) / scored.length : null;
};

describe("bench options: presets, --compare, --suite real-edit, merging only matching shards", function () {
  this.timeout(180_000);

  it("--preset best,bold,draft: one group per preset, each edit made with that preset's values from presets.json", async () => {
    const out = path.join(tempDir(), "presets");
    const r = await runCli(["bench", "--suite", "sample", "--model", TINY, "--limit", "2", "--preset", "best,bold,draft", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    const rows = readRows(path.join(out, "results.jsonl"));
    expect(rows).to.have.length(6);
    for (const name of ["best", "bold", "draft"]) {
      const p = PRESETS[name];
      const mine = rows.filter((x) => x.preset === name);
      expect(mine, name).to.have.length(2);
      for (const row of mine)
        expect(row.settings, name).to.deep.equal({
          rewards: p.rewards,
          steps: p.steps ?? TINY_DEFAULTS.steps,
          textGuidance: p.text_guidance ?? TINY_DEFAULTS.text_guidance,
          imageGuidance: p.image_guidance ?? TINY_DEFAULTS.image_guidance,
          seed: 0,
        });
    }
    expect(report(out).groups.map((g: { group: string }) => g.group)).to.deep.equal(["tiny-editor / best", "tiny-editor / bold", "tiny-editor / draft"]);
    const bad = await runCli(["bench", "--suite", "sample", "--model", TINY, "--preset", "best,shiny", "--out", path.join(tempDir(), "x")]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.contain(`unknown preset "shiny"; known: ${Object.keys(PRESETS).join(", ")}`);
  });

  it("--compare DIR runs both models on the same samples and seeds; the comparison is B minus A from their rows", async () => {
    const out = path.join(tempDir(), "compare");
    const r = await runCli(["bench", "--suite", "sample", "--model", TINY, "--compare", TINY_NO_REWARDS, "--limit", "4", "--steps", "2", "--seeds", "0,1", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    const rows = readRows(path.join(out, "results.jsonl"));
    const a = rows.filter((x) => x.model === "tiny-editor");
    const b = rows.filter((x) => x.model === "tiny-editor-norewards");
    expect([a.length, b.length]).to.deep.equal([8, 8]);
    const pairs = (rs: ResultRow[]) => rs.map((x) => `${x.sample}|${x.seed}`).sort();
    expect(pairs(b)).to.deep.equal(pairs(a));
    // the reward levels reach the model that has reward inputs only
    expect(a.every((x) => JSON.stringify(x.settings!.rewards) === "[5,5,5]")).to.equal(true);
    expect(b.every((x) => x.settings!.rewards === null)).to.equal(true);
    const { comparison } = report(out);
    expect(comparison).to.include({ a: "tiny-editor / best", b: "tiny-editor-norewards / best" });
    const fa = following(a);
    const fb = following(b);
    // the paired difference in % yes on the samples both scored (every one here), with its interval and wins
    const fol = comparison.figures.find((x: { key: string }) => x.key === "following");
    if (fa === null || fb === null) expect(fol).to.equal(undefined);
    else {
      expect(fol.overall.diff).to.be.closeTo(fb - fa, 1e-9);
      expect(fol.overall.ci).to.have.length(2);
      expect(fol.overall.wins.a + fol.overall.wins.b + fol.overall.wins.ties).to.equal(8);
    }
    expect(comparison.pairs).to.equal(8);
    expect(readFileSync(path.join(out, "summary.md"), "utf8")).to.contain("tiny-editor-norewards");
    // bare --compare: the bundled no-reward baseline
    const bare = path.join(tempDir(), "bare");
    expect((await runCli(["bench", "--suite", "sample", "--model", TINY, "--compare", "--limit", "1", "--steps", "1", "--out", bare])).code).to.equal(0);
    expect([...new Set(readRows(path.join(bare, "results.jsonl")).map((x) => x.model))]).to.deep.equal(["tiny-editor", "reward-edit-synthetic-baseline"]);
  });

  it("--suite real-edit --suite-path: a folder in the published format, prefixes parsed defensively", async () => {
    const dir = tempDir("real-edit-");
    mkdirSync(path.join(dir, "imgs"));
    for (const f of ["coffee.png", "chelsea.png"]) copyFileSync(path.join(PHOTOS, f), path.join(dir, "imgs", f));
    const entries = {
      "imgs/coffee.png": ["1. local: make the cup blue", "2) Remove - take away the spoon"],
      "imgs/chelsea.png": ["7.Background: put it on a beach"],
    };
    writeFileSync(path.join(dir, "real_edit_instruct.json"), JSON.stringify(entries));
    const out = path.join(tempDir(), "real");
    const r = await runCli(["bench", "--suite", "real-edit", "--suite-path", dir, "--model", TINY, "--steps", "2", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    const rows = readRows(path.join(out, "results.jsonl"));
    expect(rows.map((x) => [path.relative(dir, x.image), x.category, x.instruction]).sort()).to.deep.equal([
      ["imgs/chelsea.png", "background", "put it on a beach"],
      ["imgs/coffee.png", "local", "make the cup blue"],
      ["imgs/coffee.png", "remove", "take away the spoon"],
    ]);
    expect(report(out)).to.include({ suite: "real-edit", samples: 3 });
    // without --suite-path the data set comes from the Hub (test/hub/pull.test.ts); offline with an
    // empty cache that is one line saying what is missing
    const cache = tempDir();
    const missing = await runCli(["bench", "--suite", "real-edit", "--model", TINY, "--out", path.join(tempDir(), "y")], { HF_HUB_OFFLINE: "1", HF_HUB_CACHE: cache });
    expect(missing.code).to.equal(1);
    expect(missing.stderr.trim()).to.equal(`reward-edit: HF_HUB_OFFLINE=1 and dataset Gstar666/RewardEdit@main is not in the cache ${cache}: pull it once online (or unset HF_HUB_OFFLINE)`);
  });

  it("bench merge refuses shards of different runs, a slice given twice and a missing slice, naming each; a model at another path is the same run", async () => {
    const base = tempDir();
    const common = ["bench", "--suite", "sample", "--model", TINY, "--limit", "3"];
    const run = async (name: string, extra: string[]) => {
      const r = await runCli([...common, ...extra, "--out", path.join(base, name)]);
      expect(r.code, r.stderr).to.equal(0);
      return path.join(base, name);
    };
    const s0 = await run("s0", ["--steps", "2", "--shard", "0/2"]);
    const s1 = await run("s1", ["--steps", "2", "--shard", "1/2"]);
    const other = await run("other", ["--steps", "3", "--shard", "1/2"]);
    const merge = (...dirs: string[]) => runCli(["bench", "merge", "--out", path.join(tempDir(), "m"), ...dirs]);
    const differ = await merge(s0, other);
    expect(differ.code).to.equal(1);
    expect(differ.stderr).to.contain(`${other} was run with other arguments than ${s0}: steps (2 vs 3)`);
    const twice = await merge(s0, s0, s1);
    expect(twice.code).to.equal(1);
    expect(twice.stderr).to.contain("shard 0/2 given twice");
    const short = await merge(s1);
    expect(short.code).to.equal(1);
    expect(short.stderr).to.contain("shard 0/2 missing");
    const ok = await merge(s0, s1);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stderr).to.contain("merged 3 rows from 2 shard(s)");
    // the same model found at another path (another machine's mount) is the same run
    const moved = path.join(tempDir(), "tiny-editor");
    cpSync(TINY, moved, { recursive: true });
    const r = await runCli([...common.map((a) => (a === TINY ? moved : a)), "--steps", "2", "--shard", "1/2", "--out", path.join(base, "moved")]);
    expect(r.code, r.stderr).to.equal(0);
    const elsewhere = await merge(s0, path.join(base, "moved"));
    expect(elsewhere.code, elsewhere.stderr).to.equal(0);
  });
});
