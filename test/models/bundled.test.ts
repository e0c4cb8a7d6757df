import { expect } from "chai";
import path from "node:path";
import sharp from "sharp";
import { edit, loadModel } from "../../editor/index.js";
import { type EvalResult, evaluateSynthetic } from "../../benchmarks/evaluation/evaluate-synthetic.js";
import { loadSyntheticSuite } from "../../src/benchmark/synthetic-suite.js";
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
      // a floor under what the shipped default measured here (81.3 % on this slice), so a broken
      // export or pipeline fails; issue 15's 90 % aim per edit kind is not met by the shipped weights
      expect(follow(1)).to.be.at.least(0.7);
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

  it("issue 15's user scenes, drawn here rather than by the generator: every edit moves the colour towards the one asked for, on every seed", async () => {
    const S = 256;
    const svg = (bg: string, body: string) => Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}">${bg}${body}</svg>`);
    const plain = (fill: string) => `<rect width="${S}" height="${S}" fill="${fill}"/>`;
    const tiles = `<defs><pattern id="t" width="32" height="32" patternUnits="userSpaceOnUse"><rect width="32" height="32" fill="#9a9a9a"/><rect width="30" height="30" fill="#b4b4b4"/></pattern></defs><rect width="${S}" height="${S}" fill="url(#t)"/>`;
    // instruction, scene, where to look (x0, y0, x1, y1), the colour asked for, the colour there before
    const cases: Array<[string, Buffer, number[], number[], number[]]> = [
      ["change the background to blue", svg(plain("#e8c830"), `<rect x="90" y="120" width="70" height="90" rx="6" fill="#f4f4f4"/>`), [0, 0, S, 50], [0.2, 0.35, 0.85], [0.91, 0.78, 0.19]],
      ["make the background green", svg(plain("#f7f7f7"), `<circle cx="128" cy="160" r="45" fill="#d03030"/>`), [0, 0, S, 50], [0.15, 0.62, 0.22], [0.97, 0.97, 0.97]],
      ["make the box red", svg(tiles, `<rect x="80" y="110" width="96" height="96" fill="#3060c0"/>`), [100, 130, 156, 190], [0.85, 0.12, 0.12], [0.19, 0.38, 0.75]],
    ];
    const mrc = await loadModel(BUNDLED_MODEL);
    try {
      for (const [instruction, scene, [x0, y0, x1, y1], asked, before] of cases) {
        for (const seed of [1, 2, 3]) {
          const out = (await edit(mrc, { image: await sharp(scene).png().toBuffer(), instruction, seed })).image;
          const { data } = await sharp(out).removeAlpha().raw().toBuffer({ resolveWithObject: true });
          const mean = [0, 0, 0];
          for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) for (let c = 0; c < 3; c++) mean[c] += data[(y * S + x) * 3 + c] / 255 / ((x1 - x0) * (y1 - y0));
          const dist = (rgb: number[]) => Math.hypot(...rgb.map((v, c) => v - mean[c]));
          // distance to the colour asked for, shipped editor: blue backdrop 0.22-0.23, green backdrop
          // 0.21-0.24, red box 0.44-0.46 (a purple-red: half done); v1's editor 1.01, 0.64-0.72, 0.38-0.40
          console.log(`      ${instruction}, seed ${seed}: ${dist(asked).toFixed(2)} from the colour asked, ${dist(before).toFixed(2)} from the source's`);
          expect(dist(asked), `${instruction}, seed ${seed}: got ${mean.map((v) => v.toFixed(2))}`).to.be.below(dist(before));
        }
      }
    } finally {
      await mrc.dispose();
    }
  });
});
