/**
 * What diffusers' multistep solvers (DPMSolverMultistepScheduler, UniPCMultistepScheduler, v0.29)
 * share: their own integer timestep spacing (spacedTimesteps' `multistep`: n + 1 points with the
 * last dropped, unlike the Euler family), optional Karras sigmas, a final sigma of zero, the VP view
 * (alpha_t, sigma_t, lambda_t = log alpha_t - log sigma_t) and the data prediction x0 they integrate.
 */
import type { Generator } from "../tensor/random.js";
import {
  type PredictionType,
  type Scheduler,
  type SchedulerConfig,
  alphasCumprod,
  betasFor,
  roundHalfEven,
  sigmasFromAlphasCumprod,
  spacedTimesteps,
} from "./base.js";

export { roundHalfEven };

/** The timesteps both multistep solvers space (highest first, integers). */
export function multistepTimesteps(config: SchedulerConfig, n: number): number[] {
  return spacedTimesteps(config, n, { multistep: true, integer: true });
}

/** Karras et al. (2022) sigmas, rho = 7, between the schedule's extremes. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7;
  const lo = sigmaMin ** (1 / rho);
  const hi = sigmaMax ** (1 / rho);
  return Array.from({ length: n }, (_, i) => (hi + (n === 1 ? 0 : i / (n - 1)) * (lo - hi)) ** rho);
}

/** The (fractional) training timestep of a sigma, interpolated in log-sigma as diffusers' _sigma_to_t. */
export function sigmaToT(sigma: number, logSigmas: Float64Array): number {
  const ls = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (ls - logSigmas[i] >= 0) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const w = Math.min(1, Math.max(0, (logSigmas[low] - ls) / (logSigmas[low] - logSigmas[low + 1])));
  return (1 - w) * low + w * (low + 1);
}

/** alpha_t, sigma_t and lambda_t of a VE sigma (sigma = 0 gives lambda = +inf, which the updates handle). */
export function vp(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const s = sigma * alpha;
  return { alpha, sigma: s, lambda: Math.log(alpha) - Math.log(s) };
}

/** x0 = the data prediction of a model output at VE sigma, into `out`. */
export function dataPrediction(type: PredictionType, modelOutput: Float32Array, sample: Float32Array, veSigma: number, out: Float64Array): void {
  const { alpha, sigma } = vp(veSigma);
  for (let k = 0; k < out.length; k++) {
    const o = modelOutput[k];
    const x = sample[k];
    out[k] = type === "epsilon" ? (x - sigma * o) / alpha : type === "v_prediction" ? alpha * x - sigma * o : o;
  }
}

export abstract class MultistepScheduler implements Scheduler {
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  /** VE sigma per timestep plus the final one (0), stored as float32 like diffusers. */
  sigmas: number[] = [];
  private readonly trainSigmas: Float64Array;

  constructor(readonly config: SchedulerConfig) {
    // diffusers keeps the training sigmas as a float32 tensor
    this.trainSigmas = sigmasFromAlphasCumprod(alphasCumprod(betasFor(config))).map(Math.fround);
  }

  setTimesteps(n: number): void {
    const train = this.trainSigmas;
    let sigmas: number[];
    if (this.config.use_karras_sigmas) {
      sigmas = karrasSigmas(train[0], train[train.length - 1], n);
      const logSigmas = train.map((s) => Math.log(s));
      this.timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, logSigmas)));
    } else {
      this.timesteps = multistepTimesteps(this.config, n);
      sigmas = this.timesteps.map((t) => train[t]);
    }
    const last = this.config.final_sigmas_type === "sigma_min" ? train[0] : 0;
    this.sigmas = [...sigmas, last].map(Math.fround);
    this.reset();
  }

  /** The multistep solvers feed the UNet the VP sample itself. */
  scaleModelInput(sample: Float32Array, _i: number): Float32Array {
    return sample;
  }

  noiseLevel(i: number): number {
    return this.sigmas[i];
  }

  /** Forgets the previous steps' model outputs (a new trajectory). */
  protected abstract reset(): void;

  abstract step(modelOutput: Float32Array, i: number, sample: Float32Array, rng: Generator): void;
}
