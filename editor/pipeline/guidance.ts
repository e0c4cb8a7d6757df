/**
 * InstructPix2Pix's three-way classifier-free guidance as a denoiser wrapper: one batched UNet
 * call per step, so the sampling loop stays generic. Every buffer is allocated once per edit.
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
  /** Reward conditioning, identical for all branches (DESIGN.md 4). */
  rewards?: { scoresInput: string; scores: [number, number, number]; feedbackInput?: string; feedback?: Float32Array };
}

export class InstructPix2PixDenoiser {
  readonly batch: number;
  private readonly sample: Float32Array;
  private readonly timestep: HostTensor;
  private readonly feeds: Record<string, HostTensor>;
  private readonly eps: Float32Array;
  private readonly plane: number;
  private readonly outName: string;

  constructor(private readonly i: DenoiserInputs) {
    const { channels: c, height: h, width: w } = i.latentShape;
    this.plane = c * h * w;
    const guided = guidanceEnabled(i.scales);
    this.batch = guided ? 3 : 1;
    const B = this.batch;
    const [len, dim] = i.embeddingDims;
    // batch order: [full (instruction + image), image-only (empty prompt + image), unconditional (empty + zero image)]
    this.sample = new Float32Array(B * 2 * this.plane);
    const hidden = new Float32Array(B * len * dim);
    hidden.set(i.textEmbedding, 0);
    if (guided) {
      hidden.set(i.emptyEmbedding, len * dim);
      hidden.set(i.emptyEmbedding, 2 * len * dim);
    }
    // the image-latent half of the UNet input never changes: write it once; branch 3 stays zero
    for (let b = 0; b < Math.min(B, 2); b++) this.sample.set(i.imageLatent, (2 * b + 1) * this.plane);
    const tsType = i.unet.inputs.find((x) => x.name === "timestep")?.type === "int64" ? "int64" : "float32";
    const tsRank = i.unet.inputs.find((x) => x.name === "timestep")?.shape.length ?? 1;
    this.timestep =
      tsType === "int64"
        ? { type: "int64", data: new BigInt64Array(tsRank === 0 ? 1 : B), dims: tsRank === 0 ? [] : [B] }
        : { type: "float32", data: new Float32Array(tsRank === 0 ? 1 : B), dims: tsRank === 0 ? [] : [B] };
    this.feeds = {
      sample: { type: "float32", data: this.sample, dims: [B, 2 * c, h, w] },
      timestep: this.timestep,
      encoder_hidden_states: { type: "float32", data: hidden, dims: [B, len, dim] },
    };
    if (i.rewards) {
      const scores = new Float32Array(B * 3);
      for (let b = 0; b < B; b++) scores.set(i.rewards.scores, b * 3);
      this.feeds[i.rewards.scoresInput] = { type: "float32", data: scores, dims: [B, 3] };
      if (i.rewards.feedbackInput && i.rewards.feedback) {
        const d = i.rewards.feedback.length;
        const fb = new Float32Array(B * d);
        for (let b = 0; b < B; b++) fb.set(i.rewards.feedback, b * d);
        this.feeds[i.rewards.feedbackInput] = { type: "float32", data: fb, dims: [B, d] };
      }
    }
    this.eps = new Float32Array(this.plane);
    this.outName = i.unet.outputNames.includes("out_sample") ? "out_sample" : i.unet.outputNames[0];
  }

  /**
   * The guided noise prediction for `scaledLatent` (already scaled by the scheduler) at timestep t.
   * The returned buffer is reused by the next call.
   */
  async predict(scaledLatent: Float32Array, t: number): Promise<Float32Array> {
    const P = this.plane;
    for (let b = 0; b < this.batch; b++) this.sample.set(scaledLatent, 2 * b * P);
    const ts = this.timestep.data;
    for (let k = 0; k < ts.length; k++) {
      if (ts instanceof BigInt64Array) ts[k] = BigInt(Math.round(t));
      else ts[k] = t;
    }
    const out = (await this.i.unet.run(this.feeds))[this.outName].data;
    if (this.batch === 1) {
      this.eps.set(out.subarray(0, P));
      return this.eps;
    }
    const { text: sT, image: sI } = this.i.scales;
    for (let k = 0; k < P; k++) {
      const full = out[k];
      const img = out[P + k];
      const uncond = out[2 * P + k];
      this.eps[k] = uncond + sT * (full - img) + sI * (img - uncond);
    }
    return this.eps;
  }
}
