/**
 * Where an instruction acts (issue 41, DESIGN.md 12): the relevance map from the editor's own UNet.
 * InstructPix2Pix's text-guidance term, eps(instruction, image) - eps(empty, image), is large where
 * the instruction changes the picture and small where it does not (DiffEdit, Couairon et al. 2023;
 * Watch Your Steps, Mirzaei et al. 2023). So:
 *   1. the source latent is noised to a few training timesteps with seeded noise;
 *   2. the instruction-and-image and the image-only branches run on every level in ONE UNet batch;
 *   3. |difference| is averaged over channels and levels per latent cell;
 *   4. the map is smoothed, brought to the working size, normalised by a high percentile,
 *      thresholded, grown and feathered into an edit mask for the mask machinery (mask.ts);
 *   5. a map that covers most of the picture is a global edit (style, lighting): no mask.
 * The rule's numbers were chosen by measurement on the bundled editor's held-out scenes
 * (benchmarks/evaluation/auto-mask.ts, docs/product-photos.md).
 */
import sharp from "sharp";
import type { EditMask } from "../../raster/mask.js";
import type { HostTensor, Session } from "../model/session.js";
import { type SchedulerConfig, alphasCumprod, betasFor } from "../schedulers/base.js";
import { Generator } from "../tensor/random.js";
import type { Region } from "./image.js";
import { boxMean } from "./detail.js";
import { type RewardInputs, rewardFeeds } from "./guidance.js";

export interface RelevanceRule {
  /** Training timesteps the source is noised to, as fractions of num_train_timesteps. */
  levels: number[];
  /** Box-smoothing radius on the latent map, in latent cells. */
  smooth: number;
  /** The map is divided by this quantile of itself (a robust maximum). */
  normaliseQuantile: number;
  /** Normalised value at or above which a pixel belongs to the edit. */
  threshold: number;
  /** Growth of the thresholded region, as a share of the working long side. */
  grow: number;
  /** Feather beyond the grown region, as a share of the working long side. */
  feather: number;
  /**
   * A global edit covers the picture AND has no part it leaves clearly alone: at least `coverage`
   * of the pixels at or above `at`, and the `lowQuantile` of the map at least `flatRatio` of its
   * median. A background change covers as much, but the product in it stays low (a ratio near 0.4).
   */
  global: { at: number; coverage: number; lowQuantile: number; flatRatio: number };
}

/** Measured on the held-out scenes (benchmarks/evaluation/auto-mask.ts, docs/product-photos.md): the rule the editor uses. */
export const RELEVANCE_RULE: RelevanceRule = {
  levels: [0.5, 0.7],
  smooth: 1,
  normaliseQuantile: 0.98,
  threshold: 0.4,
  grow: 2 / 64,
  feather: 2 / 64,
  global: { at: 0.2, coverage: 0.9, lowQuantile: 0.03, flatRatio: 0.65 },
};

/** The map is a property of the photo and the instruction, not of the edit's seed: best-of-N candidates share it. */
export const RELEVANCE_SEED = 0x5eed;

export interface RelevanceInputs {
  unet: Session;
  latentShape: { channels: number; height: number; width: number };
  /** The VAE mean, unscaled (the UNet's image half). */
  imageLatent: Float32Array;
  /** Multiplies the image latent into the sampler's space (the manifest's scaling_factor). */
  scalingFactor: number;
  textEmbedding: Float32Array;
  emptyEmbedding: Float32Array;
  embeddingDims: [number, number];
  schedulerConfig: SchedulerConfig;
  rewards?: RewardInputs;
}

/** Per level, |eps_full - eps_img| averaged over channels: [levels][h * w] at latent resolution. */
export async function relevanceLevels(i: RelevanceInputs, levels: number[], seed = RELEVANCE_SEED): Promise<{ maps: Float32Array[]; unetCalls: number; evaluations: number }> {
  const { channels: C, height: h, width: w } = i.latentShape;
  const P = C * h * w;
  const ac = alphasCumprod(betasFor(i.schedulerConfig));
  const T = i.schedulerConfig.num_train_timesteps;
  const ts = levels.map((f) => Math.min(T - 1, Math.max(0, Math.round(f * (T - 1)))));
  const rng = new Generator(seed);
  // the noised source in the variance-preserving form every scheduler's model input takes:
  // sqrt(abar) x0 + sqrt(1 - abar) noise = (x0 + sigma noise) / sqrt(sigma^2 + 1)
  const noisy = ts.map((t) => {
    const a = Math.sqrt(ac[t]);
    const s = Math.sqrt(1 - ac[t]);
    const noise = rng.randn(new Float32Array(P));
    return noise.map((n, k) => a * i.imageLatent[k] * i.scalingFactor + s * n);
  });
  // batch order per level: [full (instruction + image), image-only (empty prompt + image)]; one
  // call for all levels unless the graph takes a single timestep for the whole batch
  const tsInput = i.unet.inputs.find((x) => x.name === "timestep");
  const perBatchTimestep = (tsInput?.shape.length ?? 1) > 0;
  const groups = perBatchTimestep ? [ts.map((_, k) => k)] : ts.map((_, k) => [k]);
  const outName = i.unet.outputNames.includes("out_sample") ? "out_sample" : i.unet.outputNames[0];
  const maps = ts.map(() => new Float32Array(h * w));
  let evaluations = 0;
  for (const group of groups) {
    const feeds = branchFeeds(i, group.map((k) => ({ latent: noisy[k], t: ts[k] })), tsInput?.type === "int64", perBatchTimestep);
    const out = (await i.unet.run(feeds))[outName].data;
    evaluations += 2 * group.length;
    group.forEach((k, g) => {
      const full = 2 * g * P;
      const img = full + P;
      const map = maps[k];
      for (let c = 0; c < C; c++) for (let p = 0; p < h * w; p++) map[p] += Math.abs(out[full + c * h * w + p] - out[img + c * h * w + p]) / C;
    });
  }
  return { maps, unetCalls: groups.length, evaluations };
}

