/**
 * Fast edits (issue 20), a phase of `npm run bench` or standalone:
 *
 *   node dist/benchmarks/perf/fast.js [--limit N] [--fidelity-scenes N] [--no-fullscale] [--skip-defaults]
 *
 * - quality: the bundled editor on world v2's held-out suites (shapes, backdrops, pairs; seed
 *   1000 + i): the model's default settings, each technique alone, and the `fast` preset;
 * - fidelity: for the deterministic samplers, PSNR of each faster variant against the same sampler
 *   at 50 steps with every branch, same scenes and seeds;
 * - cost: UNet evaluations, wall time and peak RSS per edit, each configuration in a process of its
 *   own (peak RSS is a process's): the bundled editor, and the full-size converted Multi-Reward
 *   folder at 512 px, published defaults against `fast`.
 * The `fast` preset is read from presets.json, so what is measured is what ships.
 * Writes bench-results/fast.json and bench-results/fast.md.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { type EditOptions, type EditorModel, edit, loadModel } from "../../editor/index.js";
import { resolveParams } from "../../src/edit-params.js";
import { BUNDLED_MODEL, ROOT } from "../../src/paths.js";
import { loadPresets } from "../../src/presets/index.js";
import { type EvalResult, type EvalSettings, evaluateSynthetic } from "../evaluation/evaluate-synthetic.js";
import { FULLSCALE_CACHE, ensureFullScaleModel } from "./fullscale.js";
import { type SyntheticSuite, loadSyntheticSuite } from "../../src/benchmark/synthetic-suite.js";
import { WORLD_SUITES } from "../evaluation/world-eval.js";
import { renderFast } from "./fast-report.js";
import { peakRssGb } from "./peak-rss.js";
import type { CostRow, FastConfig, FastReport, FidelityRow, QualityRow } from "./fast-types.js";
import { stat } from "../../src/stats.js";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const SUITES = ["shapes", "backdrops", "pairs"];

/** The `fast` preset as edit settings (steps, guidance and sampling), straight from presets.json. */
export function fastPresetSettings(): FastConfig["settings"] {
  const p = resolveParams({ preset: "fast" }, loadPresets());
  return { steps: p.steps, textGuidance: p.textGuidance, imageGuidance: p.imageGuidance, sampling: p.sampling };
}

/** Quality rows: the default, each technique alone, and the preset (bundled editor defaults: euler-a, 20 steps, 3.0 / 1.5). */
export function qualityConfigs(): FastConfig[] {
  const fast = fastPresetSettings();
  const interval = fast.sampling?.guidanceInterval ?? [1, 15];
  const cache = fast.sampling?.cacheInterval ?? 3;
  return [
    { name: "default", what: "the model's defaults: Euler ancestral, 20 steps, 3 branches", settings: {} },
    { name: "dpmpp-2m 20", what: "sampler alone: DPM-Solver++(2M), 20 steps", settings: { sampling: { scheduler: "dpmpp-2m" } } },
    { name: "unipc 20", what: "sampler alone: UniPC, 20 steps", settings: { sampling: { scheduler: "unipc" } } },
    { name: "dpmpp-2m 10", what: "DPM-Solver++(2M), 10 steps", settings: { steps: 10, sampling: { scheduler: "dpmpp-2m" } } },
    { name: "dpmpp-2m 10 karras", what: "DPM-Solver++(2M), 10 steps, Karras sigmas", settings: { steps: 10, sampling: { scheduler: "dpmpp-2m", karrasSigmas: true } } },
    { name: "unipc 10", what: "UniPC, 10 steps", settings: { steps: 10, sampling: { scheduler: "unipc" } } },
    { name: "image guidance 1", what: "two branches (exact algebra; image guidance 1 instead of 1.5)", settings: { imageGuidance: 1 } },
    { name: `interval (${interval[0]}, ${interval[1]}]`, what: "guidance branches only for sigma in the interval", settings: { sampling: { guidanceInterval: interval } } },
    { name: "interval (0.28, 5.42]", what: "the interval an SD port uses", settings: { sampling: { guidanceInterval: [0.28, 5.42] } } },
    { name: "adaptive 0.999", what: "guidance branches stop once cos(eps_full, eps_img) >= 0.999", settings: { sampling: { adaptiveGuidance: 0.999 } } },
    { name: "adaptive 0.9999", what: "the same at 0.9999", settings: { sampling: { adaptiveGuidance: 0.9999 } } },
    { name: `deepcache ${cache}`, what: `whole UNet once every ${cache} steps, outer blocks in between`, settings: { sampling: { cacheInterval: cache } } },
    { name: "fast", what: "the fast preset", settings: fast },
  ];
}

