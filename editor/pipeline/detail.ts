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

/** The mean over a (2r+1)-square window, clipped at the borders. */
export function boxMean(v: Float32Array, w: number, h: number, r: number): Float32Array {
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

/** Sample positions of a bilinear upscale from n to N (pixel centres aligned, edges clamped). */
function taps(n: number, N: number) {
  const i0 = new Int32Array(N);
  const i1 = new Int32Array(N);
  const f = new Float32Array(N);
  for (let X = 0; X < N; X++) {
    const u = Math.min(n - 1, Math.max(0, ((X + 0.5) * n) / N - 0.5));
    i0[X] = Math.floor(u);
    i1[X] = Math.min(n - 1, i0[X] + 1);
    f[X] = u - i0[X];
  }
  return { i0, i1, f };
}

/**
 * Composes the edit with the full-size source. `source` is the decoded input at its own size
 * (8-bit RGB); `sourceWorking` and `edited` are the working-size images of the same region.
 */
export function composeFullResolution(source: { rgb: Buffer; width: number; height: number }, sourceWorking: Raster, edited: Raster): Composite {
  const { width: w, height: h } = edited;
  const { width: W, height: H, rgb: src } = source;
  // 1. where the edit changed the working-size image; the 3x3 mean softens its edge over a pixel
  //    each way (the smoothed difference already reaches one pixel past the change)
  const map = changeMap(sourceWorking, edited, CHANGE_THRESHOLD, 1);
  const alpha = boxMean(Float32Array.from(map.mask), w, h, 1);
  // 2. whether the change kept the local structure (detail rides through) or replaced it
  const gamma = structureAgreement(sourceWorking, edited, map.labels, map.regions);
  // 3. out = source + alpha * (edit + gamma * (source - source at working scale) - source)
  //        = source + alpha * (change + (gamma - 1) * (source - source at working scale)),
  //    with the working-size planes upscaled bilinearly on the fly (bilinear is linear, so the
  //    upscaled change is the change of the upscaled images): each output row lerps the two
  //    working rows it falls between once, each pixel then lerps along the row; rows the edit
  //    never reached are copied whole, and gamma = 1 (detail kept) skips the source's plane
  const e = edited.data;
  const sw = sourceWorking.data;
  const change = new Float32Array(w * h * 3);
  for (let k = 0; k < change.length; k++) change[k] = 255 * (e[k] - sw[k]);
  const cx = taps(w, W);
  const cy = taps(h, H);
  const rowA = new Float32Array(w);
  const rowG = new Float32Array(w);
  const rowD = new Float32Array(3 * w);
  const rowS = new Float32Array(3 * w);
  const rgb = Buffer.alloc(W * H * 3);
  const mask = new Uint8Array(W * H);
  let kept = 0;
  for (let Y = 0; Y < H; Y++) {
    const r0 = cy.i0[Y] * w;
    const r1 = cy.i1[Y] * w;
    const fy = cy.f[Y];
    let any = false;
    for (let x = 0; x < w; x++) {
      const a = alpha[r0 + x] + (alpha[r1 + x] - alpha[r0 + x]) * fy;
      rowA[x] = a;
      if (a > 0) any = true;
    }
    if (!any) {
      src.copy(rgb, Y * W * 3, Y * W * 3, (Y + 1) * W * 3);
      kept += W;
      continue;
    }
    for (let x = 0; x < w; x++) {
      rowG[x] = gamma[r0 + x] + (gamma[r1 + x] - gamma[r0 + x]) * fy;
      for (let c = 0; c < 3; c++) {
        const k0 = (r0 + x) * 3 + c;
        const k1 = (r1 + x) * 3 + c;
        rowD[x * 3 + c] = change[k0] + (change[k1] - change[k0]) * fy;
        rowS[x * 3 + c] = 255 * (sw[k0] + (sw[k1] - sw[k0]) * fy);
      }
    }
    for (let X = 0; X < W; X++) {
      const i0 = cx.i0[X];
      const i1 = cx.i1[X];
      const fx = cx.f[X];
      const m = Math.round((rowA[i0] + (rowA[i1] - rowA[i0]) * fx) * 255);
      const i = Y * W + X;
      if (m === 0) {
        kept++;
        rgb[i * 3] = src[i * 3];
        rgb[i * 3 + 1] = src[i * 3 + 1];
        rgb[i * 3 + 2] = src[i * 3 + 2];
        continue;
      }
      mask[i] = m;
      const al = m / 255;
      const g1 = rowG[i0] + (rowG[i1] - rowG[i0]) * fx - 1;
      for (let c = 0; c < 3; c++) {
        const k = i * 3 + c;
        const d0 = rowD[i0 * 3 + c];
        let delta = d0 + (rowD[i1 * 3 + c] - d0) * fx;
        if (g1 < -1e-3) {
          const s0 = rowS[i0 * 3 + c];
          delta += g1 * (src[k] - (s0 + (rowS[i1 * 3 + c] - s0) * fx));
        }
        const v = src[k] + al * delta;
        rgb[k] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
      }
    }
  }
  return { rgb, width: W, height: H, keptFraction: kept / (W * H), mask };
}

/** The blend mask as a greyscale PNG (white = edited). */
export function maskPng(c: Composite): Promise<Buffer> {
  return sharp(c.mask, { raw: { width: c.width, height: c.height, channels: 1 } }).toColourspace("b-w").png({ palette: false }).toBuffer();
}
