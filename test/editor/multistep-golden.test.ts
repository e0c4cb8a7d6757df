import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { Generator, type SchedulerName, createScheduler, parseSchedulerConfig } from "../../editor/index.js";
import { requireShared } from "../support/shared-data.js";
import { SHARED } from "../helpers.js";

/** Trajectories of the real diffusers v0.29 classes (../shared/reference/schedulers/golden.json). */
interface GoldenCase {
  name: SchedulerName | "dpmpp-2m-karras";
  class: string;
  config: Record<string, unknown>;
  steps: number;
  timesteps: number[];
  init_noise_sigma: number;
  start: number[];
  trajectory: { scaled_input: number[]; model_output: number[]; sample: number[] }[];
}

const GOLDEN = path.join(SHARED, "reference", "schedulers", "golden.json");

/** ||a - b|| / ||b||: the per-step relative error the issue bounds by 1e-4. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let k = 0; k < b.length; k++) {
    num += (a[k] - b[k]) ** 2;
    den += b[k] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

describe("multistep samplers reproduce diffusers v0.29's trajectories", function () {
  before(function () {
    requireShared(this, "reference/schedulers/golden.json");
  });
  const golden = existsSync(GOLDEN) ? JSON.parse(readFileSync(GOLDEN, "utf8")) : { cases: [] };

  for (const c of golden.cases as GoldenCase[]) {
    const name: SchedulerName = c.class === "UniPCMultistepScheduler" ? "unipc" : "dpmpp-2m";
    it(`${c.name} (${c.class}), ${c.steps} steps${c.config.use_karras_sigmas ? ", Karras sigmas" : ""}: every step within 1e-4`, () => {
      const warnings: string[] = [];
      const s = createScheduler(name, parseSchedulerConfig(c.config, (w) => warnings.push(w)));
      expect(warnings, "every key of the real config is understood").to.deep.equal([]);
      s.setTimesteps(c.steps);
      expect(s.timesteps).to.deep.equal(c.timesteps);
      expect(s.initNoiseSigma).to.equal(c.init_noise_sigma);
      // the stand-in UNet the golden file was made with (its stand_in_unet field)
      const n = c.start.length;
      const ramp = Array.from({ length: n }, (_, k) => -1 + (2 * k) / (n - 1));
      const sample = Float32Array.from(c.start);
      const rng = new Generator(0);
      let worst = 0;
      c.trajectory.forEach((g, i) => {
        const scaled = s.scaleModelInput(Float32Array.from(sample), i);
        const t = s.timesteps[i];
        const out = Float32Array.from(scaled, (x, k) => 0.6 * Math.tanh(x) + 0.2 * ramp[k] * (t / 1000) + 0.05);
        expect(relErr(scaled, g.scaled_input), `scaled input, step ${i}`).to.be.at.most(1e-4);
        expect(relErr(out, g.model_output), `model output, step ${i}`).to.be.at.most(1e-4);
        s.step(out, i, sample, rng);
        const e = relErr(sample, g.sample);
        worst = Math.max(worst, e);
        expect(e, `sample after step ${i}`).to.be.at.most(1e-4);
      });
      expect(worst).to.be.at.most(1e-4);
    });
  }

  it("has the cases the issue names: DPM-Solver++(2M) with and without Karras sigmas, and UniPC", () => {
    const names = (golden.cases as GoldenCase[]).map((c) => c.name);
    expect(names).to.include.members(["dpmpp-2m", "dpmpp-2m-karras", "unipc"]);
  });

  it("restarts cleanly: a second setTimesteps gives the same trajectory", () => {
    const c = (golden.cases as GoldenCase[]).find((x) => x.class === "UniPCMultistepScheduler")!;
    const s = createScheduler("unipc", parseSchedulerConfig(c.config));
    const run = () => {
      s.setTimesteps(c.steps);
      const x = Float32Array.from(c.start);
      for (let i = 0; i < c.steps; i++) s.step(Float32Array.from(x, (v) => Math.tanh(v)), i, x, new Generator(0));
      return x;
    };
    expect(Array.from(run())).to.deep.equal(Array.from(run()));
  });
});
