/**
 * `npm run bench`: speed as a measured property. Reports, per model, the wall time of one edit,
 * the time spent inside ONNX Runtime's run() calls, and their ratio (the pipeline's overhead),
 * as medians with min-max over repeated edits measured side by side in one process.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { edit, loadModel } from "../../editor/index.js";
import { BUNDLED_MODEL, ROOT, TEST_MODEL } from "../paths.js";

interface Stat {
  median: number;
  min: number;
  max: number;
}

const stat = (xs: number[]): Stat => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
};

export async function measureEdits(dir: string, opts: { repeats: number; steps: number }) {
  const model = await loadModel(dir, { intraOpThreads: Number(process.env.ORT_THREADS ?? 2) });
  const image = readFileSync(path.join(ROOT, "src", "bench", "sample", "images", "coffee.png"));
  const run = () => edit(model, { image, instruction: "make the mug red", steps: opts.steps, seed: 1 });
  await run(); // warm-up: first runs allocate ORT arenas
  const wall: number[] = [];
  const ort: number[] = [];
  for (let i = 0; i < opts.repeats; i++) {
    const r = await run();
    wall.push(r.timings.totalMs);
    ort.push(r.timings.ortMs);
  }
  await model.dispose();
  const ratios = wall.map((w, i) => w / ort[i]);
  return { model: dir, steps: opts.steps, repeats: opts.repeats, wall_ms: stat(wall), ort_ms: stat(ort), overhead_ratio: stat(ratios) };
}

async function main(): Promise<void> {
  const repeats = Number(process.env.BENCH_REPEATS ?? 7);
  const models = [TEST_MODEL, ...(existsSync(BUNDLED_MODEL) ? [BUNDLED_MODEL] : [])];
  const results = [];
  for (const m of models) results.push(await measureEdits(m, { repeats, steps: 20 }));
  const outDir = path.join(ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  const report = { date: new Date().toISOString(), node: process.version, results };
  writeFileSync(path.join(outDir, "perf.json"), JSON.stringify(report, null, 2));
  console.table(
    results.map((r) => ({
      model: path.basename(r.model),
      "edit ms (median)": r.wall_ms.median.toFixed(1),
      "ORT ms (median)": r.ort_ms.median.toFixed(1),
      "wall/ORT (median)": r.overhead_ratio.median.toFixed(3),
      "wall/ORT (min-max)": `${r.overhead_ratio.min.toFixed(3)}-${r.overhead_ratio.max.toFixed(3)}`,
    })),
  );
  console.log(`wrote ${path.join(outDir, "perf.json")}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
