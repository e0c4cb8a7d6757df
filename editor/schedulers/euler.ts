/** Deterministic Euler sampling (k-diffusion's sample_euler with s_churn = 0; diffusers' EulerDiscreteScheduler). */
import type { Generator } from "../tensor/random.js";
import { type Scheduler, type SchedulerConfig, predictOriginal } from "./base.js";
import { SigmaSchedule } from "./sigma-schedule.js";

export class EulerScheduler implements Scheduler {
  private readonly schedule: SigmaSchedule;

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

  step(modelOutput: Float32Array, i: number, sample: Float32Array, _rng: Generator): void {
    const sigma = this.sigmas[i];
    const dt = this.sigmas[i + 1] - sigma;
    const type = this.config.prediction_type;
    for (let k = 0; k < sample.length; k++) {
      const x = sample[k];
      // x0 estimate, derivative (x - x0) / sigma, one Euler step of size dt
      sample[k] = x + ((x - predictOriginal(type, modelOutput[k], x, sigma)) / sigma) * dt;
    }
  }
}
