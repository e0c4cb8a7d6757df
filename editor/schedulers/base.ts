/**
 * The scheduler contract and the pure schedule maths shared by every algorithm
 * (as diffusers defines them; see DESIGN.md 3).
 */
import type { Generator } from "../tensor/random.js";

export const BETA_SCHEDULES = ["linear", "scaled_linear", "squaredcos_cap_v2"] as const;
export const TIMESTEP_SPACINGS = ["linspace", "leading", "trailing"] as const;
export const PREDICTION_TYPES = ["epsilon", "v_prediction", "sample"] as const;

export type BetaSchedule = (typeof BETA_SCHEDULES)[number];
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];
export type PredictionType = (typeof PREDICTION_TYPES)[number];

/** The scheduler_config.json keys this project understands (diffusers names). */
export interface SchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: number[] | null;
  prediction_type: PredictionType;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
  clip_sample: boolean;
  clip_sample_range: number;
  set_alpha_to_one: boolean;
  /** Karras et al. sigma spacing (the multistep solvers). */
  use_karras_sigmas: boolean;
  /** The multistep solvers' last sigma: 0 (diffusers' default) or the schedule's smallest. */
  final_sigmas_type: FinalSigmasType;
  /** First-order final steps for short multistep schedules. */
  lower_order_final: boolean;
  euler_at_final: boolean;
}

export const FINAL_SIGMAS_TYPES = ["zero", "sigma_min"] as const;
export type FinalSigmasType = (typeof FINAL_SIGMAS_TYPES)[number];

export const DEFAULT_CONFIG: SchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: "linear",
  trained_betas: null,
  prediction_type: "epsilon",
  timestep_spacing: "linspace",
  steps_offset: 0,
  clip_sample: false,
  clip_sample_range: 1.0,
  set_alpha_to_one: true,
  use_karras_sigmas: false,
  final_sigmas_type: "zero",
  lower_order_final: true,
  euler_at_final: false,
};

export interface Scheduler {
  readonly config: SchedulerConfig;
  /** Timesteps handed to the UNet, highest noise first; set by setTimesteps. */
  readonly timesteps: number[];
  readonly initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): void;
  /** Scales the UNet's noisy-latent input in place for step i. */
  scaleModelInput(sample: Float32Array, i: number): Float32Array;
  /** The noise level of step i as a variance-exploding sigma (what guidance intervals are set in). */
  noiseLevel(i: number): number;
  /** Advances `sample` in place from step i to i+1 given the model output. */
  step(modelOutput: Float32Array, i: number, sample: Float32Array, rng: Generator): void;
}

export function betasFor(config: SchedulerConfig): Float64Array {
  const n = config.num_train_timesteps;
  if (config.trained_betas) return Float64Array.from(config.trained_betas);
  const betas = new Float64Array(n);
  switch (config.beta_schedule) {
    case "linear":
      for (let i = 0; i < n; i++) betas[i] = linspaceAt(config.beta_start, config.beta_end, n, i);
      break;
    case "scaled_linear":
      // the latent-diffusion schedule: linear in sqrt(beta)
      for (let i = 0; i < n; i++) betas[i] = linspaceAt(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), n, i) ** 2;
      break;
    case "squaredcos_cap_v2": {
      // Nichol & Dhariwal's cosine schedule, betas capped at 0.999 (diffusers' betas_for_alpha_bar)
      const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      for (let i = 0; i < n; i++) betas[i] = Math.min(1 - abar((i + 1) / n) / abar(i / n), 0.999);
      break;
    }
  }
  return betas;
}

export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) out[i] = acc *= 1 - betas[i];
  return out;
}

/** sigma_t = sqrt((1 - abar_t) / abar_t): the noise level of the variance-exploding view. */
export function sigmasFromAlphasCumprod(ac: Float64Array): Float64Array {
  return ac.map((a) => Math.sqrt((1 - a) / a));
}

function linspaceAt(start: number, end: number, n: number, i: number): number {
  return n === 1 ? start : start + ((end - start) * i) / (n - 1);
}

/**
 * Inference timesteps, highest first, as floats: `linspace` keeps fractions (Euler interpolates
 * sigmas between them); DDIM rounds them itself.
 */
export function spacedTimesteps(config: SchedulerConfig, n: number): number[] {
  const N = config.num_train_timesteps;
  if (!Number.isInteger(n) || n < 1 || n > N) throw new RangeError(`steps must be an integer in 1..${N}, got ${n}`);
  const out: number[] = [];
  switch (config.timestep_spacing) {
    case "linspace":
      for (let i = 0; i < n; i++) out.push(linspaceAt(0, N - 1, n, i));
      break;
    case "leading": {
      const ratio = Math.floor(N / n);
      for (let i = 0; i < n; i++) out.push(Math.round(i * ratio) + config.steps_offset);
      break;
    }
    case "trailing": {
      const ratio = N / n;
      for (let i = n - 1; i >= 0; i--) out.push(Math.round(N - i * ratio) - 1);
      break;
    }
  }
  return out.reverse();
}

/** numpy.interp over the integer grid 0..len-1. */
export function interpAt(table: Float64Array, t: number): number {
  if (t <= 0) return table[0];
  if (t >= table.length - 1) return table[table.length - 1];
  const lo = Math.floor(t);
  const f = t - lo;
  return table[lo] * (1 - f) + table[lo + 1] * f;
}

/** x0 from an epsilon / v / sample prediction in the sigma (k-diffusion) parameterisation. */
export function predictOriginal(type: PredictionType, out: number, x: number, sigma: number): number {
  switch (type) {
    case "epsilon":
      return x - sigma * out;
    case "v_prediction":
      return out * (-sigma / Math.sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1);
    case "sample":
      return out;
  }
}
