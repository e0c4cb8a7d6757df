/**
 * InstructPix2Pix's three-way classifier-free guidance as a denoiser wrapper, with the ways of
 * spending fewer UNet evaluations per step (DESIGN.md 10). The branches are batched in the order
 * [full, image-only, unconditional], so every cheaper call is a prefix of the full batch:
 * - image guidance 1: eps = eps_img + sT (eps_full - eps_img) + (sI - 1)(eps_img - eps_uncond) loses
 *   its last term, so the unconditional branch is not run (exact);
 * - a guidance interval: the guidance branches run only while sigma is inside (lo, hi];
 * - adaptive guidance: once eps_full and eps_img point the same way (cosine >= threshold) the
 *   guidance branches stop for the rest of the edit.
 * Outside guidance the fully conditioned branch alone is the prediction.
 * Deep-feature reuse (DeepCache, Ma et al. 2023) is orthogonal: every `interval`-th call runs the
 * whole UNet and keeps its deep features; the calls between run only the outer blocks on them.
 */
import type { HostTensor, Session } from "../model/session.js";

export interface GuidanceScales {
  text: number;
  image: number;
}

/** diffusers' rule: guidance only when text scale > 1 and image scale >= 1. */
export function guidanceEnabled(s: GuidanceScales): boolean {
  return s.text > 1 && s.image >= 1;
}

/** When the guidance branches run; the default runs them at every step. */
export interface GuidanceSchedule {
  /** Sigma interval (lo, hi]: the guidance branches run only for noise levels inside it. */
  interval?: [number, number] | null;
  /** Stop the guidance branches for the rest of the edit once cos(eps_full, eps_img) reaches this. */
  adaptiveThreshold?: number | null;
}

/** The Multi-Reward conditioning inputs of a UNet (DESIGN.md 4): scores, and feedback where the graph takes it. */
export interface RewardInputs {
  scoresInput: string;
  scores: [number, number, number];
  feedbackInput?: string;
  feedback?: Float32Array;
}

/** The reward inputs repeated for each of a batch's B rows. */
export function rewardFeeds(r: RewardInputs, B: number): Record<string, HostTensor> {
  const scores = new Float32Array(B * 3);
  for (let b = 0; b < B; b++) scores.set(r.scores, b * 3);
  const feeds: Record<string, HostTensor> = { [r.scoresInput]: { type: "float32", data: scores, dims: [B, 3] } };
  if (r.feedbackInput && r.feedback) {
    const d = r.feedback.length;
    const fb = new Float32Array(B * d);
    for (let b = 0; b < B; b++) fb.set(r.feedback, b * d);
    feeds[r.feedbackInput] = { type: "float32", data: fb, dims: [B, d] };
  }
  return feeds;
}

export interface DenoiserInputs {
  unet: Session;
  latentShape: { channels: number; height: number; width: number };
  /** Image latent [C, h, w] (the VAE mean, unscaled). */
  imageLatent: Float32Array;
  /** [77, D] each. */
  textEmbedding: Float32Array;
  emptyEmbedding: Float32Array;
  embeddingDims: [number, number];
  scales: GuidanceScales;
  schedule?: GuidanceSchedule;
  /** DeepCache: the shallow graph, the name of the features it shares with the UNet, and the full-step interval. */
  deepCache?: { shallow: Session; features: string; interval: number };
  /** Reward conditioning, identical for all branches (DESIGN.md 4). */
  rewards?: RewardInputs;
}

/** What one step cost and decided. */
export interface StepCost {
  /** Branches evaluated (the UNet's batch) this step. */
  branches: number;
  /** Whether the step ran the shallow graph on cached deep features. */
  shallow: boolean;
  /** cos(eps_full, eps_img) when both ran, else null. */
  agreement: number | null;
}

export class InstructPix2PixDenoiser {
  /** Branches of a fully guided step: 3, 2 when image guidance is 1 (exact), 1 without guidance. */
  readonly maxBatch: number;
  /** Whole-UNet evaluations (batch entries) spent so far. */
  evaluations = 0;
  /** Shallow-graph evaluations (batch entries) on cached deep features. */
  shallowEvaluations = 0;
  calls = 0;
  last: StepCost = { branches: 0, shallow: false, agreement: null };
  /** The last whole step's deep features [B, ...] and its batch. */
  private cached: { data: Float32Array; dims: number[] } | null = null;
  private stopped = false;
  private readonly feeds = new Map<number, { sample: Float32Array; timestep: HostTensor; feeds: Record<string, HostTensor> }>();
  private readonly eps: Float32Array;
  private readonly plane: number;
  private readonly outName: string;

  constructor(private readonly i: DenoiserInputs) {
    const { channels: c, height: h, width: w } = i.latentShape;
    this.plane = c * h * w;
    this.maxBatch = !guidanceEnabled(i.scales) ? 1 : i.scales.image === 1 ? 2 : 3;
    this.eps = new Float32Array(this.plane);
    this.outName = i.unet.outputNames.includes("out_sample") ? "out_sample" : i.unet.outputNames[0];
  }

