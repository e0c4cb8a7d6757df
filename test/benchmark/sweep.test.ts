import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { ResultRow } from "../../src/benchmark/results.js";
import { readRows } from "../../src/benchmark/results.js";
import { type SweepSummary, sweepPresets, sweepSummaries } from "../../src/benchmark/sweep.js";
import { quantile, ranks, spearman } from "../../src/benchmark/stats.js";
import { BUNDLED_MODEL } from "../../src/paths.js";
import { runCli, tempDir } from "../helpers.js";

/** A sweep row as the runner writes it, with only what the sweep reads. */
function row(sample: string, category: string, perspective: "following" | "preserving" | "quality", level: number, score: number | "unscored" | "failed"): ResultRow {
  const cell = score === "unscored" || score === "failed" ? { status: "unscored" as const } : { status: "scored" as const, score };
  return {
    key: `${sample}|${perspective}|${level}`,
    sample,
    category: category as ResultRow["category"],
    instruction: "i",
    image: "x",
    model: "m",
    preset: `sweep ${perspective}=${level}`,
    seed: 0,
    status: score === "failed" ? "edit_failed" : "ok",
    latency: { editMs: 0, scoreMs: 0 },
    sweep: { perspective, level },
    ...(score === "failed" ? {} : { scores: { following: cell, preserving: cell, quality: cell } }),
  };
}

