/** A product cutout as catalogues send them: an object on a transparent background, with soft edges. */
import sharp from "sharp";

export const CUTOUT = { width: 96, height: 72 };

/**
 * Straight RGBA: a striped orange ellipse whose alpha falls from 255 to 0 over about four pixels,
 * on a fully transparent background that hides a colour (blue) a careless flatten would show.
 */
export function cutoutRgba(): Buffer {
  const { width: w, height: h } = CUTOUT;
  const rgba = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      const d = Math.hypot((x - w / 2) / 30, (y - h / 2) / 22); // 1 on the ellipse's edge
      const a = Math.min(1, Math.max(0, (1 - d) * 7 + 0.5));
      const inside = a > 0;
      rgba[i] = inside ? 230 : 0;
      rgba[i + 1] = inside ? (x % 8 < 4 ? 120 : 90) : 0;
      rgba[i + 2] = inside ? 40 : 255;
      rgba[i + 3] = Math.round(255 * a);
    }
  return rgba;
}

const raw = () => sharp(cutoutRgba(), { raw: { width: CUTOUT.width, height: CUTOUT.height, channels: 4 } });
export const cutoutPng = () => raw().png().toBuffer();
export const cutoutWebp = () => raw().webp({ quality: 90 }).toBuffer();

/** The alpha plane of an image as decoded (null when it has none). */
export async function alphaOf(image: Buffer | string): Promise<Buffer | null> {
  const meta = await sharp(image).metadata();
  if (!meta.hasAlpha) return null;
  return sharp(image).ensureAlpha().extractChannel(3).raw().toBuffer();
}

/** Pixels whose alpha differs between two images of one size. */
export async function alphaDiffers(a: Buffer | string, b: Buffer | string): Promise<number> {
  const [x, y] = [await alphaOf(a), await alphaOf(b)];
  if (!x || !y) throw new Error("an image has no alpha");
  if (x.length !== y.length) throw new Error(`sizes differ: ${x.length} vs ${y.length} pixels`);
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  return n;
}
