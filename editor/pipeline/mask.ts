/**
 * Confining an edit to a mask (issue 21), in two places:
 *   - during sampling (blended latent diffusion, Avrahami et al. 2023): after every step the latent
 *     outside the mask is replaced by the source's latent noised to the level the sampler has
 *     reached, so the masked region is generated in agreement with what stays;
 *   - at full resolution: outside the mask the source's own pixels, exactly; a feather that lies
 *     wholly inside the mask hides the seam.
 * "paste" mode does only the second.
 */
import sharp from "sharp";
import { type EditMask, resizeMask } from "../../raster/mask.js";
import type { Scheduler } from "../schedulers/base.js";
import type { PreparedImage } from "./image.js";

export const MASK_MODES = ["blend", "paste"] as const;
export type MaskMode = (typeof MASK_MODES)[number];

/**
 * The mask at latent resolution over the padded working image: scaled to the photo's place in
 * it, mirrored into the padding like the photo itself, then averaged over each latent cell
 * (a cell the mask half covers is half blended).
 */
export async function latentMask(mask: EditMask, img: PreparedImage, latentWidth: number, latentHeight: number): Promise<Float32Array> {
  const { width, height, content } = img;
  const working = await sharp(await resizeMask(mask, content.width, content.height), { raw: { width: content.width, height: content.height, channels: 1 } })
    .extend({ left: content.left, top: content.top, right: width - content.width - content.left, bottom: height - content.height - content.top, extendWith: "mirror" })
    .toColourspace("b-w")
    .raw()
    .toBuffer();
  const fx = width / latentWidth;
  const fy = height / latentHeight;
  const out = new Float32Array(latentWidth * latentHeight);
  for (let y = 0; y < latentHeight; y++)
    for (let x = 0; x < latentWidth; x++) {
      let s = 0;
      let n = 0;
      for (let yy = Math.floor(y * fy); yy < Math.floor((y + 1) * fy); yy++)
        for (let xx = Math.floor(x * fx); xx < Math.floor((x + 1) * fx); xx++) (s += working[yy * width + xx]), n++;
      out[y * latentWidth + x] = n ? s / (255 * n) : 0;
    }
  return out;
}

/**
 * Whether a scheduler keeps its sample variance-exploding (x0 + sigma * noise: the Euler family,
 * whose first sample is scaled by sigma_max) or variance-preserving (alpha * x0 + s * noise).
 */
const varianceExploding = (s: Scheduler) => s.initNoiseSigma > 1;

/** Blends the source latent, noised to the sampler's level after step i, into the sample outside the mask. */
export class LatentBlender {
  constructor(
    private readonly mask: Float32Array,
    /** The source's latent in the sampler's (scaled) space. */
    private readonly sourceLatent: Float32Array,
    /** Fixed noise, as diffusers' inpainting re-noises with one draw. */
    private readonly noise: Float32Array,
    private readonly scheduler: Scheduler,
  ) {}

  /** The sample after step i (of n): outside the mask the source at that noise level. */
  apply(sample: Float32Array, i: number): void {
    const n = this.scheduler.timesteps.length;
    const sigma = i + 1 < n ? this.scheduler.noiseLevel(i + 1) : 0;
    const ve = varianceExploding(this.scheduler);
    const a = ve ? 1 : 1 / Math.sqrt(sigma * sigma + 1);
    const s = ve ? sigma : sigma / Math.sqrt(sigma * sigma + 1);
    const plane = this.mask.length;
    const channels = sample.length / plane;
    for (let c = 0; c < channels; c++)
      for (let p = 0; p < plane; p++) {
        const m = this.mask[p];
        if (m >= 1) continue;
        const k = c * plane + p;
        const kept = a * this.sourceLatent[k] + s * this.noise[k];
        sample[k] = m * sample[k] + (1 - m) * kept;
      }
  }
}

/**
 * The blend weight of the edit per pixel at an image's size: the mask's value, times a ramp that
 * rises from 0 at the mask's outer edge over about a 200th of the long side, so no pixel outside
 * the mask changes and no hard seam is left inside it.
 */
export async function featheredMask(mask: EditMask, width: number, height: number): Promise<Float32Array> {
  const m = await resizeMask(mask, width, height);
  const support = Buffer.alloc(width * height);
  for (let i = 0; i < m.length; i++) support[i] = m[i] > 0 ? 255 : 0;
  const sigma = Math.max(0.6, Math.max(width, height) / 200);
  const blurred = await sharp(support, { raw: { width, height, channels: 1 } }).blur(sigma).toColourspace("b-w").raw().toBuffer();
  const out = new Float32Array(width * height);
  for (let i = 0; i < out.length; i++) {
    if (m[i] === 0) continue;
    const ramp = Math.min(1, Math.max(0, (2 * blurred[i]) / 255 - 1));
    out[i] = (m[i] / 255) * ramp;
  }
  return out;
}

/** out = source + w * (edited - source), interleaved 8-bit RGB; where w is 0 the source's bytes, unchanged. */
export function pasteInside(edited: Buffer, source: Buffer, weight: Float32Array): { rgb: Buffer; keptPixels: number } {
  const rgb = Buffer.from(source);
  let kept = 0;
  for (let i = 0; i < weight.length; i++) {
    const w = weight[i];
    if (w === 0) {
      kept++;
      continue;
    }
    for (let c = 0; c < 3; c++) {
      const k = i * 3 + c;
      rgb[k] = Math.round(source[k] + w * (edited[k] - source[k]));
    }
  }
  return { rgb, keptPixels: kept };
}