describe("--sweep: presets, Spearman's rho with average ranks, the stratified bootstrap, the bundled editor", function () {
  this.timeout(150_000);

  it("six presets per perspective, that level at 0..5 and the others at 5", () => {
    const p = sweepPresets(["preserving"]);
    expect(p.map((x) => x.label)).to.deep.equal([0, 1, 2, 3, 4, 5].map((l) => `sweep preserving=${l}`));
    expect(p.map((x) => x.rewards)).to.deep.equal([0, 1, 2, 3, 4, 5].map((l) => [5, l, 5]));
    expect(p[2].sweep).to.deep.equal({ perspective: "preserving", level: 2 });
    expect(sweepPresets(["following", "quality"]).map((x) => x.rewards![0] + x.rewards![2])).to.deep.equal([5, 6, 7, 8, 9, 10, 5, 6, 7, 8, 9, 10]);
  });

  it("Spearman's rho by hand: ties share their mean rank; no variance is undefined, not 0", () => {
    expect(ranks([3, 1, 2, 2])).to.deep.equal([4, 1, 2.5, 2.5]);
    // ranks x 1.5 1.5 3.5 3.5 5.5 5.5, y 1 2.5 2.5 5 5 5: sum dxdy 13, sum dx^2 16, sum dy^2 15
    expect(spearman([0, 0, 1, 1, 2, 2], [1, 2, 2, 3, 3, 3])).to.be.closeTo(13 / Math.sqrt(16 * 15), 1e-12);
    expect(spearman([0, 1, 2, 3], [9, 7, 5, 1])).to.equal(-1);
    expect(spearman([0, 1, 2], [4, 4, 4])).to.equal(null);
    expect(spearman([1], [1])).to.equal(null);
    expect(quantile([1, 2, 3, 4, 5], 0.5)).to.equal(3);
    expect(quantile([0, 10], 0.025)).to.be.closeTo(0.25, 1e-12);
  });

  it("the bootstrap resamples whole samples within each category: exact figures where every draw agrees; seeded and reproducible", () => {
    // score = level for every sample: every resample has rho 1 and the level means exactly
    const exact = ["a", "b", "c"].flatMap((s, i) => [0, 1, 2, 3, 4, 5].map((l) => row(s, i < 2 ? "local" : "global", "quality", l, l)));
    const [q] = sweepSummaries(exact, { samples: 200, seed: 1 });
    expect(q).to.deep.include({ model: "m", perspective: "quality", rows: 18, scored: 18, bootstrap: { samples: 200, seed: 1 } });
    expect(q.rho).to.deep.equal({ value: 1, ci: [1, 1], n: 18 });
    expect(q.levels.map((l) => [l.level, l.value, l.ci, l.n])).to.deep.equal([0, 1, 2, 3, 4, 5].map((l) => [l, l, [l, l], 3]));

    // noisy: a sample that ignores the slider, one that follows it, one that goes against it; unscored and failed rows counted, unused
    const curves: Record<string, (l: number) => number> = { flat: () => 3, up: (l) => l, down: (l) => 5 - l / 2, up2: (l) => l / 2, late: (l) => (l > 3 ? 4 : 1), early: (l) => (l > 1 ? 2 : 0) };
    const noisy = [
      ...Object.entries(curves).flatMap(([name, f], i) => [0, 1, 2, 3, 4, 5].map((l) => row(name, i % 2 ? "global" : "local", "following", l, f(l)))),
      row("lost", "global", "following", 2, "unscored"),
      row("lost", "global", "following", 3, "failed"),
    ];
    const a = sweepSummaries(noisy)[0];
    const b = sweepSummaries(noisy)[0];
    expect(a).to.deep.equal(b);
    expect(a).to.deep.include({ rows: 38, scored: 36, bootstrap: { samples: 2000, seed: 0 } });
    const x = noisy.filter((r) => r.scores && r.status === "ok" && r.scores.following.status === "scored");
    expect(a.rho.value).to.be.closeTo(spearman(x.map((r) => r.sweep!.level), x.map((r) => r.scores!.following.score!))!, 1e-12);
    expect(a.rho.ci![0]).to.be.below(a.rho.value!);
    expect(a.rho.ci![1]).to.be.above(a.rho.value!);
    expect(a.rho.ci![0]).to.be.at.least(-1);
    expect(a.rho.ci![1]).to.be.at.most(1);
    // another seed, other draws
    const c = sweepSummaries(noisy, { seed: 7 })[0];
    expect(c.rho.value).to.equal(a.rho.value);
    expect(c.rho.ci).to.not.deep.equal(a.rho.ci);
    // level 0's mean is (3 + 0 + 5 + 0 + 1 + 0) / 6; a resample keeps three samples of each category:
    // local holds 3, 5, 1 at level 0 and global 0, 0, 0, so every draw lies in [(1 * 3) / 6, (5 * 3) / 6]
    expect(a.levels[0].value).to.equal(1.5);
    expect(a.levels[0].ci![0]).to.be.at.least(0.5);
    expect(a.levels[0].ci![1]).to.be.at.most(2.5);
    // a category of one sample is pooled with the other single ones, not redrawn as itself
    const singles = ["a", "b", "c"].flatMap((s, i) => [0, 1, 2, 3, 4, 5].map((l) => row(s, ["local", "global", "add"][i], "quality", l, i === 1 ? 5 - l : l)));
    const pooled = sweepSummaries(singles, { samples: 500 })[0];
    expect(pooled.rho.ci![1] - pooled.rho.ci![0]).to.be.above(0.5);
  });

  it("bench --sweep on the bundled editor with the synthetic suite's exact scorer: rho and its interval per perspective", async () => {
    const out = path.join(tempDir("sweep-"), "run");
    const r = await runCli(["bench", "--suite", "synthetic", "--model", BUNDLED_MODEL, "--sweep", "following,preserving,quality", "--limit", "3", "--steps", "8", "--backend", "local", "--out", out]);
    expect(r.code, r.stderr).to.equal(0);
    const rows = readRows(path.join(out, "results.jsonl"));
    expect(rows).to.have.length(3 * 6 * 3);
    for (const x of rows) {
      const i = ["following", "preserving", "quality"].indexOf(x.sweep!.perspective);
      const want = [5, 5, 5];
      want[i] = x.sweep!.level;
      expect(x.settings!.rewards, x.key).to.deep.equal(want);
      expect(x.preset).to.equal(`sweep ${x.sweep!.perspective}=${x.sweep!.level}`);
      expect(x.scorer!.backend).to.equal("local");
      expect(x.truth, x.key).to.have.property("following");
    }
    const summaries = JSON.parse(readFileSync(path.join(out, "sweep.json"), "utf8")) as SweepSummary[];
    expect(summaries.map((s) => s.perspective)).to.deep.equal(["following", "preserving", "quality"]);
    for (const s of summaries) {
      expect(s).to.deep.include({ model: "reward-edit-synthetic", rows: 18, bootstrap: { samples: 2000, seed: 0 } });
      expect(s.levels.map((l) => l.n)).to.deep.equal([3, 3, 3, 3, 3, 3]);
      const line = r.stdout.split("\n").find((l) => l.startsWith(`reward-edit-synthetic: sweep ${s.perspective}: `));
      expect(line, s.perspective).to.be.a("string");
      if (s.rho.value === null) expect(line).to.contain("Spearman rho n/a");
      else {
        expect(s.rho.value).to.be.within(-1, 1);
        expect(line).to.contain(`Spearman rho ${s.rho.value.toFixed(3)}${s.rho.ci ? ` [${s.rho.ci[0].toFixed(3)}, ${s.rho.ci[1].toFixed(3)}]` : ""}`);
      }
    }
    // what the bundled editor did, for the record
    process.stderr.write(`      ${r.stdout.split("\n").filter((l) => l.includes(": sweep ")).join("\n      ")}\n`);
  });
});
