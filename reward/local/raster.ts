/** A decoded RGB image as floats in [0, 1], HWC, the form every local measure works on. */
import sharp from "sharp";

export interface Raster {
  width: number;
  height: number;
  /** HWC, 3 channels, 0..1. */
  data: Float32Array;
}

export async function decodeRaster(input: Buffer | string, size?: { width: number; height: number }): Promise<Raster> {
  let img = sharp(input).rotate().flatten({ background: "#ffffff" }).toColourspace("srgb").removeAlpha();
  if (size) img = img.resize(size.width, size.height, { fit: "fill" });
  const { data, info } = await img.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  const out = new Float32Array(info.width * info.height * 3);
  for (let i = 0; i < out.length; i++) out[i] = data[i] / 255;
  return { width: info.width, height: info.height, data: out };
}

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
