/**
 * A decoded RGB image as floats in [0, 1], HWC: the form the local scorer measures and the editor
 * composes full-resolution results in. Shared by editor/ and reward/, which never import each other.
 */
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

