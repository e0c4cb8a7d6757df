/**
 * Full-resolution results (DESIGN.md 9). The editor works at a fixed working size; resizing its
 * result back blurs everything the instruction never touched. Instead:
 *   - where the edit did not change the working-size image, the source's own pixels are kept;
 *   - where it changed and the change is a smooth shift (the local structure is the same, only the
 *     colour or tone moved), the upsampled change is added to the full-size source, so the source's
 *     fine detail (grain, stripes, print) rides through;
 *   - where the structure changed (something removed or added), the upsampled edit is used.
 * A feathered mask blends the three, so there are no seams.
 */
import sharp from "sharp";
import { changeMap } from "../../raster/change-map.js";
import type { Raster } from "../../raster/raster.js";
import type { Region } from "./image.js";

export const DETAIL_MODES = ["keep", "off"] as const;
export type DetailMode = (typeof DETAIL_MODES)[number];

/** Difference (0..1, 3x3-smoothed, max over channels) above which a working pixel counts as edited. */
export const CHANGE_THRESHOLD = 0.08;
/** Gradient energy under which a patch is flat: nothing to disagree about, the detail is kept. */
const FLAT_GRADIENT = 0.02;

export interface Composite {
  /** Interleaved 8-bit RGB at the source's size. */
  rgb: Buffer;
  width: number;
  height: number;
  /** Share of the source's pixels returned exactly as they were. */
  keptFraction: number;
  /** Blend weight of the edit per source pixel, 0 (source kept) ..255 (edited). */
  mask: Uint8Array;
}

/** CHW [-1, 1] planes -> HWC [0, 1] raster of one region. */
export function regionRaster(chw: Float32Array, width: number, height: number, r: Region): Raster {
  const plane = width * height;
  const data = new Float32Array(r.width * r.height * 3);
  for (let y = 0; y < r.height; y++) {
    for (let x = 0; x < r.width; x++) {
      const src = (y + r.top) * width + x + r.left;
      for (let c = 0; c < 3; c++) data[(y * r.width + x) * 3 + c] = Math.min(1, Math.max(0, (chw[c * plane + src] + 1) / 2));
    }
  }
  return { width: r.width, height: r.height, data };
}

/** Max over a 3x3 neighbourhood, then mean over one: a mask grown by a pixel with soft edges. */
function feather(mask: Uint8Array, w: number, h: number): Float32Array {
  const grown = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let m = 0;
      for (let dy = -1; dy <= 1 && !m; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w && mask[yy * w + xx]) {
            m = 1;
            break;
          }
        }
      grown[y * w + x] = m;
    }
  return boxMean(Float32Array.from(grown), w, h, 1);
}

function boxMean(v: Float32Array, w: number, h: number, r: number): Float32Array {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let s = 0;
      let n = 0;
      for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++)
        for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) (s += v[yy * w + xx]), n++;
      out[y * w + x] = s / n;
    }
  return out;
}

function gradientMagnitude(r: Raster): Float32Array {
  const { width: w, height: h, data } = r;
  const lum = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) lum[i] = 0.299 * data[i * 3] + 0.587 * data[i * 3 + 1] + 0.114 * data[i * 3 + 2];
  const g = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const gx = lum[y * w + Math.min(w - 1, x + 1)] - lum[y * w + Math.max(0, x - 1)];
      const gy = lum[Math.min(h - 1, y + 1) * w + x] - lum[Math.max(0, y - 1) * w + x];
      g[y * w + x] = Math.hypot(gx, gy) / 2;
    }
  return g;
}

/** Correlation of two edge-strength maps, mapped to 0..1 (flat: 1, see structureAgreement). */
const agreement = (ss: number, ee: number, se: number, n = 1) =>
  Math.sqrt(Math.max(ss, ee) / n) < FLAT_GRADIENT ? 1 : Math.min(1, Math.max(0, (se / Math.sqrt(ss * ee + 1e-12) - 0.5) / 0.35));

/**
 * How much of the source's fine detail belongs in each edited pixel, 0..1: the correlation of the
 * two images' edge strength, over a 5x5 patch and over the whole changed region the pixel is in
 * (the lower of the two). A recolour keeps the region's outline where it was (1); a removal or an
 * addition makes it vanish or appear (0) - and that decides the region's inside too, where a
 * texture finer than the working size looks flat either way.
 */
