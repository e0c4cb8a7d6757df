/**
 * Tiled VAE encoding and decoding, with the semantics of diffusers' AutoencoderKL tiled_encode /
 * tiled_decode: tiles of a fixed size start every three quarters of a tile; each tile's output is
 * blended linearly into the one above it and the one to its left over a quarter of a tile (in
 * place, so a tile blends with neighbours that are blended already), and each then contributes
 * its first `tile - blend` rows and columns. The peak memory of a VAE run grows with the area it
 * sees, so a tile bounds it whatever the working size; diffusers' default tile (the model's sample
 * size) tiles nothing at 512 px, hence a tile of our own (DEFAULT_VAE_TILE, measured in
 * docs/performance.md).
 */
import type { Session } from "../model/session.js";

export const VAE_TILING_MODES = ["auto", "on", "off"] as const;
export type VaeTiling = (typeof VAE_TILING_MODES)[number];

/** Tile side in working pixels. */
export const DEFAULT_VAE_TILE = 256;
/** "auto" tiles working images whose long side is above this (768 and 1024 px working sizes; 512 stays whole). */
export const AUTO_TILING_ABOVE = 512;
let defaultMode: VaeTiling = "auto";
/** The mode of edits that name none (REWARD_EDIT_VAE_TILING: a memory-bounded pod tiles every size). */
export function setDefaultVaeTiling(mode: VaeTiling): void {
  if (!VAE_TILING_MODES.includes(mode)) throw new RangeError(`vae tiling must be one of ${VAE_TILING_MODES.join(", ")}`);
  defaultMode = mode;
}
export const defaultVaeTiling = (): VaeTiling => defaultMode;

/** diffusers' tile_overlap_factor. */
const OVERLAP = 0.25;

export interface Planes {
  /** [C, height, width]. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/** Whether an image of this working size is tiled, and with which tile (px); 0 = whole. */
export function tileFor(mode: VaeTiling, width: number, height: number, tile = DEFAULT_VAE_TILE): number {
  const long = Math.max(width, height);
  if (mode === "off") return 0;
  if (mode === "auto" && long <= AUTO_TILING_ABOVE) return 0;
  // as diffusers: only an image larger than a tile is tiled
  return long > tile ? tile : 0;
}

/** A tile must give whole latent pixels and a blend of whole latent pixels (a multiple of 4 latents). */
export function checkTileSize(tile: number, downscale: number): string | null {
  if (!Number.isInteger(tile) || tile <= 0 || tile % (4 * downscale) !== 0) return `vae_tile must be a positive multiple of ${4 * downscale} pixels`;
  return null;
}

function crop(p: Planes, top: number, left: number, h: number, w: number): Planes {
  const out = new Float32Array(p.channels * h * w);
  for (let c = 0; c < p.channels; c++)
    for (let y = 0; y < h; y++) {
      const src = (c * p.height + top + y) * p.width + left;
      out.set(p.data.subarray(src, src + w), (c * h + y) * w);
    }
  return { data: out, channels: p.channels, height: h, width: w };
}

/** diffusers' blend_v: the first rows of b fade in from the last rows of a (the tile above). */
function blendV(a: Planes, b: Planes, extent: number): void {
  const e = Math.min(a.height, b.height, extent);
  const w = b.width;
  for (let c = 0; c < b.channels; c++)
    for (let y = 0; y < e; y++) {
      const t = y / e;
      const ar = (c * a.height + a.height - e + y) * a.width;
      const br = (c * b.height + y) * w;
      for (let x = 0; x < w; x++) b.data[br + x] = a.data[ar + x] * (1 - t) + b.data[br + x] * t;
    }
}

/** diffusers' blend_h: the first columns of b fade in from the last columns of a (the tile to the left). */
function blendH(a: Planes, b: Planes, extent: number): void {
  const e = Math.min(a.width, b.width, extent);
  for (let c = 0; c < b.channels; c++)
    for (let y = 0; y < b.height; y++) {
      const ar = (c * a.height + y) * a.width + a.width - e;
      const br = (c * b.height + y) * b.width;
      for (let x = 0; x < e; x++) {
        const t = x / e;
        b.data[br + x] = a.data[ar + x] * (1 - t) + b.data[br + x] * t;
      }
    }
}

/**
 * Runs `fn` on overlapping tiles of `input` and blends the outputs. `tileIn` is the tile side in
 * input units, `scale` the output units per input unit (1/8 to encode, 8 to decode).
 */
export async function tiled(input: Planes, tileIn: number, scale: number, fn: (tile: Planes) => Promise<Planes>): Promise<Planes> {
  const stride = Math.floor(tileIn * (1 - OVERLAP));
  const tileOut = Math.round(tileIn * scale);
  const blend = Math.floor(tileOut * OVERLAP);
  const limit = tileOut - blend;
  const rows: Planes[][] = [];
  for (let i = 0; i < input.height; i += stride) {
    const row: Planes[] = [];
    for (let j = 0; j < input.width; j += stride) {
      row.push(await fn(crop(input, i, j, Math.min(tileIn, input.height - i), Math.min(tileIn, input.width - j))));
    }
    rows.push(row);
  }
  const channels = rows[0][0].channels;
  const height = rows.reduce((a, r) => a + Math.min(limit, r[0].height), 0);
  const width = rows[0].reduce((a, t) => a + Math.min(limit, t.width), 0);
  const out = new Float32Array(channels * height * width);
  let top = 0;
  for (let i = 0; i < rows.length; i++) {
    let left = 0;
    for (let j = 0; j < rows[i].length; j++) {
      const t = rows[i][j];
      if (i > 0) blendV(rows[i - 1][j], t, blend);
      if (j > 0) blendH(rows[i][j - 1], t, blend);
      const h = Math.min(limit, t.height);
      const w = Math.min(limit, t.width);
      for (let c = 0; c < channels; c++)
        for (let y = 0; y < h; y++) {
          const src = (c * t.height + y) * t.width;
          out.set(t.data.subarray(src, src + w), (c * height + top + y) * width + left);
        }
      left += w;
    }
    // the row above is needed only by this one
    if (i > 0) rows[i - 1] = [];
    top += Math.min(limit, rows[i][0].height);
  }
  return { data: out, channels, height, width };
}

/** The VAE encoder's mean ([C, h, w]) of a [3, H, W] image, whole or tiled. */
export async function encodeLatent(session: Session, image: Planes, channels: number, downscale: number, tile: number): Promise<Planes> {
  const run = async (p: Planes): Promise<Planes> => {
    const out = Object.values(await session.run({ sample: { type: "float32", data: p.data, dims: [1, 3, p.height, p.width] } }))[0];
    const [, , h, w] = out.dims;
    // an 8-channel output is mean + logvar: the mean comes first
    return { data: out.data.slice(0, channels * h * w), channels, height: h, width: w };
  };
  return tile > 0 ? tiled(image, tile, 1 / downscale, run) : run(image);
}

/** The VAE decoder's [3, H, W] image of a [C, h, w] latent (already divided by the scaling factor), whole or tiled. */
export async function decodeLatent(session: Session, latent: Planes, downscale: number, tile: number): Promise<Planes> {
  const run = async (p: Planes): Promise<Planes> => {
    const out = Object.values(await session.run({ latent_sample: { type: "float32", data: p.data, dims: [1, p.channels, p.height, p.width] } }))[0];
    const [, c, h, w] = out.dims;
    return { data: out.data, channels: c, height: h, width: w };
  };
  return tile > 0 ? tiled(latent, tile / downscale, downscale, run) : run(latent);
}
