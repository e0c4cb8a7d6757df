/**
 * Edit masks: where an edit may happen. Shared by the editor (which confines the edit to it) and
 * the scorers (which judge preservation outside it). Two conventions arrive:
 *   - "luminance" (diffusers' inpainting, this project's own API): white = may change, black = must
 *     not, grey = partly;
 *   - "alpha" (OpenAI's images API): fully transparent pixels mark where to edit, opaque ones stay.
 * Either way the result is one 8-bit plane at the mask's own size, 255 = may change.
 */
import sharp, { type Metadata, type OutputInfo } from "sharp";

export const MASK_CONVENTIONS = ["luminance", "alpha"] as const;
export type MaskConvention = (typeof MASK_CONVENTIONS)[number];

export class MaskInputError extends Error {
  override name = "MaskInputError";
  readonly field = "mask";
}

export interface EditMask {
  width: number;
  height: number;
  /** 0 = keep, 255 = may change. */
  data: Uint8Array;
  /** Mean of data / 255: the share of the image the edit may touch. */
  coverage: number;
  /** Every pixel may change: the same as no mask. */
  full: boolean;
}

/** Masks are plain pictures; a huge one is a mistake or an attack, not a finer mask. */
const MASK_PIXEL_LIMIT = 50_000_000;

export async function decodeMask(input: Buffer, convention: MaskConvention = "luminance"): Promise<EditMask> {
  if (input.length === 0) throw new MaskInputError("mask is empty");
  let img = sharp(input, { limitInputPixels: MASK_PIXEL_LIMIT, pages: 1 }).rotate();
  let meta: Metadata;
  try {
    meta = await img.metadata();
  } catch {
    throw new MaskInputError("mask cannot be decoded: send a PNG, JPEG or WebP image");
  }
  if (convention === "alpha" && !meta.hasAlpha) {
    throw new MaskInputError("mask has no alpha channel: fully transparent pixels mark where to edit");
  }
  img = convention === "alpha" ? img.ensureAlpha().extractChannel("alpha").negate({ alpha: false }) : img.flatten({ background: "#000000" }).toColourspace("b-w");
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await img.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch {
    throw new MaskInputError("mask cannot be decoded: send a PNG, JPEG or WebP image");
  }
  const { width, height, channels } = raw.info;
  const data = new Uint8Array(width * height);
  let sum = 0;
  let full = true;
  for (let i = 0; i < data.length; i++) {
    const v = raw.data[i * channels];
    data[i] = v;
    sum += v;
    if (v !== 255) full = false;
  }
  if (sum === 0) {
    throw new MaskInputError(
      convention === "alpha" ? "mask is fully opaque: nothing may change (make the area to edit transparent)" : "mask is all black: nothing may change (white marks where the edit may happen)",
    );
  }
  return { width, height, data, coverage: sum / (255 * data.length), full };
}

/**
 * The mask scaled to a size: enlarged by nearest neighbour, so a coarse mask's edge stays where it
 * drew it (bilinear would spill grey half a mask pixel past it); shrunk by averaging.
 */
export async function resizeMask(mask: EditMask, width: number, height: number): Promise<Uint8Array> {
  if (mask.width === width && mask.height === height) return mask.data;
  const out = await sharp(mask.data, { raw: { width: mask.width, height: mask.height, channels: 1 } })
    .resize(width, height, { fit: "fill", kernel: width >= mask.width && height >= mask.height ? "nearest" : "linear" })
    .toColourspace("b-w")
    .raw()
    .toBuffer();
  if (out.length !== width * height) throw new Error(`mask resize gave ${out.length} bytes for ${width}x${height}`);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

/** A decoded mask as a greyscale PNG in this project's convention (white = may change). */
export function encodeMask(mask: EditMask): Promise<Buffer> {
  return sharp(mask.data, { raw: { width: mask.width, height: mask.height, channels: 1 } }).toColourspace("b-w").png().toBuffer();
}
