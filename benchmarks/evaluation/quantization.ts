/**
 * int8 weights (issue 33) and int8 arithmetic (issue 42) against float32 on the bundled editor, the
 * only trained editor here: the same folder quantised by models/convert/quantize.py and by
 * `models quantize --compute int8` (calibrated on the sample photos and heldout-v2 scenes, never on
 * the held-out suite measured here), edited with the same scenes, seeds and settings. The held-out
 * suite's following and preservation with each, and the PSNR of each int8 result against the
 * float32 one (working-size pixels, default settings and the `fast` preset); beside them the same
 * float32 folder on 1 thread instead of 2, whose PSNR against 2 threads gives the figures a scale.
 *
 *   node dist/benchmarks/evaluation/quantization.js [limit]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { type EditorModel, loadModel } from "../../editor/index.js";
import { loadSyntheticSuite } from "../../src/benchmark/synthetic-suite.js";
import { resolveParams } from "../../src/edit-params.js";
import { BUNDLED_MODEL, PYTHON, QUANTIZER, ROOT, projectCacheDir } from "../../src/paths.js";
import { loadPresets } from "../../src/presets/index.js";
import { quantizeCompute } from "../../src/quantize/int8-compute.js";
import { type EvalResult, type EvalSettings, evaluateSynthetic } from "./evaluate-synthetic.js";

/** The bundled editor with int8 weights, written once into the project cache (delete it after retraining the editor). */
export function quantisedBundled(dir = path.join(projectCacheDir(), "bundled-int8")): string {
  if (!existsSync(path.join(dir, "reward-edit.json"))) {
    const r = spawnSync(PYTHON, [QUANTIZER, BUNDLED_MODEL, dir], { stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) throw new Error("quantize.py failed on the bundled editor");
  }
  return dir;
}

/** The bundled editor with int8 arithmetic, written once into the project cache. */
export async function computeQuantisedBundled(dir = path.join(projectCacheDir(), "bundled-int8-compute")): Promise<string> {
  if (!existsSync(path.join(dir, "reward-edit.json"))) await quantizeCompute({ src: BUNDLED_MODEL, out: dir });
  return dir;
}

/** PSNR of b against a, both [0, 1] pixels as decoded from the written images. */
export function psnr(a: Float32Array, b: Float32Array): number {
  let mse = 0;
  for (let i = 0; i < a.length; i++) mse += (a[i] - b[i]) ** 2;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / (mse / a.length));
}

export interface QuantRow {
  settings: string;
  weights: string;
  n: number;
  following: number;
  preservationError: number | null;
  qualityError: number;
  /** Against the float32 result of the same scene and seed. */
  psnrMeanDb: number | null;
  psnrMinDb: number | null;
}


export async function runQuantizationEval(limit = 200, seeds = [0, 1], extra: Record<string, string> = {}): Promise<QuantRow[]> {
  const suite = await loadSyntheticSuite(path.join(ROOT, "models", "heldout"), limit);
  const options = { intraOpThreads: 2, interOpThreads: 1 };
  const models: Record<string, EditorModel> = {
    float32: await loadModel(BUNDLED_MODEL, options),
    int8: await loadModel(quantisedBundled(), options),
    "int8-compute": await loadModel(await computeQuantisedBundled(), options),
    // the float32 noise floor: the same folder on 1 thread, whose sums round in another order
    "float32, 1 thread": await loadModel(BUNDLED_MODEL, { ...options, intraOpThreads: 1 }),
  };
  for (const [name, dir] of Object.entries(extra)) models[name] = await loadModel(dir, options);
  const variants = Object.keys(models);
  const fast = resolveParams({ preset: "fast" }, loadPresets(), { deepCache: models.float32.unetShallow !== undefined });
  const settings: Record<string, Omit<EvalSettings, "seed">> = {
    default: {},
    fast: { rewards: fast.rewards, steps: fast.steps, textGuidance: fast.textGuidance, imageGuidance: fast.imageGuidance, sampling: fast.sampling },
  };
  const rows: QuantRow[] = [];
  try {
    for (const [name, s] of Object.entries(settings)) {
      const runs: Record<string, EvalResult[]> = Object.fromEntries(variants.map((v) => [v, []]));
      for (const seed of seeds) {
        for (const w of variants) runs[w].push(await evaluateSynthetic(models[w], suite, { ...s, seed, keepPixels: true }));
      }
      for (const w of variants) {
        const psnrs = runs.float32.flatMap((r, k) => r.samples.map((x, i) => psnr(x.pixels!, runs[w][k].samples[i].pixels!)));
        const mean = (f: (r: EvalResult) => number) => runs[w].reduce((a, r) => a + f(r), 0) / runs[w].length;
        rows.push({
          settings: name,
          weights: w,
          n: runs[w].reduce((a, r) => a + r.overall.n, 0),
          following: mean((r) => r.overall.following),
          preservationError: mean((r) => r.overall.preservationError ?? NaN),
          qualityError: mean((r) => r.overall.qualityError),
          // every result identical at 8 bits: Infinity, printed as such
          psnrMeanDb: w === "float32" ? null : psnrs.every((x) => x === Infinity) ? Infinity : psnrs.filter(Number.isFinite).reduce((a, b) => a + b, 0) / psnrs.filter(Number.isFinite).length,
          psnrMinDb: w !== "float32" ? Math.min(...psnrs) : null,
        });
      }
    }
  } finally {
    await Promise.all(Object.values(models).map((m) => m.dispose()));
  }
  return rows;
}

export function quantizationTable(rows: QuantRow[]): string {
  const f = (x: number | null, d = 3) => (x === null || Number.isNaN(x) ? "-" : x.toFixed(d));
  const out = ["| settings | folder | edits | following | preservation error | quality error | PSNR vs float32 dB, mean (min) |", "| --- | --- | --- | --- | --- | --- | --- |"];
  for (const r of rows) {
    out.push(`| ${r.settings} | ${r.weights} | ${r.n} | ${f(r.following)} | ${f(r.preservationError, 4)} | ${f(r.qualityError, 4)} | ${r.psnrMeanDb === null ? "-" : r.psnrMeanDb === Infinity ? "identical at 8 bits" : `${f(r.psnrMeanDb, 1)} (${f(r.psnrMinDb, 1)})`} |`);
  }
  return out.join("\n");
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  // further folders to compare: NAME=DIR after the limit
  const extra = Object.fromEntries(process.argv.slice(3).map((a) => [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]));
  const rows = await runQuantizationEval(process.argv[2] ? Number(process.argv[2]) : undefined, undefined, extra);
  process.stdout.write(JSON.stringify(rows) + "\n" + quantizationTable(rows) + "\n");
}
