/** Scoring helpers over rasters (raster/raster.ts holds the type and the decoder both sides share). */
import sharp from "sharp";
import type { Raster } from "../../raster/raster.js";

export { type Raster, decodeRaster } from "../../raster/raster.js";

/** A single-channel mask image (white = inside). */
export async function decodeMask(input: Buffer | string, size?: { width: number; height: number }): Promise<Uint8Array> {
  let img = sharp(input).greyscale();
  if (size) img = img.resize(size.width, size.height, { fit: "fill", kernel: "nearest" });
  const { data } = await img.raw().toBuffer({ resolveWithObject: true });
  return Uint8Array.from(data, (v) => (v > 127 ? 1 : 0));
}

export function meanColour(r: Raster, mask: ArrayLike<number>): [number, number, number] | null {
  let n = 0;
  const s = [0, 0, 0];
  for (let i = 0; i < r.width * r.height; i++) {
    if (!mask[i]) continue;
    n++;
    for (let c = 0; c < 3; c++) s[c] += r.data[i * 3 + c];
  }
  return n === 0 ? null : [s[0] / n, s[1] / n, s[2] / n];
}

/** Mean absolute difference per channel value over the masked pixels (null when the mask is empty). */
export function meanAbsDiff(a: Raster, b: Raster, mask?: ArrayLike<number>): number | null {
  let n = 0;
  let s = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    if (mask && !mask[i]) continue;
    n++;
    for (let c = 0; c < 3; c++) s += Math.abs(a.data[i * 3 + c] - b.data[i * 3 + c]);
  }
  return n === 0 ? null : s / (3 * n);
}
