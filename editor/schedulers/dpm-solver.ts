/**
 * DPM-Solver++(2M) (Lu et al. 2022): diffusers' DPMSolverMultistepScheduler with algorithm_type
 * dpmsolver++, solver_order 2, the midpoint solver, lower_order_final and final sigma 0.
 * Deterministic: the same start gives the same trajectory, which guidance cut-offs and deep-feature
 * reuse need for clean comparisons.
 */
import type { Generator } from "../tensor/random.js";
import { MultistepScheduler, dataPrediction, vp } from "./multistep.js";

export class DPMSolverMultistepScheduler extends MultistepScheduler {
  /** The data predictions of this step and the previous one. */
  private x0 = new Float64Array(0);
  private prevX0 = new Float64Array(0);
  private lowerOrderNums = 0;

  protected reset(): void {
    this.lowerOrderNums = 0;
  }

  step(modelOutput: Float32Array, i: number, sample: Float32Array, _rng: Generator): void {
    if (this.x0.length !== sample.length) {
      this.x0 = new Float64Array(sample.length);
      this.prevX0 = new Float64Array(sample.length);
    }
    const n = this.timesteps.length;
    const last = i === n - 1;
    // a first-order final step for short schedules, and always when the last sigma is zero
    const firstOrderFinal =
      last && (this.config.euler_at_final || (this.config.lower_order_final && n < 15) || this.config.final_sigmas_type === "zero");
    [this.x0, this.prevX0] = [this.prevX0, this.x0];
    dataPrediction(this.config.prediction_type, modelOutput, sample, this.sigmas[i], this.x0);

    const t = vp(this.sigmas[i + 1]);
    const s0 = vp(this.sigmas[i]);
    const h = t.lambda - s0.lambda;
    const ratio = t.sigma / s0.sigma;
    const coef = t.alpha * (Math.exp(-h) - 1);
    if (this.lowerOrderNums < 1 || firstOrderFinal) {
      // first order: DDIM in the data-prediction form
      for (let k = 0; k < sample.length; k++) sample[k] = ratio * sample[k] - coef * this.x0[k];
    } else {
      const s1 = vp(this.sigmas[i - 1]);
      const r0 = (s0.lambda - s1.lambda) / h;
      for (let k = 0; k < sample.length; k++) {
        const d0 = this.x0[k];
        const d1 = (d0 - this.prevX0[k]) / r0;
        sample[k] = ratio * sample[k] - coef * d0 - 0.5 * coef * d1;
      }
    }
    if (this.lowerOrderNums < 2) this.lowerOrderNums++;
  }
}