/** Fidelity rows per deterministic sampler: the variant against 50 steps with every branch. */
export function fidelityConfigs(scheduler: "dpmpp-2m" | "unipc"): { reference: FastConfig; variants: FastConfig[] } {
  const fast = fastPresetSettings();
  const interval = fast.sampling?.guidanceInterval ?? [1, 15];
  const cache = fast.sampling?.cacheInterval ?? 3;
  const s = (steps: number, extra: NonNullable<EvalSettings["sampling"]> = {}, more: Partial<FastConfig["settings"]> = {}): FastConfig["settings"] => ({
    steps,
    ...more,
    sampling: { scheduler, ...extra },
  });
  return {
    reference: { name: `${scheduler} 50`, what: "50 steps, every branch", settings: s(50) },
    variants: [
      { name: "20 steps", what: "", settings: s(20) },
      { name: "10 steps", what: "", settings: s(10) },
      { name: "10 steps, image guidance 1", what: "", settings: s(10, {}, { imageGuidance: 1 }) },
      { name: `10 steps, interval (${interval[0]}, ${interval[1]}]`, what: "", settings: s(10, { guidanceInterval: interval }) },
      { name: "10 steps, adaptive 0.999", what: "", settings: s(10, { adaptiveGuidance: 0.999 }) },
      { name: `10 steps, deepcache ${cache}`, what: "", settings: s(10, { cacheInterval: cache }) },
      { name: "fast preset on this sampler", what: "", settings: { ...fast, sampling: { ...fast.sampling, scheduler } } },
    ],
  };
}

function pooled(results: Array<[string, EvalResult]>, c: FastConfig, shallow: number): QualityRow {
  const all = results.flatMap(([, r]) => r.samples);
  const pres = all.map((s) => s.preservationError).filter((v): v is number => v !== null);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const kinds = [...new Set(all.map((s) => s.kind))].sort();
  return {
    name: c.name,
    what: c.what,
    following: all.filter((s) => s.following).length / all.length,
    preservationError: pres.length ? mean(pres) : null,
    qualityError: mean(all.map((s) => s.qualityError)),
    unetEvaluations: mean(all.map((s) => s.unetEvaluations)),
    shallowEvaluations: shallow,
    editMs: mean(all.map((s) => s.editMs)),
    perKind: Object.fromEntries(kinds.map((k) => [k, all.filter((s) => s.kind === k && s.following).length / all.filter((s) => s.kind === k).length])),
    perSuite: Object.fromEntries(results.map(([name, r]) => [name, r.overall.following])),
  };
}

async function evaluate(model: EditorModel, suites: Array<[string, SyntheticSuite]>, c: FastConfig, keepPixels = false) {
  const results: Array<[string, EvalResult]> = [];
  let shallow = 0;
  let n = 0;
  for (const [name, s] of suites) {
    const r = await evaluateSynthetic(model, s, { ...c.settings, rewards: [5, 5, 5], seed: 1000, keepPixels });
    results.push([name, r]);
    shallow += r.shallowEvaluations * r.samples.length;
    n += r.samples.length;
  }
  return { results, row: pooled(results, c, shallow / n) };
}

function psnr(a: Float32Array, b: Float32Array): number {
  let se = 0;
  for (let k = 0; k < a.length; k++) se += (a[k] - b[k]) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}

