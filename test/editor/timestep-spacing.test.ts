import { expect } from "chai";
import {
  DEFAULT_CONFIG,
  Generator,
  PREDICTION_TYPES,
  SCHEDULER_NAMES,
  type Scheduler,
  type SchedulerConfig,
  type SchedulerName,
  TIMESTEP_SPACINGS,
  type TimestepSpacing,
  createScheduler,
  npArange,
  spacedTimesteps,
} from "../../editor/index.js";
import { multistepTimesteps } from "../../editor/schedulers/multistep.js";
import { SigmaScheduler } from "../../editor/schedulers/sigma-schedule.js";

// SD1.5's schedule, written out so this file needs nothing from ../shared
const SD15: SchedulerConfig = { ...DEFAULT_CONFIG, beta_start: 0.00085, beta_end: 0.012, beta_schedule: "scaled_linear", set_alpha_to_one: false, steps_offset: 1 };
const T = SD15.num_train_timesteps;
const at = (timestep_spacing: TimestepSpacing, extra: Partial<SchedulerConfig> = {}): SchedulerConfig => ({ ...SD15, timestep_spacing, ...extra });

describe("timestep spacing: one function, numpy's semantics, exactly n timesteps", () => {
  // the literals below were printed by numpy 2.4 from diffusers' formulas
  it("trailing matches np.round(np.arange(T, 0, -T / n)) - 1, numpy's half-to-even included", () => {
    expect(spacedTimesteps(at("trailing"), 3)).to.deep.equal([999, 666, 332]);
    expect(multistepTimesteps(at("trailing"), 3)).to.deep.equal([999, 666, 332]);
    // 937.5 and 812.5 round to even, not up
    const t16 = [999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61];
    expect(spacedTimesteps(at("trailing"), 16)).to.deep.equal(t16);
    expect(multistepTimesteps(at("trailing"), 16)).to.deep.equal(t16);
  });

  it("npArange has numpy's float length: 3 for T / 3, and numpy's own 62 for T / 61", () => {
    expect(npArange(1000, 0, -1000 / 3)).to.have.length(3);
    expect(npArange(1000, 0, -1000 / 6)).to.have.length(6);
    // T / (T / 61) rounds above 61 in float64, so numpy (and diffusers' trailing) gives one more, ending in -1
    const a = npArange(1000, 0, -1000 / 61);
    expect(a).to.have.length(62);
    expect(Math.round(a[61]) - 1).to.equal(-1);
    // ... which the schedule drops: the first 61 of diffusers' values
    const t61 = spacedTimesteps(at("trailing"), 61);
    expect(t61).to.have.length(61);
    expect(t61.slice(-2)).to.deep.equal([32, 15]);
  });

  it("linspace: np.linspace(0, T - 1, n) (fractions kept, or rounded half-to-even); multistep: n + 1 points, last dropped", () => {
    expect(spacedTimesteps(at("linspace"), 7)).to.deep.equal([999, 832.5, 666, 499.5, 333, 166.5, 0]);
    expect(spacedTimesteps(at("linspace"), 7, { integer: true })).to.deep.equal([999, 832, 666, 500, 333, 166, 0]);
    expect(spacedTimesteps(at("linspace"), 1)).to.deep.equal([0]);
    expect(multistepTimesteps(at("linspace"), 1)).to.deep.equal([999]);
    expect(multistepTimesteps(at("linspace"), 26)).to.deep.equal([
      999, 961, 922, 884, 845, 807, 768, 730, 692, 653, 615, 576, 538, 499, 461, 423, 384, 346, 307, 269, 231, 192, 154, 115, 77, 38,
    ]);
  });

  it("leading: arange(0, n) * (T // n) + steps_offset; multistep: T // (n + 1), last dropped", () => {
    expect(spacedTimesteps(at("leading"), 10)).to.deep.equal([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(multistepTimesteps(at("leading"), 10)).to.deep.equal([901, 811, 721, 631, 541, 451, 361, 271, 181, 91]);
    expect(spacedTimesteps(at("leading", { steps_offset: 0 }), 4)).to.deep.equal([750, 500, 250, 0]);
  });

  it("every scheduler takes its timesteps from it: the counts the old copies got wrong", () => {
    const t16 = spacedTimesteps(at("trailing"), 16);
    for (const name of SCHEDULER_NAMES) {
      const s = createScheduler(name, at("trailing"));
      for (const n of [3, 6, 9, 11, 13, 60]) {
        s.setTimesteps(n);
        expect(s.timesteps, `${name} ${n}`).to.have.length(n);
        expect(s.timesteps.at(-1), `${name} ${n}`).to.equal(Math.round(T / n) - 1);
      }
      s.setTimesteps(16);
      expect(s.timesteps, name).to.deep.equal(t16);
    }
    const ddim = createScheduler("ddim", at("linspace"));
    ddim.setTimesteps(7);
    expect(ddim.timesteps).to.deep.equal([999, 832, 666, 500, 333, 166, 0]);
    const euler = createScheduler("euler", at("linspace"));
    euler.setTimesteps(7);
    expect(euler.timesteps).to.deep.equal([999, 832.5, 666, 499.5, 333, 166.5, 0]);
    const unipc = createScheduler("unipc", at("linspace"));
    unipc.setTimesteps(26);
    expect(unipc.timesteps).to.deep.equal(multistepTimesteps(at("linspace"), 26));
  });

  it("every spacing and offset gives n distinct timesteps in 0..T-1 for every n up to T, or says it cannot", () => {
    const cannot: string[] = [];
    const wrong: string[] = [];
    for (const spacing of TIMESTEP_SPACINGS) {
      for (const steps_offset of [0, 1]) {
        for (const multistep of [false, true]) {
          for (let n = 1; n <= T; n++) {
            let ts: number[];
            try {
              ts = spacedTimesteps(at(spacing, { steps_offset }), n, { multistep, integer: true });
            } catch (e) {
              expect(e).to.be.instanceOf(RangeError);
              cannot.push(`${spacing}/${steps_offset}/${multistep ? "multistep" : "single"}/${n}`);
              continue;
            }
            // plain checks: a million chai assertions would take seconds
            let ok = ts.length === n && ts[0] <= T - 1 && ts[n - 1] >= 0;
            for (let i = 1; i < n && ok; i++) ok = ts[i] < ts[i - 1];
            if (!ok) wrong.push(`${spacing}/${steps_offset}/${multistep ? "multistep" : "single"}/${n}: ${ts.length} timesteps, ${ts[0]} .. ${ts.at(-1)}`);
          }
        }
      }
    }
    expect(wrong).to.deep.equal([]);
    // only where diffusers itself steps past T - 1 or repeats a timestep
    expect(cannot.sort()).to.deep.equal(
      ["leading/0/multistep/1000", "leading/1/multistep/1000", "leading/1/multistep/999", "leading/1/single/1000", "linspace/0/multistep/1000", "linspace/1/multistep/1000"].sort(),
    );
  });
});

/** What is wrong with a scheduler's n-step schedule (plain checks: chai per element would take seconds). */
function problems(s: Scheduler, n: number): string[] {
  s.setTimesteps(n);
  const out: string[] = [];
  const ts = s.timesteps;
  if (ts.length !== n) out.push(`${ts.length} timesteps`);
  if (!(ts[0] <= T - 1 && ts[n - 1] >= 0)) out.push(`timesteps ${ts[0]} .. ${ts.at(-1)}`);
  if (ts.some((t, i) => i > 0 && !(t < ts[i - 1]))) out.push("timesteps not strictly decreasing");
  // only the Euler family keeps linspace's fractions
  const fractional = s.config.timestep_spacing === "linspace" && s instanceof SigmaScheduler;
  if (!fractional && !ts.every(Number.isInteger)) out.push("fractional timesteps");
  for (let i = 0; i < ts.length; i++) if (!(s.noiseLevel(i) > 0 && Number.isFinite(s.noiseLevel(i)))) out.push(`noise level ${s.noiseLevel(i)} at step ${i}`);
  if (!(s.initNoiseSigma > 0 && Number.isFinite(s.initNoiseSigma))) out.push(`init noise sigma ${s.initNoiseSigma}`);
  if ("sigmas" in s) {
    const sigmas = (s as { sigmas: number[] }).sigmas;
    if (sigmas.length !== n + 1) out.push(`${sigmas.length} sigmas`);
    if (sigmas.some((x, i) => !Number.isFinite(x) || (i > 0 && !(x < sigmas[i - 1])))) out.push(`sigmas ${sigmas.join(", ")}`);
  }
  // a stand-in model over the whole schedule: a NaN sigma anywhere would show up here
  const x = Float32Array.from([1.5, -0.5, 0.25, -2]);
  const rng = new Generator(n);
  for (let i = 0; i < n; i++) {
    const scaled = s.scaleModelInput(Float32Array.from(x), i);
    s.step(Float32Array.from(scaled, (v) => 0.6 * Math.tanh(v) + 0.05), i, x, rng);
  }
  if (!x.every(Number.isFinite)) out.push(`trajectory ends at ${Array.from(x).join(", ")}`);
  return out;
}

describe("every scheduler x spacing x prediction type, 1-60 steps: count, range, finite sigmas and a finite trajectory", () => {
  const schedulers: { name: SchedulerName; extra: Partial<SchedulerConfig>; label: string }[] = [
    ...SCHEDULER_NAMES.map((name) => ({ name, extra: {}, label: name })),
    { name: "dpmpp-2m", extra: { final_sigmas_type: "sigma_min" }, label: "dpmpp-2m, final sigma_min" },
    { name: "unipc", extra: { final_sigmas_type: "sigma_min" }, label: "unipc, final sigma_min" },
  ];
  for (const { name, extra, label } of schedulers) {
    it(label, () => {
      const bad: string[] = [];
      for (const spacing of TIMESTEP_SPACINGS) {
        for (const prediction_type of PREDICTION_TYPES) {
          if (name === "euler-a" && prediction_type === "sample") continue;
          const s = createScheduler(name, at(spacing, { prediction_type, ...extra }));
          for (let n = 1; n <= 60; n++) bad.push(...problems(s, n).map((p) => `${spacing} ${prediction_type} ${n} steps: ${p}`));
        }
      }
      expect(bad).to.deep.equal([]);
    });
  }

  it("Karras sigmas (multistep): n timesteps in range and n + 1 decreasing sigmas for 1-60 steps", () => {
    for (const name of ["dpmpp-2m", "unipc"] as const) {
      const s = createScheduler(name, at("leading", { use_karras_sigmas: true }));
      for (let n = 1; n <= 60; n++) {
        s.setTimesteps(n);
        expect(s.timesteps, `${name} ${n}`).to.have.length(n);
        expect(Math.max(...s.timesteps)).to.be.at.most(T - 1);
        expect(Math.min(...s.timesteps)).to.be.at.least(0);
        const sigmas = (s as unknown as { sigmas: number[] }).sigmas;
        expect(sigmas).to.have.length(n + 1);
        for (let i = 1; i <= n; i++) expect(sigmas[i], `${name} ${n}`).to.be.below(sigmas[i - 1]);
      }
    }
  });
});
