/** Euler ancestral sampling (k-diffusion's sample_euler_ancestral; diffusers' EulerAncestralDiscreteScheduler). */
import type { Generator } from "../tensor/random.js";
import { predictOriginal } from "./base.js";
import { SigmaScheduler } from "./sigma-schedule.js";

export class EulerAncestralScheduler extends SigmaScheduler {
  private noise = new Float32Array(0);

  override step(modelOutput: Float32Array, i: number, sample: Float32Array, rng: Generator): void {
    const sigma = this.sigmas[i];
    const next = this.sigmas[i + 1];
    // 1. split the move to the next noise level into a deterministic part (down) and fresh noise (up)
    const up = Math.sqrt((next * next * (sigma * sigma - next * next)) / (sigma * sigma));
    const down = Math.sqrt(next * next - up * up);
    const dt = down - sigma;
    if (this.noise.length !== sample.length) this.noise = new Float32Array(sample.length);
    const noise = rng.randn(this.noise);
    const type = this.config.prediction_type;
    if (type === "epsilon") {
      // the common case without the per-element dispatch; the same arithmetic as below
      for (let k = 0; k < sample.length; k++) {
        const x = sample[k];
        const x0 = x - sigma * modelOutput[k];
        sample[k] = x + ((x - x0) / sigma) * dt + noise[k] * up;
      }
      return;
    }
    for (let k = 0; k < sample.length; k++) {
      const x = sample[k];
      // 2. denoised estimate x0, 3. derivative d = (x - x0) / sigma, 4. Euler step to sigma_down, then add noise
      const x0 = predictOriginal(type, modelOutput[k], x, sigma);
      sample[k] = x + ((x - x0) / sigma) * dt + noise[k] * up;
    }
  }
}