/** The UNet feeds of [full, image-only] pairs, one pair per noised latent. */
function branchFeeds(i: RelevanceInputs, rows: { latent: Float32Array; t: number }[], int64: boolean, perBatch: boolean): Record<string, HostTensor> {
  const { channels: c, height: h, width: w } = i.latentShape;
  const P = c * h * w;
  const [len, dim] = i.embeddingDims;
  const B = 2 * rows.length;
  const sample = new Float32Array(B * 2 * P);
  const hidden = new Float32Array(B * len * dim);
  const t = rows.flatMap((r) => [r.t, r.t]);
  rows.forEach((r, k) => {
    for (let b = 2 * k; b < 2 * k + 2; b++) {
      sample.set(r.latent, 2 * b * P);
      sample.set(i.imageLatent, (2 * b + 1) * P);
    }
    hidden.set(i.textEmbedding, 2 * k * len * dim);
    hidden.set(i.emptyEmbedding, (2 * k + 1) * len * dim);
  });
  const n = perBatch ? B : 1;
  const timestep: HostTensor = int64
    ? { type: "int64", data: BigInt64Array.from(t.slice(0, n), (x) => BigInt(x)), dims: perBatch ? [B] : [] }
    : { type: "float32", data: Float32Array.from(t.slice(0, n)), dims: perBatch ? [B] : [] };
  const feeds: Record<string, HostTensor> = {
    sample: { type: "float32", data: sample, dims: [B, 2 * c, h, w] },
    timestep,
    encoder_hidden_states: { type: "float32", data: hidden, dims: [B, len, dim] },
  };
  if (i.rewards) Object.assign(feeds, rewardFeeds(i.rewards, B));
  return feeds;
}

/** Mean of the level maps. */
export function averageLevels(maps: Float32Array[]): Float32Array {
  const out = new Float32Array(maps[0].length);
  for (const m of maps) for (let p = 0; p < out.length; p++) out[p] += m[p] / maps.length;
  return out;
}

