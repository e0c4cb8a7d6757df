import { expect } from "chai";
import path from "node:path";
import { loadModel } from "../../editor/index.js";
import { evaluateSynthetic } from "../../src/bench/evaluate-synthetic.js";
import { loadSyntheticSuite } from "../../src/bench/synthetic-suite.js";
import { BASELINE_MODEL, BUNDLED_MODEL } from "../../src/paths.js";
import { ROOT } from "../helpers.js";

describe("bundled editors, evaluated on a held-out slice", function () {
  this.timeout(300_000);

  it("the reward-conditioned default at 5,5,5 follows more and preserves better than the no-reward baseline", async () => {
    const suite = await loadSyntheticSuite(path.join(ROOT, "models", "heldout"), 42);
    const mrc = await loadModel(BUNDLED_MODEL);
    const base = await loadModel(BASELINE_MODEL);
    try {
      const a = await evaluateSynthetic(mrc, suite, { rewards: [5, 5, 5], seed: 1000 });
      const b = await evaluateSynthetic(base, suite, { seed: 1000 });
      const show = (r: typeof a) => `follow ${(100 * r.overall.following).toFixed(1)} %, pres ${r.overall.preservationError!.toFixed(4)}, qual ${r.overall.qualityError.toFixed(4)}`;
      console.log(`      default ${show(a)}\n      baseline ${show(b)}`);
      expect(a.overall.following).to.be.at.least(b.overall.following);
      expect(a.overall.preservationError!).to.be.below(b.overall.preservationError!);
      expect(a.perKind.background.following).to.be.at.least(0.9);
    } finally {
      await mrc.dispose();
      await base.dispose();
    }
  });

  it("the preservation slider: lower preservation levels change more outside the region", async () => {
    const suite = await loadSyntheticSuite(path.join(ROOT, "models", "heldout"), 24);
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
