import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { type EditorModel, RELEVANCE_RULE, type RelevanceView, averageLevels, edit, loadModel, maskFromRelevance, relevanceCore } from "../../editor/index.js";
import type { SyntheticCase } from "../../reward/local/synthetic.js";
import { type SyntheticSuite, loadSyntheticSuite, sourceFile } from "../../src/benchmark/synthetic-suite.js";
import { iou } from "../../benchmarks/evaluation/auto-mask.js";
import { ROOT } from "../helpers.js";

const BUNDLED = path.join(ROOT, "models", "reward-edit-synthetic");
const suiteDir = (s: string) => path.join(ROOT, "models", "heldout-v2", s);

/**
 * The lowest mean IoU per local kind over the scenes below: the whole report half measured 0.73
 * (recolour), 0.91 (background), 0.66 (remove) and 0.62 (add) (docs/product-photos.md); these six
 * per kind measure 0.72, 0.97, 0.75, 0.69. The bounds sit about 0.1 under the report half's means.
 */
const MIN_MEAN_IOU: Record<string, number> = { recolour: 0.6, background: 0.8, remove: 0.55, add: 0.5 };
/** Scenes per kind: the first of the report half (odd-numbered) in the backdrops and scenes suites. */
const PER_KIND = 6;

const rgb = (png: Buffer) => sharp(png).removeAlpha().raw().toBuffer();

