/** Deterministic Euler sampling (k-diffusion's sample_euler with s_churn = 0; diffusers' EulerDiscreteScheduler). */
import type { Generator } from "../tensor/random.js";
import { predictOriginal } from "./base.js";
import { SigmaScheduler } from "./sigma-schedule.js";

export class EulerScheduler extends SigmaScheduler {
  override step(modelOutput: Float32Array, i: number, sample: Float32Array, _rng: Generator): void {
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