async function fidelity(model: EditorModel, suites: Array<[string, SyntheticSuite]>, log: (s: string) => void): Promise<FidelityRow[]> {
  const rows: FidelityRow[] = [];
  for (const scheduler of ["dpmpp-2m", "unipc"] as const) {
    const { reference, variants } = fidelityConfigs(scheduler);
    const ref = (await evaluate(model, suites, reference, true)).results.flatMap(([, r]) => r.samples);
    rows.push({ scheduler, name: reference.name, psnr: { ...stat([Infinity]), mean: Infinity }, unetEvaluations: mean(ref.map((s) => s.unetEvaluations)), shallowEvaluations: 0 });
    for (const v of variants) {
      const got = (await evaluate(model, suites, v, true)).results.flatMap(([, r]) => r.samples);
      const p = got.map((s, i) => psnr(s.pixels!, ref[i].pixels!));
      rows.push({
        scheduler,
        name: v.name,
        psnr: { ...stat(p), mean: mean(p) },
        unetEvaluations: mean(got.map((s) => s.unetEvaluations)),
        shallowEvaluations: mean(got.map((s) => s.shallowEvaluations)),
      });
      log(`fidelity ${scheduler} ${v.name}: ${mean(p).toFixed(1)} dB`);
    }
  }
  return rows;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

interface CostRequest {
  model: string;
  image: string;
  instruction: string;
  options: Partial<EditOptions>;
  repeats: number;
  warmup: number;
}

/** The child's side: load, warm up, edit `repeats` times, print one JSON line. */
async function costChild(req: CostRequest): Promise<void> {
  const model = await loadModel(req.model, { intraOpThreads: THREADS, interOpThreads: 1 });
  const image = readFileSync(req.image);
  // each repeat is a whole edit: the encode cache would skip both encoders after the first
  const run = (seed: number) => edit(model, { image, instruction: req.instruction, seed, encodeCache: null, ...req.options });
  for (let i = 0; i < req.warmup; i++) await run(i);
  const wall: number[] = [];
  const runMs = () => ({ text_encoder: model.textEncoder.runMs, vae_encoder: model.vaeEncoder.runMs, unet: model.unet.runMs, unet_shallow: model.unetShallow?.runMs ?? 0, vae_decoder: model.vaeDecoder.runMs });
  const before = runMs();
  let last = null;
  for (let i = 0; i < req.repeats; i++) {
    last = await run(100 + i);
    wall.push(last.timings.totalMs / 1000);
  }
  const after = runMs();
  const componentS = Object.fromEntries(Object.keys(after).map((k) => [k, (after[k as keyof typeof after] - before[k as keyof typeof before]) / 1000 / req.repeats]));
  process.stdout.write(
    JSON.stringify({
      size: `${last!.parameters.workingWidth}x${last!.parameters.workingHeight}`,
      unetEvaluations: last!.timings.unetEvaluations,
      shallowEvaluations: last!.timings.shallowEvaluations,
      wallS: stat(wall),
      componentS,
      peakRssGb: peakRssGb(),
    }) + "\n",
  );
  await model.dispose();
}

function measureCost(name: string, config: string, req: CostRequest): CostRow {
  const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, "--cost-child", JSON.stringify(req)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`cost run ${name}/${config} failed (exit ${r.status})`);
  const o = JSON.parse(r.stdout.trim().split("\n").pop()!);
  return { model: name, config, settings: describe(req.options), ...o };
}

function describe(o: Partial<EditOptions>): string {
  const parts = [`${o.scheduler ?? "model default sampler"}`, `${o.steps ?? "default"} steps`, `text ${o.textGuidance ?? "default"} / image ${o.imageGuidance ?? "default"}`];
  if (o.guidanceInterval) parts.push(`guidance for sigma in (${o.guidanceInterval[0]}, ${o.guidanceInterval[1]}]`);
  if (o.adaptiveGuidance) parts.push(`adaptive ${o.adaptiveGuidance}`);
  if (o.cacheInterval && o.cacheInterval > 1) parts.push(`deepcache ${o.cacheInterval}`);
  return parts.join(", ");
}

const asOptions = (s: FastConfig["settings"]): Partial<EditOptions> => ({
  steps: s.steps,
  textGuidance: s.textGuidance,
  imageGuidance: s.imageGuidance,
  ...s.sampling,
});

