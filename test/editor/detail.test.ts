import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { composeFullResolution, edit, loadModel, structureAgreement } from "../../editor/index.js";
import type { Raster } from "../../raster/raster.js";
import { BUNDLED_MODEL } from "../../src/paths.js";
import { ROOT } from "../helpers.js";

/** A full-size scene: grey backdrop with grain, a box with fine stripes at (x0..x1, y0..y1). */
function scene(size: number, box: [number, number, number, number], colour: [number, number, number]) {
  const rgb = Buffer.alloc(size * size * 3);
  let seed = 7;
  const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 24;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inBox = x >= box[0] && x < box[2] && y >= box[1] && y < box[3];
      const stripe = inBox && (x >> 1) % 2 === 0 ? -30 : 0;
      const n = noise();
      for (let c = 0; c < 3; c++) rgb[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round((inBox ? colour[c] : 150) + stripe + n)));
    }
  return rgb;
}

async function working(rgb: Buffer, size: number, w: number): Promise<Raster> {
  const raw = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).resize(w, w, { kernel: "lanczos3" }).raw().toBuffer();
  return { width: w, height: w, data: Float32Array.from(raw, (v) => v / 255) };
}

/** Std of (image - 3x3 box blur) over a region: how much fine texture it carries. */
function detailEnergy(rgb: Buffer, size: number, r: [number, number, number, number]) {
  let s = 0;
  let n = 0;
  for (let y = Math.max(1, r[1]); y < Math.min(size - 1, r[3]); y++)
    for (let x = Math.max(1, r[0]); x < Math.min(size - 1, r[2]); x++) {
      let m = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) m += rgb[((y + dy) * size + x + dx) * 3];
      const d = rgb[(y * size + x) * 3] - m / 9;
      s += d * d;
      n++;
    }
  return Math.sqrt(s / n);
}

describe("full-resolution results (detail keep)", function () {
  this.timeout(60_000);
  const size = 512;
  const box: [number, number, number, number] = [160, 200, 352, 400];
  const inner: [number, number, number, number] = [176, 216, 336, 384];

  it("a recolour: untouched pixels are the source's exactly; the box takes the new colour and keeps its stripes", async () => {
    const source = scene(size, box, [200, 40, 40]);
    const target = scene(size, box, [40, 60, 200]);
    const sw = await working(source, size, 64);
    const ew = await working(target, size, 64); // an editor that recoloured perfectly at 64 px, but blurred
    const c = composeFullResolution({ rgb: source, width: size, height: size }, sw, ew);
    let outsideDiff = 0;
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        if (x >= box[0] - 24 && x < box[2] + 24 && y >= box[1] - 24 && y < box[3] + 24) continue;
        for (let k = 0; k < 3; k++) outsideDiff = Math.max(outsideDiff, Math.abs(c.rgb[(y * size + x) * 3 + k] - source[(y * size + x) * 3 + k]));
      }
    expect(outsideDiff).to.equal(0);
    expect(c.keptFraction).to.be.within(0.6, 0.9);
    const i = (256 * size + 256) * 3;
    expect(c.rgb[i + 2]).to.be.above(c.rgb[i] + 80); // blue now
    const naive = await sharp(Buffer.from(Uint8Array.from(ew.data, (v) => Math.round(v * 255))), { raw: { width: 64, height: 64, channels: 3 } }).resize(size, size, { kernel: "lanczos3" }).raw().toBuffer();
    const kept = detailEnergy(c.rgb, size, inner) / detailEnergy(target, size, inner);
    const lost = detailEnergy(naive, size, inner) / detailEnergy(target, size, inner);
    expect(kept).to.be.above(0.8);
    expect(lost).to.be.below(0.3);
    expect(c.mask).to.have.length(size * size);
  });

  it("a removal: the structure changed, so the source's stripes do not ghost through", async () => {
    const source = scene(size, box, [200, 40, 40]);
    const removed = scene(size, [0, 0, 0, 0], [0, 0, 0]);
    const c = composeFullResolution({ rgb: source, width: size, height: size }, await working(source, size, 64), await working(removed, size, 64));
    const stripes = detailEnergy(c.rgb, size, inner);
    expect(stripes).to.be.below(0.5 * detailEnergy(source, size, inner));
  });

  it("structure agreement: 1 where edges stay, 0 where they go, 1 on flat patches", async () => {
    const flat: Raster = { width: 16, height: 16, data: new Float32Array(16 * 16 * 3).fill(0.5) };
    const edged: Raster = { width: 16, height: 16, data: Float32Array.from({ length: 16 * 16 * 3 }, (_, k) => ((Math.floor(k / 3) % 16) < 8 ? 0.1 : 0.9)) };
    const recoloured: Raster = { width: 16, height: 16, data: Float32Array.from(edged.data, (v, k) => (k % 3 === 2 ? 1 - v : v)) };
    expect(structureAgreement(flat, flat)[8 * 16 + 8]).to.equal(1);
    expect(structureAgreement(edged, recoloured)[8 * 16 + 8]).to.be.above(0.9);
    expect(structureAgreement(edged, flat)[8 * 16 + 8]).to.equal(0);
  });

  it("through the bundled editor: keep returns the source's exact pixels where nothing changed, reports the share and the mask; off does not", async () => {
    const model = await loadModel(BUNDLED_MODEL);
    try {
      const small = readFileSync(path.join(ROOT, "models", "heldout", "syn-0004-source.png"));
      // the scene at 512 px with grain, as a product photographer's file would be
      const big = await sharp(small).resize(512, 512, { kernel: "cubic" }).raw().toBuffer();
      for (let k = 0; k < big.length; k++) big[k] = Math.max(0, Math.min(255, big[k] + ((k * 2654435761) % 9) - 4));
      const image = await sharp(big, { raw: { width: 512, height: 512, channels: 3 } }).png().toBuffer();
      const keep = await edit(model, { image, instruction: "make the mug red", seed: 3, mask: true });
      const off = await edit(model, { image, instruction: "make the mug red", seed: 3, detail: "off" });
      expect(keep.parameters.detail).to.equal("keep");
      expect(off.keptFraction).to.equal(null);
      expect(keep.keptFraction).to.be.within(0.3, 0.99);
      const out = await sharp(keep.image).raw().toBuffer();
      const mask = await sharp(keep.mask!).extractChannel(0).raw().toBuffer();
      expect(mask.length).to.equal(512 * 512);
      let same = 0;
      let zero = 0;
      for (let i = 0; i < 512 * 512; i++) {
        if (mask[i] !== 0) continue;
        zero++;
        if (out[i * 3] === big[i * 3] && out[i * 3 + 1] === big[i * 3 + 1] && out[i * 3 + 2] === big[i * 3 + 2]) same++;
      }
      expect(zero / (512 * 512)).to.be.closeTo(keep.keptFraction!, 1e-9);
      expect(same).to.equal(zero);
    } finally {
      await model.dispose();
    }
  });
});
