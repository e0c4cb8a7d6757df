/**
 * Previews of the forming image without the VAE decoder: a linear map from the latent channels
 * to RGB (+ bias), applied to the sampler's estimate of the clean latent (x0) at each step. The
 * map is fitted by the converter and the exporter from the folder's own decoder (reward-edit.json
 * `preview`); a folder without one gets the factors the community uses for Stable Diffusion 1.x
 * latents when it has 4 latent channels (right only for SD-family VAEs), and no previews otherwise.
 * See docs/progress.md.
 */
import sharp from "sharp";
import type { Manifest } from "../model/manifest.js";
import type { Region } from "./image.js";

/**
 * The SD 1.x latent-to-RGB factors as ComfyUI ships them (latent_formats.SD15): rows are the latent
 * channels of the scaled latent (x 0.18215), columns R, G, B, in [-1, 1]; no bias.
 */
export const SD15_COMMUNITY_FACTORS: readonly (readonly [number, number, number])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.6532],
];

export interface PreviewMap {
  /** One [r, g, b] row per latent channel, applied to the scaled latent; output in [-1, 1]. */
  factors: number[][];
  bias: number[];
  /** "manifest": fitted for this folder; "sd15-fallback": the community SD 1.x factors. */
  source: "manifest" | "sd15-fallback";
}

/** The folder's own map, else the documented fallback, else null (no previews; never an error). */
export function previewMapFor(m: Manifest): PreviewMap | null {
  const p = m.preview;
  if (p && p.factors.length === m.latent_channels) return { factors: p.factors, bias: p.bias, source: "manifest" };
  if (m.latent_channels === 4) return { factors: SD15_COMMUNITY_FACTORS.map((r) => [...r]), bias: [0, 0, 0], source: "sd15-fallback" };
  return null;
}

/** The sampler's estimate of the clean (scaled) latent at one step. */
export interface LatentEstimate {
  step: number;
  steps: number;
  x0: Float32Array;
  channels: number;
  height: number;
  width: number;
  /** The photo inside the padded latent, in latent pixels. */
  content: Region;
}

/** RGB8 of the photo's part of the latent, one pixel per latent pixel. */
export function latentRgb(e: LatentEstimate, map: PreviewMap): { rgb: Buffer; width: number; height: number } {
  const { channels: C, width: W, height: H, content: c } = e;
  const plane = W * H;
  const rgb = Buffer.alloc(c.width * c.height * 3);
  let o = 0;
  for (let y = c.top; y < c.top + c.height; y++) {
    for (let x = c.left; x < c.left + c.width; x++) {
      const i = y * W + x;
      for (let ch = 0; ch < 3; ch++) {
        let v = map.bias[ch];
        for (let k = 0; k < C; k++) v += e.x0[k * plane + i] * map.factors[k][ch];
        const u = Math.round((v + 1) * 127.5);
        rgb[o++] = u < 0 ? 0 : u > 255 ? 255 : u;
      }
    }
  }
  return { rgb, width: c.width, height: c.height };
}

/** A small PNG of the estimate (sharp's fastest settings: it is thrown away after one look). */
export async function previewPng(e: LatentEstimate, map: PreviewMap): Promise<{ png: Buffer; width: number; height: number }> {
  const { rgb, width, height } = latentRgb(e, map);
  const png = await sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1, adaptiveFiltering: false }).toBuffer();
  return { png, width, height };
}