describe("auto_mask: the instruction's relevance map from the editor's own UNet (issue 41)", function () {
  this.timeout(60_000);
  let model: EditorModel;
  let suites: SyntheticSuite[];
  before(async () => {
    model = await loadModel(BUNDLED);
    suites = await Promise.all(["backdrops", "scenes"].map((s) => loadSyntheticSuite(suiteDir(s))));
  });
  after(() => model.dispose());

  /** The map's levels for one scene, from a one-step edit (the map does not depend on the steps). */
  const mapOf = async (suite: SyntheticSuite, c: SyntheticCase) => {
    let view: RelevanceView | undefined;
    const r = await edit(model, { image: readFileSync(sourceFile(suite, c.record.id)), instruction: c.record.instruction, seed: 1, steps: 1, autoMask: true, onRelevance: (v) => (view = { ...v, maps: v.maps.map((m) => Float32Array.from(m)) }) });
    return { r, view: view! };
  };
  const casesOf = (kind: string) =>
    suites.flatMap((suite) => suite.cases.filter((c, i) => i % 2 === 1 && c.record.kind === kind).map((c) => ({ suite, c }))).slice(0, PER_KIND);

  for (const kind of Object.keys(MIN_MEAN_IOU)) {
    it(`${kind}: the thresholded map overlaps the true region (mean IoU >= ${MIN_MEAN_IOU[kind]}) and is applied as a mask`, async () => {
      const ious: number[] = [];
      for (const { suite, c } of casesOf(kind)) {
        const { r, view } = await mapOf(suite, c);
        const core = relevanceCore(averageLevels(view.maps), view.width, view.height, view.down, view.content);
        expect(core.global, `${c.record.id} judged global`).to.equal(false);
        expect(r.parameters.autoMask).to.include({ applied: true, reason: "local" });
        ious.push(iou(core.core, c.region));
      }
      expect(ious).to.have.length(PER_KIND);
      const mean = ious.reduce((a, b) => a + b, 0) / ious.length;
      expect(mean, ious.map((x) => x.toFixed(2)).join(" ")).to.be.at.least(MIN_MEAN_IOU[kind]);
    });
  }

  it("a global edit (brighter) gets no mask: the result is the plain edit's, and says why", async () => {
    const suite = suites[0];
    const c = suite.cases.find((x) => x.record.kind === "brighter")!;
    const image = readFileSync(sourceFile(suite, c.record.id));
    const base = { image, instruction: c.record.instruction, seed: 4, steps: 6 };
    const auto = await edit(model, { ...base, autoMask: true });
    expect(auto.parameters.autoMask).to.deep.include({ applied: false, reason: "global" });
    expect(auto.parameters.autoMask!.coverage).to.be.above(RELEVANCE_RULE.global.coverage);
    expect(auto.parameters.maskMode).to.equal(null);
    const plain = await edit(model, base);
    expect((await rgb(auto.image)).equals(await rgb(plain.image))).to.equal(true);
  });

  it("outside the auto mask the result is the source exactly; inside, the edit happens", async () => {
    const suite = suites[1];
    const c = suite.cases.find((x, i) => i % 2 === 1 && x.record.kind === "recolour")!;
    const image = readFileSync(sourceFile(suite, c.record.id));
    let view: RelevanceView | undefined;
    const r = await edit(model, { image, instruction: c.record.instruction, seed: 2, autoMask: true, mask: true, onRelevance: (v) => (view = { ...v, maps: v.maps.map((m) => Float32Array.from(m)) }) });
    expect(r.parameters.autoMask!.applied).to.equal(true);
    expect(r.parameters.maskMode).to.equal("blend");
    expect(r.relevance, "the map comes back for display").to.be.instanceOf(Buffer);
    // the mask the pipeline made, made again from the same map
    const auto = maskFromRelevance(averageLevels(view!.maps), view!.width, view!.height, view!.down, view!.content);
    const mask = auto.mask!;
    expect([mask.width, mask.height]).to.deep.equal([64, 64]);
    const src = await rgb(image);
    const out = await rgb(r.image);
    let outside = 0;
    let changedInside = 0;
    for (let p = 0; p < 64 * 64; p++) {
      const same = src[3 * p] === out[3 * p] && src[3 * p + 1] === out[3 * p + 1] && src[3 * p + 2] === out[3 * p + 2];
      if (mask.data[p] === 0) {
        outside++;
        expect(same, `pixel ${p} outside the mask`).to.equal(true);
      } else if (!same) changedInside++;
    }
    expect(outside).to.be.above(0.5 * 64 * 64);
    expect(changedInside).to.be.above(20);
    expect(r.keptFraction).to.be.at.least(outside / (64 * 64));
    // the mask output is confined to the auto mask too
    const written = await sharp(r.mask!).extractChannel(0).raw().toBuffer();
    for (let p = 0; p < 64 * 64; p++) if (mask.data[p] === 0) expect(written[p]).to.equal(0);
  });

  it("a painted mask wins over the auto mask", async () => {
    const suite = suites[1];
    const c = suite.cases.find((x) => x.record.kind === "recolour")!;
    const image = readFileSync(sourceFile(suite, c.record.id));
    const m = Buffer.alloc(64 * 64);
    for (let i = 0; i < m.length; i++) if (i % 64 < 32) m[i] = 255;
    const editMask = await sharp(m, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
    const base = { image, instruction: c.record.instruction, seed: 3, steps: 6, editMask };
    const both = await edit(model, { ...base, autoMask: true });
    expect(both.parameters.autoMask).to.deep.include({ applied: false, reason: "painted" });
    expect(both.relevance).to.equal(undefined);
    const painted = await edit(model, base);
    expect((await rgb(both.image)).equals(await rgb(painted.image))).to.equal(true);
  });

  it("the map costs one UNet batch of two branches per level", async () => {
    const suite = suites[1];
    const c = suite.cases[1];
    const image = readFileSync(sourceFile(suite, c.record.id));
    const plain = await edit(model, { image, instruction: c.record.instruction, seed: 1, steps: 5 });
    const auto = await edit(model, { image, instruction: c.record.instruction, seed: 1, steps: 5, autoMask: true });
    expect(auto.timings.unetCalls - plain.timings.unetCalls).to.equal(1);
    expect(auto.timings.unetEvaluations - plain.timings.unetEvaluations).to.equal(2 * RELEVANCE_RULE.levels.length);
  });
});
