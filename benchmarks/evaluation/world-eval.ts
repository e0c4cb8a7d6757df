/**
 * Editors side by side on several held-out synthetic suites (issue 15): the v1 scenes and the v2
 * world's scenes, held-out shapes, held-out backdrops and held-out colour/backdrop pairs.
 *
 *   node dist/benchmarks/evaluation/world-eval.js --model NAME=DIR [--model NAME=DIR ...] [--suites v1,scenes,...]
 *        [--limit N] [--out FILE.json]
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { type Rewards, loadModel } from "../../editor/index.js";
import { ROOT } from "../../src/paths.js";
import { type EvalResult, evaluateSynthetic } from "./evaluate-synthetic.js";
import { kindTable } from "./tables.js";
import { loadSyntheticSuite } from "../../src/benchmark/synthetic-suite.js";

export const WORLD_SUITES: Record<string, string> = {
  v1: path.join(ROOT, "models", "heldout"),
  scenes: path.join(ROOT, "models", "heldout-v2", "scenes"),
  shapes: path.join(ROOT, "models", "heldout-v2", "shapes"),
  backdrops: path.join(ROOT, "models", "heldout-v2", "backdrops"),
  pairs: path.join(ROOT, "models", "heldout-v2", "pairs"),
};

export interface WorldRow {
  model: string;
  suite: string;
  result: EvalResult;
}

export async function evaluateWorld(
  models: Array<[string, string]>,
  suites: string[],
  opts: { limit?: number; rewards?: Rewards; seed?: number; log?: (s: string) => void } = {},
): Promise<WorldRow[]> {
  const rows: WorldRow[] = [];
  for (const [name, dir] of models) {
    const model = await loadModel(dir);
    for (const suite of suites) {
      const s = await loadSyntheticSuite(WORLD_SUITES[suite] ?? suite, opts.limit);
      const t0 = Date.now();
      const rewards = model.manifest.rewards ? (opts.rewards ?? [5, 5, 5]) : undefined;
      const result = await evaluateSynthetic(model, s, { rewards, seed: opts.seed ?? 1000 });
      opts.log?.(`${name} on ${suite}: follow ${(100 * result.overall.following).toFixed(1)} % (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      rows.push({ model: name, suite, result });
    }
    await model.dispose();
  }
  return rows;
}

export function worldTables(rows: WorldRow[]): string {
  const suites = [...new Set(rows.map((r) => r.suite))];
  return suites
    .map((s) => {
      const these = rows.filter((r) => r.suite === s);
      return `#### ${s} (${these[0].result.samples.length} scenes)\n${kindTable(these.map((r) => [r.model, r.result]))}`;
    })
    .join("\n\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", multiple: true, default: [] },
      suites: { type: "string", default: Object.keys(WORLD_SUITES).join(",") },
      limit: { type: "string" },
      out: { type: "string" },
    },
  });
  const models = values.model!.map((m) => {
    const i = m.indexOf("=");
    if (i < 1) throw new Error(`--model wants NAME=DIR, got "${m}"`);
    return [m.slice(0, i), m.slice(i + 1)] as [string, string];
  });
  const rows = await evaluateWorld(models, values.suites!.split(","), {
    limit: values.limit ? Number(values.limit) : undefined,
    log: (s) => process.stderr.write(s + "\n"),
  });
  const md = worldTables(rows);
  process.stdout.write(md + "\n");
  if (values.out) {
    const json = rows.map((r) => ({ model: r.model, suite: r.suite, perKind: r.result.perKind, overall: r.result.overall }));
    writeFileSync(values.out, JSON.stringify(json, null, 2));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
