import { expect } from "chai";
import path from "node:path";
import { loadModel } from "../../editor/index.js";
import { type EvalResult, evaluateSynthetic } from "../../src/bench/evaluate-synthetic.js";
import { loadSyntheticSuite } from "../../src/bench/synthetic-suite.js";
import { BASELINE_MODEL, BUNDLED_MODEL } from "../../src/paths.js";
import { ROOT } from "../helpers.js";

describe("bundled editors, evaluated on a held-out slice", function () {
  this.timeout(300_000);

  it("the reward-conditioned default at 5,5,5 follows more and preserves better than the no-reward baseline (world v2: held-out shapes and colour/backdrop pairs)", async () => {
    const mrc = await loadModel(BUNDLED_MODEL);
    const base = await loadModel(BASELINE_MODEL);
    try {
      const rows: Array<[string, EvalResult, EvalResult]> = [];
      for (const name of ["shapes", "pairs"]) {
        const suite = await loadSyntheticSuite(path.join(ROOT, "models", "heldout-v2", name), 24);
        rows.push([name, await evaluateSynthetic(mrc, suite, { rewards: [5, 5, 5], seed: 1000 }), await evaluateSynthetic(base, suite, { seed: 1000 })]);
      }
      const total = (i: 1 | 2, f: (r: EvalResult) => number) => rows.reduce((a, r) => a + f(r[i]), 0) / rows.length;
      const follow = (i: 1 | 2) => total(i, (r) => r.overall.following);
      const pres = (i: 1 | 2) => total(i, (r) => r.overall.preservationError!);
      for (const [name, a, b] of rows) {
        console.log(`      ${name}: default follow ${(100 * a.overall.following).toFixed(1)} %, pres ${a.overall.preservationError!.toFixed(4)}; baseline ${(100 * b.overall.following).toFixed(1)} %, pres ${b.overall.preservationError!.toFixed(4)}`);
      }
      expect(follow(1)).to.be.at.least(follow(2));
      expect(pres(1)).to.be.below(pres(2));
      // a floor under what the shipped default measured here (64.6 % on this slice), so a broken
      // export or pipeline fails; issue 15's 90 % aim is not met by the shipped weights
      expect(follow(1)).to.be.at.least(0.55);
    } finally {
      await mrc.dispose();
      await base.dispose();
    }
  });

  it("the preservation slider: lower preservation levels change more outside the region", async () => {
    const suite = await loadSyntheticSuite(path.join(ROOT, "models", "heldout-v2", "scenes"), 24);
    const mrc = await loadModel(BUNDLED_MODEL);
    try {
      const hi = await evaluateSynthetic(mrc, suite, { rewards: [5, 5, 5], seed: 1000 });
      const lo = await evaluateSynthetic(mrc, suite, { rewards: [5, 1, 5], seed: 1000 });
      expect(lo.overall.preservationError!).to.be.above(hi.overall.preservationError!);
    } finally {
      await mrc.dispose();
    }
  });
});
