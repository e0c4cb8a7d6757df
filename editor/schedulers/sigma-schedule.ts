/** The sigma view shared by the Euler family (k-diffusion's parameterisation of a discrete schedule). */
import type { Generator } from "../tensor/random.js";
import {
  type Scheduler,
  type SchedulerConfig,
  alphasCumprod,
  betasFor,
  interpAt,
  sigmasFromAlphasCumprod,
  spacedTimesteps,
} from "./base.js";

export class SigmaSchedule {
  readonly trainSigmas: Float64Array;
  timesteps: number[] = [];
  /** One per timestep plus a final 0. */
  sigmas: number[] = [];

  constructor(readonly config: SchedulerConfig) {
    this.trainSigmas = sigmasFromAlphasCumprod(alphasCumprod(betasFor(config)));
  }

  set(n: number): void {
    this.timesteps = spacedTimesteps(this.config, n);
    this.sigmas = [...this.timesteps.map((t) => interpAt(this.trainSigmas, t)), 0];
  }

  /** diffusers: sigma_max for linspace/trailing spacing, sqrt(sigma_max^2 + 1) for leading. */
  get initNoiseSigma(): number {
    const max = Math.max(...this.sigmas);
    return this.config.timestep_spacing === "leading" ? Math.sqrt(max * max + 1) : max;
  }

  /** k-diffusion's c_in = 1 / sqrt(sigma^2 + 1), applied in place. */
  scale(sample: Float32Array, i: number): Float32Array {
    const c = 1 / Math.sqrt(this.sigmas[i] ** 2 + 1);
    for (let k = 0; k < sample.length; k++) sample[k] *= c;
    return sample;
  }
}

/** What the Euler family shares: the sigma schedule and k-diffusion's input scaling. Each algorithm adds its `step`. */
export abstract class SigmaScheduler implements Scheduler {
  protected readonly schedule: SigmaSchedule;

  constructor(readonly config: SchedulerConfig) {
    this.schedule = new SigmaSchedule(config);
  }

  get timesteps(): number[] {
    return this.schedule.timesteps;
  }
  get sigmas(): number[] {
    return this.schedule.sigmas;
  }
  get initNoiseSigma(): number {
    return this.schedule.initNoiseSigma;
  }
  setTimesteps(n: number): void {
    this.schedule.set(n);
  }
  scaleModelInput(sample: Float32Array, i: number): Float32Array {
    return this.schedule.scale(sample, i);
  }
  noiseLevel(i: number): number {
    return this.schedule.sigmas[i];
  }

  abstract step(modelOutput: Float32Array, i: number, sample: Float32Array, rng: Generator): void;
}
