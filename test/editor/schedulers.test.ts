import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  DDIMScheduler,
  EulerAncestralScheduler,
  EulerScheduler,
  Generator,
  parseSchedulerConfig,
  schedulerFromConfig,
} from "../../editor/index.js";
import { requireShared } from "../support/shared-data.js";

// the real SD1.5 scheduler config, read once ../shared is known to be there
let sd15Raw: Record<string, unknown>;
let sd15: ReturnType<typeof parseSchedulerConfig>;

/** abar_t of SD1.5, written out independently of the library. */
function abar(t: number): number {
  let p = 1;
  for (let i = 0; i <= t; i++) {
    const b = (Math.sqrt(0.00085) + ((Math.sqrt(0.012) - Math.sqrt(0.00085)) * i) / 999) ** 2;
    p *= 1 - b;
  }
  return p;
}

describe("schedulers from the real SD1.5 scheduler_config.json", () => {
  before(function () {
    const dir = requireShared(this, "reference/sd15-onnx-layout/scheduler");
    sd15Raw = JSON.parse(readFileSync(path.join(dir, "scheduler_config.json"), "utf8"));
    sd15 = parseSchedulerConfig(sd15Raw);
  });
  it("reads the config (PNDM class, scaled_linear, leading, steps_offset 1) and defaults to Euler ancestral", () => {
    expect(sd15).to.include({ beta_schedule: "scaled_linear", timestep_spacing: "leading", steps_offset: 1, prediction_type: "epsilon" });
    expect(schedulerFromConfig(sd15Raw)).to.be.instanceOf(EulerAncestralScheduler);
  });

  it("covers the SD1.5 sigma range 14.6146 .. 0.0292", () => {
    const s = new EulerAncestralScheduler({ ...sd15, timestep_spacing: "linspace" });
    s.setTimesteps(1000);
    expect(s.sigmas[0]).to.be.closeTo(14.6146, 1e-4);
    expect(s.sigmas[999]).to.be.closeTo(0.0292, 1e-4);
    expect(s.sigmas[1000]).to.equal(0);
    expect(s.initNoiseSigma).to.be.closeTo(14.6146, 1e-4);
  });

  it("leading spacing gives diffusers' timesteps for 10, 30 and 100 steps", () => {
    const s = new EulerScheduler(sd15);
    s.setTimesteps(10);
    expect(s.timesteps).to.deep.equal([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    s.setTimesteps(30);
    expect(s.timesteps).to.deep.equal(Array.from({ length: 30 }, (_, i) => (29 - i) * 33 + 1));
    s.setTimesteps(100);
    expect(s.timesteps).to.deep.equal(Array.from({ length: 100 }, (_, i) => (99 - i) * 10 + 1));
    // leading spacing starts below sigma_max, so diffusers scales the initial noise by sqrt(sigma^2 + 1)
    expect(s.initNoiseSigma).to.be.closeTo(Math.sqrt(s.sigmas[0] ** 2 + 1), 1e-9);
  });

  it("linspace and trailing spacings", () => {
    const lin = new EulerScheduler({ ...sd15, timestep_spacing: "linspace" });
    lin.setTimesteps(10);
    expect(lin.timesteps).to.deep.equal([999, 888, 777, 666, 555, 444, 333, 222, 111, 0]);
    const tr = new EulerScheduler({ ...sd15, timestep_spacing: "trailing" });
    tr.setTimesteps(10);
    expect(tr.timesteps).to.deep.equal([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    tr.setTimesteps(30);
    expect(tr.timesteps[0]).to.equal(999);
    expect(tr.timesteps[1]).to.equal(966);
    expect(tr.timesteps[29]).to.equal(32);
    // fractional linspace timesteps interpolate sigma linearly, as numpy.interp
    lin.setTimesteps(7);
    const t = lin.timesteps[1];
    const lo = Math.floor(t);
    const sig = (k: number) => Math.sqrt((1 - abar(k)) / abar(k));
    expect(lin.sigmas[1]).to.be.closeTo(sig(lo) + (t - lo) * (sig(lo + 1) - sig(lo)), 1e-9);
  });

  it("an Euler ancestral step checked by hand", () => {
    const s = new EulerAncestralScheduler(sd15);
    s.setTimesteps(10);
    const [s0, s1] = [s.sigmas[0], s.sigmas[1]];
    expect(s0).to.be.closeTo(Math.sqrt((1 - abar(901)) / abar(901)), 1e-9);
    const x = new Float32Array([1, -2]);
    const eps = new Float32Array([0.25, 0.5]);
    const noise = new Generator(7).randn(new Float32Array(2));
    s.step(eps, 0, x, new Generator(7));
    const up = Math.sqrt((s1 ** 2 * (s0 ** 2 - s1 ** 2)) / s0 ** 2);
    const down = Math.sqrt(s1 ** 2 - up ** 2);
    for (const [k, x0v] of [[0, 1], [1, -2]] as const) {
      const e = eps[k];
      const x0 = x0v - s0 * e;
      const want = x0v + ((x0v - x0) / s0) * (down - s0) + noise[k] * up;
      expect(x[k]).to.be.closeTo(want, 1e-5);
    }
  });

  it("a deterministic Euler step and v-prediction checked by hand", () => {
    const s = new EulerScheduler({ ...sd15, prediction_type: "v_prediction" });
    s.setTimesteps(10);
    const [s0, s1] = [s.sigmas[0], s.sigmas[1]];
    const x = new Float32Array([3]);
    s.step(new Float32Array([0.5]), 0, x, new Generator(0));
    const x0 = 0.5 * (-s0 / Math.sqrt(s0 * s0 + 1)) + 3 / (s0 * s0 + 1);
    expect(x[0]).to.be.closeTo(3 + ((3 - x0) / s0) * (s1 - s0), 1e-5);
  });

  it("a DDIM step (eta 0) checked by hand", () => {
    const s = new DDIMScheduler(sd15);
    s.setTimesteps(10);
    expect(s.timesteps[0]).to.equal(901);
    const x = new Float32Array([0.7]);
    s.step(new Float32Array([0.3]), 0, x, new Generator(0));
    const [a, ap] = [abar(901), abar(801)];
    const x0 = (0.7 - Math.sqrt(1 - a) * 0.3) / Math.sqrt(a);
    expect(x[0]).to.be.closeTo(Math.sqrt(ap) * x0 + Math.sqrt(1 - ap) * 0.3, 1e-5);
    expect(s.initNoiseSigma).to.equal(1);
  });

  it("the squaredcos_cap_v2 and linear beta schedules", () => {
    const cos = new DDIMScheduler({ ...sd15, beta_schedule: "squaredcos_cap_v2" });
    const f = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    expect(cos.alphasCumprod[0]).to.be.closeTo(f(1 / 1000) / f(0), 1e-12);
    const lin = new DDIMScheduler({ ...sd15, beta_schedule: "linear", beta_start: 0.0001, beta_end: 0.02 });
    expect(lin.alphasCumprod[1]).to.be.closeTo((1 - 0.0001) * (1 - (0.0001 + 0.0199 / 999)), 1e-12);
  });

  it("warns about unknown keys and rejects unsupported values with the valid list", () => {
    const warnings: string[] = [];
    parseSchedulerConfig({ ...sd15Raw, mystery_knob: 3 }, (w) => warnings.push(w));
    expect(warnings.join()).to.contain("mystery_knob");
    expect(() => parseSchedulerConfig({ timestep_spacing: "sideways" })).to.throw(/linspace, leading, trailing/);
    expect(() => parseSchedulerConfig({ beta_schedule: "exp" })).to.throw(/scaled_linear/);
    expect(() => schedulerFromConfig(sd15Raw, "plms" as never)).to.throw(/euler-a, euler, ddim/);
  });

  it("round-trips: a config's class name picks the algorithm, overrides win", () => {
    expect(schedulerFromConfig({ ...sd15Raw, _class_name: "DDIMScheduler" })).to.be.instanceOf(DDIMScheduler);
    expect(schedulerFromConfig({ ...sd15Raw, _class_name: "EulerDiscreteScheduler" })).to.be.instanceOf(EulerScheduler);
    expect(schedulerFromConfig(sd15Raw, "ddim")).to.be.instanceOf(DDIMScheduler);
  });

  it("Generator.randn is the stream of single normal() draws, across odd lengths and calls", () => {
    for (const seed of [0, 7, 2 ** 32 - 1]) {
      const bulk = new Generator(seed);
      const single = new Generator(seed);
      for (const n of [5, 64, 1, 0, 3, 4096]) {
        const got = bulk.randn(new Float32Array(n));
        const want = Float32Array.from({ length: n }, () => single.normal());
        expect(Array.from(got)).to.deep.equal(Array.from(want));
      }
    }
  });
});
