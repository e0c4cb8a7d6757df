/**
 * Where did the edit change the image? (Img-Diff's idea.) A per-pixel difference, smoothed so
 * resampling noise does not count, thresholded into a mask, grouped into boxes; plus a heat-map
 * image for people and a model-free preservation figure.
 */
import sharp from "sharp";
import type { Raster } from "./raster.js";

export interface ChangeBox {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Changed pixels inside the box. */
  area: number;
}

export interface ChangeMap {
  width: number;
  height: number;
  /** Per-pixel difference 0..1 (max over channels, 3x3 box-smoothed). */
  diff: Float32Array;
  mask: Uint8Array;
  changedFraction: number;
  /** Connected changed regions, largest first. */
  boxes: ChangeBox[];
  /** Per pixel: 0 unchanged, else the 1-based id of its connected changed region (any size). */
  labels: Int32Array;
  regions: number;
}

export const DEFAULT_THRESHOLD = 0.08;

export function changeMap(a: Raster, b: Raster, threshold = DEFAULT_THRESHOLD, minArea = 4): ChangeMap {
  if (a.width !== b.width || a.height !== b.height) throw new Error("change map needs images of the same size");
  const { width: w, height: h } = a;
  const raw = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    let d = 0;
    for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(a.data[i * 3 + c] - b.data[i * 3 + c]));
    raw[i] = d;
  }
  const diff = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let s = 0;
      let n = 0;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w) (s += raw[yy * w + xx]), n++;
        }
      diff[y * w + x] = s / n;
    }
  const mask = Uint8Array.from(diff, (d) => (d > threshold ? 1 : 0));
  let changed = 0;
  for (const m of mask) changed += m;
  const labels = new Int32Array(w * h);
  const { boxes, regions } = components(mask, w, h, minArea, labels);
  return { width: w, height: h, diff, mask, changedFraction: changed / (w * h), boxes, labels, regions };
}

/** 4-connected components by flood fill with an explicit stack. */
function components(mask: Uint8Array, w: number, h: number, minArea: number, labels: Int32Array): { boxes: ChangeBox[]; regions: number } {
  const seen = labels;
  let label = 0;
  const boxes: ChangeBox[] = [];
  const stack: number[] = [];
  for (let start = 0; start < w * h; start++) {
    if (!mask[start] || seen[start]) continue;
    let [x0, y0, x1, y1, area] = [w, h, -1, -1, 0];
    stack.push(start);
    seen[start] = ++label;
    while (stack.length) {
      const i = stack.pop()!;
      const x = i % w;
      const y = (i - x) / w;
      area++;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
      for (const j of [x > 0 ? i - 1 : -1, x < w - 1 ? i + 1 : -1, y > 0 ? i - w : -1, y < h - 1 ? i + w : -1]) {
        if (j >= 0 && mask[j] && !seen[j]) (seen[j] = label), stack.push(j);
      }
    }
    if (area >= minArea) boxes.push({ x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1, area });
  }
  return { boxes: boxes.sort((p, q) => q.area - p.area), regions: label };
}

/** Heat map PNG: the edited image dimmed, changed pixels in red by strength. */
export async function heatMapPng(edited: Raster, map: ChangeMap): Promise<Buffer> {
  const { width: w, height: h } = map;
  const out = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const g = (0.299 * edited.data[i * 3] + 0.587 * edited.data[i * 3 + 1] + 0.114 * edited.data[i * 3 + 2]) * 0.5;
    const t = Math.min(1, map.diff[i] / 0.5);
    out[i * 3] = Math.round(255 * (g + (1 - g) * t));
    out[i * 3 + 1] = Math.round(255 * g * (1 - t));
    out[i * 3 + 2] = Math.round(255 * g * (1 - t));
  }
  return sharp(out, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}
