import { expect } from "chai";
import path from "node:path";
import { scoreSynthetic } from "../../reward/local/synthetic.js";
import { loadSyntheticSuite } from "../../src/bench/synthetic-suite.js";
import { ROOT } from "../helpers.js";

describe("exact scoring of synthetic scenes", () => {
  it("the true target follows every instruction with zero error; the unchanged source follows none", async () => {
    const suite = await loadSyntheticSuite(path.join(ROOT, "models", "heldout"));
    expect(suite.cases.length).to.be.greaterThan(200);
    const failures: string[] = [];
    for (const c of suite.cases) {
      const t = scoreSynthetic(c, c.target, suite.palette);
      if (!t.following) failures.push(`${c.record.id} ${c.record.instruction}`);
      expect(t.qualityError).to.equal(0);
      if (t.preservationError !== null) expect(t.preservationError).to.be.below(1e-3); // shadow tails below the region threshold
      const s = scoreSynthetic(c, c.source, suite.palette);
      expect(s.following, `${c.record.id} unchanged source should not follow "${c.record.instruction}"`).to.equal(false);
    }
    expect(failures).to.deep.equal([]);
  });
});