  /** The feeds of a batch of the first B branches, made once per B: the loop refills only the noisy latent and timestep. */
  private batchOf(B: number) {
    const hit = this.feeds.get(B);
    if (hit) return hit;
    const i = this.i;
    const { channels: c, height: h, width: w } = i.latentShape;
    const [len, dim] = i.embeddingDims;
    const sample = new Float32Array(B * 2 * this.plane);
    const hidden = new Float32Array(B * len * dim);
    hidden.set(i.textEmbedding, 0);
    for (let b = 1; b < B; b++) hidden.set(i.emptyEmbedding, b * len * dim);
    // the image-latent half never changes: write it once; the unconditional branch keeps zeros
    for (let b = 0; b < Math.min(B, 2); b++) sample.set(i.imageLatent, (2 * b + 1) * this.plane);
    const tsInput = i.unet.inputs.find((x) => x.name === "timestep");
    const tsRank = tsInput?.shape.length ?? 1;
    const n = tsRank === 0 ? 1 : B;
    const dims = tsRank === 0 ? [] : [B];
    const timestep: HostTensor =
      tsInput?.type === "int64" ? { type: "int64", data: new BigInt64Array(n), dims } : { type: "float32", data: new Float32Array(n), dims };
    const feeds: Record<string, HostTensor> = {
      sample: { type: "float32", data: sample, dims: [B, 2 * c, h, w] },
      timestep,
      encoder_hidden_states: { type: "float32", data: hidden, dims: [B, len, dim] },
    };
    if (i.rewards) Object.assign(feeds, rewardFeeds(i.rewards, B));
    const made = { sample, timestep, feeds };
    this.feeds.set(B, made);
    return made;
  }

  /** How many branches step at noise level `sigma` runs. */
  branchesAt(sigma: number): number {
    if (this.maxBatch === 1 || this.stopped) return 1;
    const iv = this.i.schedule?.interval;
    if (iv && !(sigma > iv[0] && sigma <= iv[1])) return 1;
    return this.maxBatch;
  }

  /**
   * The guided noise prediction for `scaledLatent` (already scaled by the scheduler) at timestep t
   * and noise level sigma. The returned buffer is reused by the next call.
   */
  async predict(scaledLatent: Float32Array, t: number, sigma: number): Promise<Float32Array> {
    const P = this.plane;
    const B = this.branchesAt(sigma);
    const { sample, timestep, feeds } = this.batchOf(B);
    for (let b = 0; b < B; b++) sample.set(scaledLatent, 2 * b * P);
    const ts = timestep.data;
    for (let k = 0; k < ts.length; k++) {
      if (ts instanceof BigInt64Array) ts[k] = BigInt(Math.round(t));
      else ts[k] = t;
    }
    const dc = this.i.deepCache;
    // the cached features serve any prefix of the branches they were computed for
    const shallow = dc !== undefined && this.cached !== null && this.calls % dc.interval !== 0 && B <= this.cached.dims[0];
    let out: Float32Array;
    if (shallow) {
      const { data, dims } = this.cached!;
      const per = data.length / dims[0];
      const features: HostTensor = { type: "float32", data: B === dims[0] ? data : data.slice(0, B * per), dims: [B, ...dims.slice(1)] };
      const shallowFeeds: Record<string, HostTensor> = { [dc.features]: features };
      for (const x of dc.shallow.inputs) if (x.name in feeds) shallowFeeds[x.name] = feeds[x.name];
      out = (await dc.shallow.run(shallowFeeds))[this.outName].data;
      this.shallowEvaluations += B;
    } else {
      const res = await this.i.unet.run(feeds);
      out = res[this.outName].data;
      if (dc) this.cached = { data: res[dc.features].data, dims: res[dc.features].dims };
      this.evaluations += B;
    }
    this.calls++;
    this.last = { branches: B, shallow, agreement: null };
    if (B === 1) {
      this.eps.set(out.subarray(0, P));
      return this.eps;
    }
    const { text: sT, image: sI } = this.i.scales;
    if (B === 2) {
      for (let k = 0; k < P; k++) this.eps[k] = out[P + k] + sT * (out[k] - out[P + k]);
    } else {
      for (let k = 0; k < P; k++) {
        const full = out[k];
        const img = out[P + k];
        const uncond = out[2 * P + k];
        this.eps[k] = uncond + sT * (full - img) + sI * (img - uncond);
      }
    }
    const threshold = this.i.schedule?.adaptiveThreshold;
    if (threshold != null) {
      const agreement = cosine(out, P);
      this.last.agreement = agreement;
      if (agreement >= threshold) this.stopped = true;
    }
    return this.eps;
  }
}

/** cos(eps_full, eps_img): the first two planes of the UNet output. */
function cosine(out: Float32Array, P: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let k = 0; k < P; k++) {
    const a = out[k];
    const b = out[P + k];
    ab += a * b;
    aa += a * a;
    bb += b * b;
  }
  return ab / Math.sqrt(aa * bb || 1);
}
