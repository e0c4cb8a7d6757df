/**
 * Image normalisation with sharp: whatever arrives (any orientation, alpha, colour space, bit
 * depth, animation) becomes an sRGB, flattened, upright CHW float tensor in [-1, 1] at the
 * model's working size; results go back to the caller's size and format. Alpha is flattened onto
 * a neutral grey for the model and given back to the result (alpha.ts).
 */
import sharp, { type Metadata } from "sharp";
import { NEUTRAL, NEUTRAL_HEX, anyTransparent, flattenRgba } from "./alpha.js";

export const OUTPUT_FORMATS = ["png", "jpeg", "webp"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface SizePolicy {
  /** Long side the model works at. */
  resolution: number;
  /** Each side is rounded to a multiple of this. */
  multiple: number;
  /** sharp's limitInputPixels: decompression-bomb guard. */
  limitInputPixels?: number;
}

export interface PreparedImage {
  /** [3, height, width] in [-1, 1]. */
  pixels: Float32Array;
  width: number;
  height: number;
  /** Where the photo lies inside the padded working image. */
  content: Region;
  /** Upright size of the input (EXIF orientation applied). */
  sourceWidth: number;
  sourceHeight: number;
}

export class ImageInputError extends Error {
  override name = "ImageInputError";
}

export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Model working size: the photo scaled (aspect kept) so its long side is `resolution`, then padded
 * up to multiples of `multiple` with a mirror of its own edges, centred. Padding rather than the
 * published evaluation's centre crop: the whole photo is edited and comes back whole, undistorted;
 * the mirrored strips (under one multiple) are edited along and cut off again.
 */
export function workingSize(w: number, h: number, p: SizePolicy): { width: number; height: number; content: Region } {
  const scale = p.resolution / Math.max(w, h);
  const cw = Math.max(1, Math.round(w * scale));
  const ch = Math.max(1, Math.round(h * scale));
  const width = Math.ceil(cw / p.multiple) * p.multiple;
  const height = Math.ceil(ch / p.multiple) * p.multiple;
  return { width, height, content: { left: Math.floor((width - cw) / 2), top: Math.floor((height - ch) / 2), width: cw, height: ch } };
}

/** An input whose header has been read: its upright size is known, its pixels not yet decoded. */
export interface OpenedImage {
  sourceWidth: number;
  sourceHeight: number;
  /** The file has an alpha channel (which may still be opaque everywhere). */
  hasAlpha: boolean;
  /** Decodes, flattens, converts and resizes to the working size on sharp's threads. */
  decode(): Promise<PreparedImage>;
}

/**
 * Reads only the header. Split from decoding so a caller can start the decode and keep its own
 * thread busy (the text encoder) while sharp's threads do the pixels.
 */
export async function openImage(input: Buffer, p: SizePolicy): Promise<OpenedImage> {
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: p.limitInputPixels ?? 50_000_000 }).metadata();
  } catch (err) {
    throw new ImageInputError(`image cannot be decoded: ${(err as Error).message}`);
  }
  if (!meta.width || !meta.height) throw new ImageInputError("image has no dimensions");
  // EXIF orientations 5-8 swap the sides once applied
  const swap = (meta.orientation ?? 1) >= 5;
  const sourceWidth = swap ? meta.height : meta.width;
  const sourceHeight = swap ? meta.width : meta.height;
  return { sourceWidth, sourceHeight, hasAlpha: Boolean(meta.hasAlpha), decode: () => decodeImage(input, sourceWidth, sourceHeight, p) };
}

async function decodeImage(input: Buffer, sourceWidth: number, sourceHeight: number, p: SizePolicy): Promise<PreparedImage> {
  const { width, height, content } = workingSize(sourceWidth, sourceHeight, p);
  let raw: Buffer;
  try {
    raw = await sharp(input, { limitInputPixels: p.limitInputPixels ?? 50_000_000, pages: 1 })
      .rotate()
      .flatten({ background: NEUTRAL_HEX })
      .toColourspace("srgb")
      .resize(content.width, content.height, { fit: "fill", kernel: "lanczos3" })
      .extend({
        left: content.left,
        top: content.top,
        right: width - content.width - content.left,
        bottom: height - content.height - content.top,
        extendWith: "mirror",
      })
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer();
  } catch (err) {
    throw new ImageInputError(`image cannot be processed: ${(err as Error).message}`);
  }
  const plane = width * height;
  const pixels = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) pixels[c * plane + i] = raw[i * 3 + c] / 127.5 - 1;
  }
  return { pixels, width, height, content, sourceWidth, sourceHeight };
}