/** Bilinear samples of a latent map at the centres of a region's working pixels (half-pixel aligned). */
function upsample(v: Float32Array, lw: number, lh: number, down: number, region: Region): Float32Array {
  const out = new Float32Array(region.width * region.height);
  for (let y = 0; y < region.height; y++) {
    const fy = Math.min(lh - 1, Math.max(0, (y + region.top + 0.5) / down - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(lh - 1, y0 + 1);
    const ay = fy - y0;
    for (let x = 0; x < region.width; x++) {
      const fx = Math.min(lw - 1, Math.max(0, (x + region.left + 0.5) / down - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(lw - 1, x0 + 1);
      const ax = fx - x0;
      const top = v[y0 * lw + x0] * (1 - ax) + v[y0 * lw + x1] * ax;
      const bottom = v[y1 * lw + x0] * (1 - ax) + v[y1 * lw + x1] * ax;
      out[y * region.width + x] = top * (1 - ay) + bottom * ay;
    }
  }
  return out;
}

function quantile(v: Float32Array, q: number): number {
  const s = Float32Array.from(v).sort();
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** Chebyshev distance to the nearest set pixel (two-pass chamfer), capped at `cap`. */
function distanceTo(m: Uint8Array, w: number, h: number, cap: number): Float32Array {
  const d = new Float32Array(w * h).fill(cap);
  for (let i = 0; i < m.length; i++) if (m[i]) d[i] = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let v = d[y * w + x];
      if (x > 0) v = Math.min(v, d[y * w + x - 1] + 1);
      if (y > 0) {
        v = Math.min(v, d[(y - 1) * w + x] + 1);
        if (x > 0) v = Math.min(v, d[(y - 1) * w + x - 1] + 1);
        if (x < w - 1) v = Math.min(v, d[(y - 1) * w + x + 1] + 1);
      }
      d[y * w + x] = v;
    }
  for (let y = h - 1; y >= 0; y--)
    for (let x = w - 1; x >= 0; x--) {
      let v = d[y * w + x];
      if (x < w - 1) v = Math.min(v, d[y * w + x + 1] + 1);
      if (y < h - 1) {
        v = Math.min(v, d[(y + 1) * w + x] + 1);
        if (x < w - 1) v = Math.min(v, d[(y + 1) * w + x + 1] + 1);
        if (x > 0) v = Math.min(v, d[(y + 1) * w + x - 1] + 1);
      }
      d[y * w + x] = v;
    }
  return d;
}

export interface AutoMaskReport {
  /** Whether a mask confined the edit. */
  applied: boolean;
  /** "local": a mask from the map; "global": the map covers most of the picture, no mask; "painted": the caller's mask won. */
  reason: "local" | "global" | "painted";
  /** Share of the picture the thresholded map covers (before growth). */
  coverage: number;
}

export interface AutoMask {
  report: AutoMaskReport;
  /** The edit mask at the photo's working size (null when not applied). */
  mask: EditMask | null;
  /** The normalised map at the photo's working size, 0..255 (for display). */
  map: { width: number; height: number; data: Uint8Array };
  /** The thresholded map before growth, 0/1 (for measurement). */
  core: Uint8Array;
}

/** The map smoothed, at the photo's working size and normalised; thresholded; judged global or local. */
export function relevanceCore(latentMap: Float32Array, lw: number, lh: number, down: number, content: Region, rule: RelevanceRule = RELEVANCE_RULE) {
  const smooth = rule.smooth > 0 ? boxMean(latentMap, lw, lh, rule.smooth) : latentMap;
  const map = upsample(smooth, lw, lh, down, content);
  const top = quantile(map, rule.normaliseQuantile) || 1;
  for (let p = 0; p < map.length; p++) map[p] = Math.min(1, map[p] / top);
  const core = new Uint8Array(map.length);
  let covered = 0;
  let wide = 0;
  for (let p = 0; p < map.length; p++) {
    if (map[p] >= rule.threshold) (core[p] = 1), covered++;
    if (map[p] >= rule.global.at) wide++;
  }
  const g = rule.global;
  const median = quantile(map, 0.5);
  const global = wide / map.length >= g.coverage && quantile(map, g.lowQuantile) >= g.flatRatio * median;
  return { map, core, coverage: covered / map.length, global };
}

/**
 * The mask from a latent relevance map: `content` is the photo's place in the padded working
 * image, `down` the latent downscale. Outside the grown and feathered region the mask is 0, so the
 * result there is the source exactly.
 */
export function maskFromRelevance(latentMap: Float32Array, lw: number, lh: number, down: number, content: Region, rule: RelevanceRule = RELEVANCE_RULE): AutoMask {
  const { width: W, height: H } = content;
  const { map, core, coverage, global } = relevanceCore(latentMap, lw, lh, down, content, rule);
  const view = { width: W, height: H, data: Uint8Array.from(map, (v) => Math.round(255 * v)) };
  if (global) return { report: { applied: false, reason: "global", coverage }, mask: null, map: view, core };
  // grown by `grow`, then a linear ramp over `feather` down to 0: the soft edge lies outside the map's region
  const long = Math.max(W, H);
  const g = rule.grow * long;
  const f = rule.feather * long;
  const dist = distanceTo(core, W, H, g + f + 1);
  const data = new Uint8Array(W * H);
  let sum = 0;
  for (let p = 0; p < data.length; p++) {
    data[p] = dist[p] <= g ? 255 : Math.round(255 * Math.max(0, 1 - (dist[p] - g) / (f + 1)));
    sum += data[p];
  }
  // the grown mask lets everything change: the same as no mask
  if (sum === 255 * data.length) return { report: { applied: false, reason: "global", coverage }, mask: null, map: view, core };
  return { report: { applied: true, reason: "local", coverage }, mask: { width: W, height: H, data, coverage: sum / (255 * data.length), full: false }, map: view, core };
}

/** The relevance map and its mask for one edit (what edit() calls). */
export async function autoMask(
  i: RelevanceInputs,
  down: number,
  content: Region,
  rule: RelevanceRule = RELEVANCE_RULE,
  onLevels?: (maps: Float32Array[]) => void,
): Promise<AutoMask & { unetCalls: number; evaluations: number }> {
  const { maps, unetCalls, evaluations } = await relevanceLevels(i, rule.levels);
  onLevels?.(maps);
  return { ...maskFromRelevance(averageLevels(maps), i.latentShape.width, i.latentShape.height, down, content, rule), unetCalls, evaluations };
}

/** A map (0..255, one plane) as a grey PNG. */
export function mapPng(m: { width: number; height: number; data: Uint8Array }): Promise<Buffer> {
  return sharp(m.data, { raw: { width: m.width, height: m.height, channels: 1 } }).toColourspace("b-w").png({ palette: false }).toBuffer();
}