export function structureAgreement(source: Raster, edited: Raster, labels?: Int32Array, regions = 0): Float32Array {
  const { width: w, height: h } = source;
  const gs = gradientMagnitude(source);
  const ge = gradientMagnitude(edited);
  const ss = boxMean(gs.map((v) => v * v), w, h, 2);
  const ee = boxMean(ge.map((v) => v * v), w, h, 2);
  const se = boxMean(gs.map((v, i) => v * ge[i]), w, h, 2);
  const region = new Float32Array(regions + 1).fill(1);
  if (labels && regions > 0) {
    // sums over each region grown by the patch (its outline lies on its border)
    const acc = new Float64Array(4 * (regions + 1));
    for (let i = 0; i < w * h; i++) {
      const l = labels[i];
      if (!l) continue;
      acc[4 * l] += ss[i];
      acc[4 * l + 1] += ee[i];
      acc[4 * l + 2] += se[i];
      acc[4 * l + 3]++;
    }
    for (let l = 1; l <= regions; l++) region[l] = agreement(acc[4 * l], acc[4 * l + 1], acc[4 * l + 2], acc[4 * l + 3]);
  }
  const out = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) out[i] = Math.min(agreement(ss[i], ee[i], se[i]), labels ? region[labels[i]] : 1);
  return out;
}

const toU8 = (v: number) => (v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255));

/** Upscales interleaved 8-bit planes with sharp (native, on its threads). */
async function upscale(data: Uint8Array, w: number, h: number, channels: 1 | 3, to: { width: number; height: number }, kernel: "linear" | "lanczos3") {
  if (w === to.width && h === to.height) return Buffer.from(data);
  let img = sharp(data, { raw: { width: w, height: h, channels } }).resize(to.width, to.height, { fit: "fill", kernel });
  // sharp would widen a single band to sRGB on output
  if (channels === 1) img = img.toColourspace("b-w");
  return img.raw().toBuffer();
}

/**
 * Composes the edit with the full-size source. `source` is the decoded input at its own size
 * (8-bit RGB); `sourceWorking` and `edited` are the working-size images of the same region.
 */
export async function composeFullResolution(source: { rgb: Buffer; width: number; height: number }, sourceWorking: Raster, edited: Raster): Promise<Composite> {
  const { width: w, height: h } = edited;
  const size = { width: source.width, height: source.height };
  // 1. where the edit changed the working-size image, feathered
  const map = changeMap(sourceWorking, edited, CHANGE_THRESHOLD, 1);
  const alpha = feather(map.mask, w, h);
  // 2. whether the change kept the local structure (detail rides through) or replaced it
  const gamma = structureAgreement(sourceWorking, edited, map.labels, map.regions);
  const u8 = (r: Raster) => Uint8Array.from(r.data, toU8);
  const [a, g, e, s] = await Promise.all([
    upscale(Uint8Array.from(alpha, toU8), w, h, 1, size, "linear"),
    upscale(Uint8Array.from(gamma, toU8), w, h, 1, size, "linear"),
    // the same kernel for both, so their difference is the edit's change and nothing of resampling
    upscale(u8(edited), w, h, 3, size, "lanczos3"),
    upscale(u8(sourceWorking), w, h, 3, size, "lanczos3"),
  ]);
  // 3. out = source + alpha * (edit + gamma * (source - source at working scale) - source)
  const n = size.width * size.height;
  const rgb = Buffer.alloc(n * 3);
  const src = source.rgb;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const ai = a[i];
    if (ai === 0) {
      kept++;
      rgb[i * 3] = src[i * 3];
      rgb[i * 3 + 1] = src[i * 3 + 1];
      rgb[i * 3 + 2] = src[i * 3 + 2];
      continue;
    }
    const al = ai / 255;
    const gm = g[i] / 255;
    for (let c = 0; c < 3; c++) {
      const k = i * 3 + c;
      const composed = e[k] + gm * (src[k] - s[k]);
      const v = src[k] + al * (composed - src[k]);
      rgb[k] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return { rgb, width: size.width, height: size.height, keptFraction: kept / n, mask: a };
}

/** The blend mask as a greyscale PNG (white = edited). */
export function maskPng(c: Composite): Promise<Buffer> {
  return sharp(c.mask, { raw: { width: c.width, height: c.height, channels: 1 } }).toColourspace("b-w").png({ palette: false }).toBuffer();
}
