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

/** numpy's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * numpy.arange(start, stop, step) for a float step. Its length is ceil((stop - start) / step) in
 * float64, and element i is start + i * ((start + step) - start) rather than a running sum: a
 * loop that keeps subtracting the step drifts and lets one more element (about 1e-13) through for
 * about half the step counts.
 */
export function npArange(start: number, stop: number, step: number): number[] {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const out: number[] = [];
  if (length > 0) out.push(start);
  if (length > 1) out.push(start + step);
  const delta = start + step - start;
  for (let i = 2; i < length; i++) out.push(start + i * delta);
  return out;
}

/** numpy.linspace(start, stop, num): i * step + start, the last point exactly stop. */
export function npLinspace(start: number, stop: number, num: number): number[] {
  const div = num - 1;
  const delta = stop - start;
  const step = delta / div;
  const out = Array.from({ length: num }, (_, i) => (div <= 0 ? i * delta : step === 0 ? (i / div) * delta : i * step) + start);
  if (num > 1) out[num - 1] = stop;
  return out;
}

export interface SpacingOptions {
  /**
   * diffusers' multistep solvers (DPMSolverMultistep, UniPC) space linspace and leading over
   * n + 1 points and drop the lowest, so their last step does not land on t = 0.
   */
  multistep?: boolean;
  /** Round linspace to integers as DDIM and the multistep solvers do; Euler interpolates sigmas between fractions. */
  integer?: boolean;
}

/**
 * The inference timesteps of a spacing, highest first: the one place every scheduler gets them
 * from, so the Euler, DDIM and multistep families cannot drift apart again. As diffusers computes
 * them, except that the result is always n distinct values in 0..T-1: a RangeError where diffusers'
 * own formula would step past T - 1 or repeat a timestep (leading with steps near T).
 */
export function spacedTimesteps(config: SchedulerConfig, n: number, opts: SpacingOptions = {}): number[] {
  const T = config.num_train_timesteps;
  if (!Number.isInteger(n) || n < 1 || n > T) throw new RangeError(`steps must be an integer in 1..${T}, got ${n}`);
  const points = opts.multistep ? n + 1 : n;
  let ts: number[];
  switch (config.timestep_spacing) {
    case "linspace":
      ts = npLinspace(0, T - 1, points).reverse();
      if (opts.integer) ts = ts.map(roundHalfEven);
      break;
    case "leading": {
      const ratio = Math.floor(T / points);
      ts = Array.from({ length: points }, (_, i) => (points - 1 - i) * ratio + config.steps_offset);
      break;
    }
    case "trailing":
      // the same for every diffusers scheduler (no extra point to drop)
      ts = npArange(T, 0, -T / n).map((t) => roundHalfEven(t) - 1);
      break;
  }
  // Dropping the multistep solvers' extra point, and numpy's own overshoot: for some n (61, 103,
  // 121, ... of T = 1000) T / (T / n) rounds above n, np.arange yields n + 1 values and diffusers'
  // trailing schedule ends in -1; the n asked for are the first n.
  ts = ts.slice(0, n);
  for (let i = 0; i < n; i++) {
    if (!(ts[i] >= 0 && ts[i] <= T - 1 && (i === 0 || ts[i] < ts[i - 1]))) {
      throw new RangeError(
        `${config.timestep_spacing} spacing (steps_offset ${config.steps_offset}) cannot place ${n} distinct timesteps in 0..${T - 1}`,
      );
    }
  }
  return ts;
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
