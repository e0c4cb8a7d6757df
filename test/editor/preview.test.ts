import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { type EditorModel, type LatentEstimate, SD15_COMMUNITY_FACTORS, edit, latentRgb, loadModel, parseManifest, previewMapFor } from "../../editor/index.js";
import { BUNDLED_MODEL } from "../../src/paths.js";
import { TINY } from "../helpers.js";

const withPreview = (m: Record<string, unknown>) => parseManifest(m);

describe("live previews: the latent -> RGB map (issue 31)", function () {
  this.timeout(60_000);

  it("the folder's own map first; without one the SD 1.x community factors for 4 channels, none otherwise; never an error", () => {
    const own = previewMapFor(withPreview({ preview: { factors: [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], bias: [0.1, 0, 0] } }));
    expect(own).to.deep.include({ source: "manifest", bias: [0.1, 0, 0] });
    const fallback = previewMapFor(withPreview({}));
    expect(fallback?.source).to.equal("sd15-fallback");
    expect(fallback?.factors).to.deep.equal(SD15_COMMUNITY_FACTORS.map((r) => [...r]));
    expect(previewMapFor(withPreview({ latent_channels: 16 }))).to.equal(null);
    // a map for another channel count is not used
    expect(previewMapFor(withPreview({ latent_channels: 16, preview: { factors: [[1, 0, 0]] } }))).to.equal(null);
    expect(() => withPreview({ preview: { factors: [[1, 0]] } })).to.throw(/preview/);
  });

  it("the bundled model's fitted map imitates its own VAE decoder on an encoded photo", async () => {
    const model: EditorModel = await loadModel(BUNDLED_MODEL);
    try {
      const map = previewMapFor(model.manifest)!;
      expect(map.source).to.equal("manifest");
      const size = model.manifest.resolution;
      const down = model.manifest.latent_downscale;
      const raw = await sharp(readFileSync(path.join(BUNDLED_MODEL, "examples", "lemon-on-marble.png"))).resize(size, size).removeAlpha().raw().toBuffer();
      const px = new Float32Array(3 * size * size);
      for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) px[c * size * size + i] = raw[3 * i + c] / 127.5 - 1;
      const lat = Object.values(await model.vaeEncoder.run({ sample: { type: "float32", data: px, dims: [1, 3, size, size] } }))[0];
      const h = lat.dims[2];
      const w = lat.dims[3];
      const plane = 4 * h * w;
      const x0 = lat.data.slice(0, plane).map((v) => v * model.manifest.scaling_factor);
      const dec = Object.values(await model.vaeDecoder.run({ latent_sample: { type: "float32", data: lat.data.slice(0, plane), dims: [1, 4, h, w] } }))[0];
      const e: LatentEstimate = { step: 1, steps: 1, x0, channels: 4, height: h, width: w, content: { left: 0, top: 0, width: w, height: h } };
      const { rgb, width, height } = latentRgb(e, map);
      expect([width, height]).to.deep.equal([w, h]);
      // the decoder's image averaged over each latent pixel's footprint, as the fit's target
      let err = 0;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let c = 0; c < 3; c++) {
            let s = 0;
            for (let dy = 0; dy < down; dy++) for (let dx = 0; dx < down; dx++) s += dec.data[c * size * size + (y * down + dy) * size + x * down + dx];
            const target = Math.min(255, Math.max(0, ((s / (down * down) + 1) * 127.5)));
            err += Math.abs(rgb[3 * (y * w + x) + c] - target);
          }
        }
      }
      // within about 8 % of the range on average: a linear map, not the decoder
      expect(err / (3 * w * h)).to.be.lessThan(20);
    } finally {
      await model.dispose();
    }
  });

  it("the pipeline reports the clean-latent estimate after every step, and only when asked", async () => {
    const model = await loadModel(TINY);
    try {
      const seen: number[] = [];
      let dims: number[] = [];
      await edit(model, {
        image: await sharp({ create: { width: 80, height: 48, channels: 3, background: "#a33" } }).png().toBuffer(),
        instruction: "make it blue",
        steps: 3,
        seed: 1,
        onEstimate: (e) => {
          seen.push(e.step);
          dims = [e.channels, e.height, e.width, e.content.width, e.content.height];
          expect(e.x0.every(Number.isFinite)).to.equal(true);
        },
      });
      expect(seen).to.deep.equal([1, 2, 3]);
      // the photo's part of the padded latent keeps its 5:3 shape
      expect(dims[0]).to.equal(4);
      expect(dims[3] / dims[4]).to.be.closeTo(80 / 48, 0.2);
    } finally {
      await model.dispose();
    }
  });
});
