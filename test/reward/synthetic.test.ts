import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { scoreSynthetic } from "../../reward/local/synthetic.js";
import { loadSyntheticSuite } from "../../src/benchmark/synthetic-suite.js";
import { ROOT } from "../helpers.js";

describe("exact scoring of synthetic scenes", () => {
  for (const [name, dir, presTol] of [
    ["v1 held-out scenes", "heldout", 1e-3],
    // v2 objects have soft (anti-aliased) edges, which a background edit tints a little
    ["v2 held-out scenes", "heldout-v2/scenes", 1e-2],
    ["v2 held-out shapes", "heldout-v2/shapes", 1e-2],
    ["v2 held-out backdrops", "heldout-v2/backdrops", 1e-2],
    ["v2 held-out colour/backdrop pairs", "heldout-v2/pairs", 1e-2],
  ] as const)
  it(`${name}: the true target follows every instruction with zero error; the unchanged source follows none`, async () => {
    const suite = await loadSyntheticSuite(path.join(ROOT, "models", dir));
    // every record of the suite's file is loaded as a case
    const records = readFileSync(path.join(ROOT, "models", dir, "scenes.jsonl"), "utf8").trim().split("\n");
    expect(suite.cases.map((c) => c.record.id)).to.deep.equal(records.map((l) => JSON.parse(l).id));
    const failures: string[] = [];
    for (const c of suite.cases) {
      const t = scoreSynthetic(c, c.target, suite.palette);
      if (!t.following) failures.push(`${c.record.id} ${c.record.instruction}`);
      expect(t.qualityError).to.equal(0);
      // preservation is judged outside the edit's region; an edit of the whole image has no outside
      if (c.region.every((v) => v)) expect(t.preservationError, c.record.id).to.equal(null);
      else expect(t.preservationError, c.record.id).to.be.a("number").and.below(presTol); // shadow tails below the region threshold
      const s = scoreSynthetic(c, c.source, suite.palette);
      expect(s.following, `${c.record.id} unchanged source should not follow "${c.record.instruction}"`).to.equal(false);
    }
    expect(failures).to.deep.equal([]);
  });
});
