/** DDIM (Song et al. 2020), eta = 0 by default; diffusers' DDIMScheduler. */
import type { Generator } from "../tensor/random.js";
import { type Scheduler, type SchedulerConfig, alphasCumprod, betasFor, spacedTimesteps } from "./base.js";

export class DDIMScheduler implements Scheduler {
  readonly alphasCumprod: Float64Array;
  readonly finalAlphaCumprod: number;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  private stepRatio = 1;
  private noise = new Float32Array(0);

  constructor(
    readonly config: SchedulerConfig,
    readonly eta = 0,
  ) {
    this.alphasCumprod = alphasCumprod(betasFor(config));
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  setTimesteps(n: number): void {
    this.timesteps = spacedTimesteps(this.config, n, { integer: true });
    this.stepRatio = Math.floor(this.config.num_train_timesteps / n);
  }

  scaleModelInput(sample: Float32Array, _i: number): Float32Array {
    return sample;
  }

  noiseLevel(i: number): number {
    const a = this.alphasCumprod[this.timesteps[i]];
    return Math.sqrt((1 - a) / a);
  }

  step(modelOutput: Float32Array, i: number, sample: Float32Array, rng: Generator): void {
    const t = this.timesteps[i];
    // 1. previous timestep (formula (12) of the DDIM paper walks from t to t - ratio)
    const prev = t - this.stepRatio;
    // 2. alphas and betas
    const aT = this.alphasCumprod[t];
    const aPrev = prev >= 0 ? this.alphasCumprod[prev] : this.finalAlphaCumprod;
    const bT = 1 - aT;
    // 5. variance sigma_t(eta), formula (16)
    const variance = ((1 - aPrev) / (1 - aT)) * (1 - aT / aPrev);
    const std = this.eta * Math.sqrt(variance);
    if (std > 0) {
      if (this.noise.length !== sample.length) this.noise = new Float32Array(sample.length);
      rng.randn(this.noise);
    }
    const range = this.config.clip_sample_range;
    const dirScale = Math.sqrt(1 - aPrev - std * std);
    for (let k = 0; k < sample.length; k++) {
      const x = sample[k];
      const o = modelOutput[k];
      // 3. predicted x0 and epsilon, formula (12)
      let x0: number;
      let eps: number;
      switch (this.config.prediction_type) {
        case "epsilon":
          x0 = (x - Math.sqrt(bT) * o) / Math.sqrt(aT);
          eps = o;
          break;
        case "v_prediction":
          x0 = Math.sqrt(aT) * x - Math.sqrt(bT) * o;
          eps = Math.sqrt(aT) * o + Math.sqrt(bT) * x;
          break;
        case "sample":
          x0 = o;
          eps = (x - Math.sqrt(aT) * x0) / Math.sqrt(bT);
          break;
      }
      // 4. optional clipping of x0
      if (this.config.clip_sample) x0 = Math.min(range, Math.max(-range, x0));
      // 6-7. direction pointing to x_t, then x_{t-1}
      sample[k] = Math.sqrt(aPrev) * x0 + dirScale * eps + (std > 0 ? std * this.noise[k] : 0);
    }
  }
}