export interface SourcePixels {
  /** 8-bit RGB, flattened onto the neutral grey as the model saw it. */
  rgb: Buffer;
  width: number;
  height: number;
  /** Straight 8-bit RGBA when some pixel is less than opaque; null for an opaque source. */
  rgba: Buffer | null;
}

/** The input at its own upright size: what a full-resolution result is composed on, and its alpha. */
export async function decodeSource(input: Buffer, o: Pick<OpenedImage, "sourceWidth" | "sourceHeight"> & { hasAlpha?: boolean }, limitInputPixels = 50_000_000): Promise<SourcePixels> {
  try {
    const img = sharp(input, { limitInputPixels, pages: 1 }).rotate().toColourspace("srgb");
    if (o.hasAlpha) {
      // one decode serves both: the alpha kept for the result, the colour flattened here
      const rgba = await img.ensureAlpha().raw({ depth: "uchar" }).toBuffer();
      if (anyTransparent(rgba)) return { rgb: flattenRgba(rgba, [NEUTRAL, NEUTRAL, NEUTRAL]), width: o.sourceWidth, height: o.sourceHeight, rgba };
      return { rgb: removeAlpha(rgba), width: o.sourceWidth, height: o.sourceHeight, rgba: null };
    }
    const rgb = await img.removeAlpha().raw({ depth: "uchar" }).toBuffer();
    return { rgb, width: o.sourceWidth, height: o.sourceHeight, rgba: null };
  } catch (err) {
    throw new ImageInputError(`image cannot be processed: ${(err as Error).message}`);
  }
}

function removeAlpha(rgba: Buffer): Buffer {
  const n = rgba.length / 4;
  const out = Buffer.alloc(n * 3);
  for (let i = 0; i < n; i++) rgba.copy(out, 3 * i, 4 * i, 4 * i + 3);
  return out;
}

/** Straight RGBA scaled to a size (sharp premultiplies while it resamples, so edges keep their colour). */
export async function resizeRgba(rgba: Buffer, width: number, height: number, to: { width: number; height: number }): Promise<Buffer> {
  if (to.width === width && to.height === height) return rgba;
  return sharp(rgba, { raw: { width, height, channels: 4 } }).resize(to.width, to.height, { fit: "fill" }).raw().toBuffer();
}

export async function prepareImage(input: Buffer, p: SizePolicy): Promise<PreparedImage> {
  return (await openImage(input, p)).decode();
}

/** CHW [-1, 1] floats to interleaved 8-bit RGB. */
export function toRgb8(chw: Float32Array, width: number, height: number): Buffer {
  const plane = width * height;
  const out = Buffer.alloc(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.round((chw[c * plane + i] + 1) * 127.5);
      out[i * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

/** The working-size result cut to the photo and scaled to a size, as raw 8-bit RGB (for composing before encoding). */
export async function resizeRgb(rgb: Buffer, width: number, height: number, crop: Region, to: { width: number; height: number }): Promise<Buffer> {
  let img = sharp(rgb, { raw: { width, height, channels: 3 } });
  if (crop.width !== width || crop.height !== height) {
    img = sharp(await img.extract(crop).raw().toBuffer(), { raw: { width: crop.width, height: crop.height, channels: 3 } });
  }
  if (to.width !== crop.width || to.height !== crop.height) img = img.resize(to.width, to.height, { fit: "fill" });
  return img.raw().toBuffer();
}

/** `pixels`: interleaved 8-bit RGB, or straight RGBA with `channels: 4` (PNG and WebP keep the alpha). */
export async function encodeImage(
  pixels: Buffer,
  width: number,
  height: number,
  options: { format?: OutputFormat; resizeTo?: { width: number; height: number }; crop?: Region; channels?: 3 | 4 } = {},
): Promise<Buffer> {
  const channels = options.channels ?? 3;
  if (channels === 4 && options.format === "jpeg") throw new Error("JPEG has no alpha channel");
  let img = sharp(pixels, { raw: { width, height, channels } });
  const c = options.crop;
  if (c && (c.width !== width || c.height !== height)) {
    // extract before resize: sharp applies them in this order whatever the call order
    img = sharp(await img.extract(c).raw().toBuffer(), { raw: { width: c.width, height: c.height, channels } });
    width = c.width;
    height = c.height;
  }
  const to = options.resizeTo;
  if (to && (to.width !== width || to.height !== height)) img = img.resize(to.width, to.height, { fit: "fill" });
  switch (options.format ?? "png") {
    case "png":
      return img.png().toBuffer();
    case "jpeg":
      return img.jpeg({ quality: 92 }).toBuffer();
    case "webp":
      return img.webp({ quality: 92 }).toBuffer();
  }
}
