/**
 * The bundled editors' results (issue 3): reward-conditioned default at 5,5,5 vs the no-reward
 * baseline on held-out synthetic scenes, the reward-slider sweeps, and a picture grid.
 *
 *   node dist/benchmarks/evaluation/model-report.js [--limit N] [--out DIR] [--default DIR] [--baseline DIR] [--suites v1,scenes,...]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import sharp, { type OverlayOptions } from "sharp";
import { type EditorModel, type Rewards, edit, loadModel } from "../../editor/index.js";
import { BASELINE_MODEL, BUNDLED_MODEL, ROOT } from "../../src/paths.js";
import { type EvalResult, evaluateSynthetic } from "./evaluate-synthetic.js";
import { type SyntheticSuite, loadSyntheticSuite, sourceFile } from "../../src/benchmark/synthetic-suite.js";
import { WORLD_SUITES, evaluateWorld, worldTables } from "./world-eval.js";
import { kindTable, num, pct } from "./tables.js";

async function grid(suite: SyntheticSuite, models: EditorModel[], file: string, n = 8): Promise<void> {
  // one row per scene: source | target | each model at 5,5,5; 64 px tiles scaled x2
  const picks = [...new Map(suite.cases.map((c) => [c.record.kind, c])).values()].concat(suite.cases).slice(0, n);
  const tile = 128;
  const composites: OverlayOptions[] = [];
  for (const [row, c] of picks.entries()) {
    const src = readFileSync(sourceFile(suite, c.record.id));
    const tgt = readFileSync(path.join(suite.dir, `${c.record.id}-target.png`));
    const outs: Buffer[] = [src, tgt];
    for (const m of models) {
      outs.push((await edit(m, { image: src, instruction: c.record.instruction, seed: 7, workingSize: true })).image);
    }
    for (const [col, buf] of outs.entries()) {
      const input = await sharp(buf).resize(tile, tile, { kernel: "nearest" }).png().toBuffer();
      composites.push({ input, left: col * tile, top: row * tile });
    }
  }
  await sharp({ create: { width: tile * (2 + models.length), height: tile * picks.length, channels: 3, background: "#fff" } })
    .composite(composites)
    .png()
    .toFile(file);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      limit: { type: "string" },
      out: { type: "string", default: path.join(ROOT, "models") },
      default: { type: "string", default: BUNDLED_MODEL },
      baseline: { type: "string", default: BASELINE_MODEL },
      suites: { type: "string", default: Object.keys(WORLD_SUITES).join(",") },
      suite: { type: "string", default: WORLD_SUITES.scenes },
      "sweep-limit": { type: "string", default: "120" },
    },
  });
  const log = (s: string) => process.stderr.write(s + "\n");
  const limit = values.limit ? Number(values.limit) : undefined;
  const seed = 1000;
  // default vs baseline on every held-out suite: v1's scenes and v2's scenes, shapes, backdrops, pairs
  const rows = await evaluateWorld(
    [
      ["reward-conditioned @ 5,5,5", values.default!],
      ["baseline (no rewards)", values.baseline!],
    ],
    values.suites!.split(","),
    { limit, seed, log },
  );
  const suite = await loadSyntheticSuite(values.suite!, limit);
  const sweepSuite = { ...suite, cases: suite.cases.slice(0, Number(values["sweep-limit"])) };
  const mrc = await loadModel(values.default!);
  const base = await loadModel(values.baseline!);
  const run = async (label: string, m: EditorModel, s: SyntheticSuite, rewards?: Rewards) => {
    const t0 = Date.now();
    const r = await evaluateSynthetic(m, s, { rewards, seed });
    log(`${label}: follow ${pct(r.overall.following)} pres ${num(r.overall.preservationError)} qual ${num(r.overall.qualityError)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    return r;
  };
  const levels = [5, 4, 3, 2, 1];
  const presSweep: Array<[string, EvalResult]> = [];
  for (const p of levels) presSweep.push([`preserving ${p} (5,${p},5)`, await run(`P=${p}`, mrc, sweepSuite, [5, p, 5])]);
  const followSweep: Array<[string, EvalResult]> = [];
  for (const f of levels) followSweep.push([`following ${f} (${f},5,5)`, await run(`F=${f}`, mrc, sweepSuite, [f, 5, 5])]);
  mkdirSync(values.out!, { recursive: true });
  await grid(suite, [mrc, base], path.join(values.out!, "results-grid.png"));
  const view = (r: EvalResult) => ({ perKind: r.perKind, overall: r.overall });
  const summary = {
    date: new Date().toISOString(),
    seed,
    sweep_suite: path.relative(ROOT, suite.dir),
    sweep_samples: sweepSuite.cases.length,
    models: { default: mrc.manifest, baseline: base.manifest },
    comparison: rows.map((r) => ({ model: r.model, suite: r.suite, ...view(r.result) })),
    preserving_sweep: Object.fromEntries(presSweep.map(([k, r]) => [k, view(r)])),
    following_sweep: Object.fromEntries(followSweep.map(([k, r]) => [k, view(r)])),
  };
  writeFileSync(path.join(values.out!, "results.json"), JSON.stringify(summary, null, 2));
  const md = [
    "### Default vs baseline on each held-out suite (20 steps, text 3.0 / image 1.5)",
    worldTables(rows),
    "",
    `### Preservation slider (${path.relative(ROOT, suite.dir)}, ${sweepSuite.cases.length} scenes)`,
    kindTable(presSweep),
    "",
    `### Following slider (${path.relative(ROOT, suite.dir)}, ${sweepSuite.cases.length} scenes)`,
    kindTable(followSweep),
  ].join("\n");
  writeFileSync(path.join(values.out!, "results.md"), md + "\n");
  process.stdout.write(md + "\n");
  await mrc.dispose();
  await base.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
