/**
 * UniPC (Zhao et al. 2023): diffusers' UniPCMultistepScheduler defaults, the B(h) = e^h - 1 variant
 * (bh2), order 2, data prediction, lower_order_final, final sigma 0. Each step first corrects the
 * current sample with the model output just computed (UniC), then predicts the next one (UniP).
 */
import type { Generator } from "../tensor/random.js";
import { MultistepScheduler, dataPrediction, vp } from "./multistep.js";

const ORDER = 2;

export class UniPCMultistepScheduler extends MultistepScheduler {
  /** Data predictions: the last step's, the one before, and a buffer for this step's. */
  private x0 = new Float64Array(0);
  private prevX0 = new Float64Array(0);
  private scratch = new Float64Array(0);
  /** The sample the last predictor started from, and the order it used. */
  private lastSample: Float32Array | null = null;
  private lastOrder = 1;
  private lowerOrderNums = 0;

  protected reset(): void {
    this.lowerOrderNums = 0;
    this.lastSample = null;
  }

  step(modelOutput: Float32Array, i: number, sample: Float32Array, _rng: Generator): void {
    const L = sample.length;
    if (this.x0.length !== L) {
      this.x0 = new Float64Array(L);
      this.prevX0 = new Float64Array(L);
      this.scratch = new Float64Array(L);
    }
    const current = this.scratch;
    dataPrediction(this.config.prediction_type, modelOutput, sample, this.sigmas[i], current);
    // the corrector still sees the previous two predictions as m0 and m1
    if (i > 0 && this.lastSample) this.correct(i, current, sample);
    [this.scratch, this.prevX0, this.x0] = [this.prevX0, this.x0, current];

    const remaining = this.timesteps.length - i;
    const order = Math.min(this.config.lower_order_final ? Math.min(ORDER, remaining) : ORDER, this.lowerOrderNums + 1);
    this.lastOrder = order;
    if (!this.lastSample || this.lastSample.length !== L) this.lastSample = new Float32Array(L);
    this.lastSample.set(sample);
    this.predict(i, order, sample);
    if (this.lowerOrderNums < ORDER) this.lowerOrderNums++;
  }

  /** UniP-bh2: x_t from x_s0 with m0 = x0 of this step and, for order 2, the previous one. */
  private predict(i: number, order: number, sample: Float32Array): void {
    const t = vp(this.sigmas[i + 1]);
    const s0 = vp(this.sigmas[i]);
    const h = t.lambda - s0.lambda;
    const hPhi1 = Math.expm1(-h);
    const Bh = hPhi1;
    const m0 = this.x0;
    let rk = 0;
    if (order === 2) rk = (vp(this.sigmas[i - 1]).lambda - s0.lambda) / h;
    const ratio = t.sigma / s0.sigma;
    for (let k = 0; k < sample.length; k++) {
      let x = ratio * sample[k] - t.alpha * hPhi1 * m0[k];
      // order 2 uses the fixed rho_p = 1/2
      if (order === 2) x -= t.alpha * Bh * 0.5 * ((this.prevX0[k] - m0[k]) / rk);
      sample[k] = x;
    }
  }

  /**
   * UniC-bh2: re-derives the current sample from the last predictor's start with the model output
   * that has just been computed at it (`modelT`), to one order higher than the predictor.
   */
  private correct(i: number, modelT: Float64Array, sample: Float32Array): void {
    const order = this.lastOrder;
    const t = vp(this.sigmas[i]);
    const s0 = vp(this.sigmas[i - 1]);
    const h = t.lambda - s0.lambda;
    const hh = -h;
    const hPhi1 = Math.expm1(hh);
    const Bh = hPhi1;
    const m0 = this.x0;
    const x = this.lastSample!;
    let rhoD1 = 0;
    let rhoT: number;
    let rk = 1;
    if (order === 1) {
      rhoT = 0.5;
    } else {
      rk = (vp(this.sigmas[i - 2]).lambda - s0.lambda) / h;
      // solve [[1, 1], [rk, 1]] rho = b for b_k = h phi_{k+1}(h) k! / B(h)
      let hPhiK = hPhi1 / hh - 1;
      const b1 = hPhiK / Bh;
      hPhiK = hPhiK / hh - 1 / 2;
      const b2 = (hPhiK * 2) / Bh;
      rhoD1 = (b1 - b2) / (1 - rk);
      rhoT = b1 - rhoD1;
    }
    const ratio = t.sigma / s0.sigma;
    for (let k = 0; k < sample.length; k++) {
      let corr = rhoT * (modelT[k] - m0[k]);
      if (order === 2) corr += rhoD1 * ((this.prevX0[k] - m0[k]) / rk);
      sample[k] = ratio * x[k] - t.alpha * hPhi1 * m0[k] - t.alpha * Bh * corr;
    }
  }
}