export async function runFastBench(opts: { limit?: number; fidelityScenes?: number; fullScale?: boolean; skipDefaults?: boolean; log?: (s: string) => void } = {}): Promise<FastReport> {
  const log = opts.log ?? (() => {});
  const suites: Array<[string, SyntheticSuite]> = [];
  for (const s of SUITES) suites.push([s, await loadSyntheticSuite(WORLD_SUITES[s], opts.limit)]);
  const model = await loadModel(BUNDLED_MODEL, { intraOpThreads: THREADS, interOpThreads: 1 });
  const quality: QualityRow[] = [];
  for (const c of qualityConfigs()) {
    const { row } = await evaluate(model, suites, c);
    quality.push(row);
    log(`quality ${c.name}: following ${(100 * row.following).toFixed(1)} %, preservation ${row.preservationError?.toFixed(4)}, ${row.unetEvaluations.toFixed(1)} + ${row.shallowEvaluations.toFixed(1)} shallow evaluations`);
  }
  const perSuite = opts.fidelityScenes ?? 20;
  const few = suites.map(([n, s]) => [n, { ...s, cases: s.cases.slice(0, perSuite) }] as [string, SyntheticSuite]);
  const fid = await fidelity(model, few, log);
  await model.dispose();

  const fast = fastPresetSettings();
  const cost: CostRow[] = [];
  const small = path.join(WORLD_SUITES.shapes, "syn-0000-source.png");
  const manifest = JSON.parse(readFileSync(path.join(BUNDLED_MODEL, "reward-edit.json"), "utf8"));
  for (const [config, options] of [["default", {}], ["fast", asOptions(fast)]] as const) {
    cost.push(measureCost(manifest.name, config, { model: BUNDLED_MODEL, image: small, instruction: "make the mug red", options, repeats: 15, warmup: 3 }));
    log(`cost bundled ${config}: ${cost.at(-1)!.wallS.median.toFixed(3)} s`);
  }
  if (opts.fullScale !== false) {
    ensureFullScaleModel();
    const photo = path.join(ROOT, "src", "benchmark", "sample", "images", "astronaut.png");
    // the published evaluation's settings (DESIGN.md 8): the converted folder's manifest defaults
    const configs: Array<[string, Partial<EditOptions>]> = [["fast", asOptions(fast)]];
    if (!opts.skipDefaults) configs.unshift(["published defaults", {}]);
    for (const [config, options] of configs) {
      cost.push(measureCost("converted Multi-Reward, full size", config, { model: FULLSCALE_CACHE, image: photo, instruction: "turn the suit gold", options, repeats: 1, warmup: 0 }));
      log(`cost full-size ${config}: ${cost.at(-1)!.wallS.median.toFixed(1)} s, ${cost.at(-1)!.peakRssGb.toFixed(2)} GB`);
    }
  }
  return {
    date: new Date().toISOString(),
    threads: THREADS,
    suites: Object.fromEntries(suites.map(([n, s]) => [n, s.cases.length])),
    fast,
    quality,
    fidelityScenes: few.reduce((a, [, s]) => a + s.cases.length, 0),
    fidelity: fid,
    cost,
  };
}

export function writeFastReport(report: FastReport): string {
  const dir = path.join(ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "fast.json"), JSON.stringify(report, null, 2));
  const md = renderFast(report);
  writeFileSync(path.join(dir, "fast.md"), md);
  return md;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "cost-child": { type: "string" },
      limit: { type: "string" },
      "fidelity-scenes": { type: "string" },
      "no-fullscale": { type: "boolean", default: false },
      "skip-defaults": { type: "boolean", default: false },
    },
  });
  if (values["cost-child"]) return costChild(JSON.parse(values["cost-child"]) as CostRequest);
  const report = await runFastBench({
    limit: values.limit ? Number(values.limit) : undefined,
    fidelityScenes: values["fidelity-scenes"] ? Number(values["fidelity-scenes"]) : undefined,
    fullScale: !values["no-fullscale"] && process.env.BENCH_FULLSCALE !== "0",
    skipDefaults: values["skip-defaults"],
    log: (s) => process.stderr.write(s + "\n"),
  });
  process.stdout.write(writeFastReport(report));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
