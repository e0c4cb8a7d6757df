/**
 * `bench merge`: shard outputs combined into one results file and report, the same as one run.
 * Only shards of one run combine: the same arguments apart from the shard, each slice of 0..N-1
 * exactly once. Anything else would average unlike edits into one table, so it is refused; so are
 * rows judged by different judges (another snapshot, temperature, seed, prompts), unless asked.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { distinctJudges, judgeIdentity } from "./judge-summary.js";
import { writeReport } from "./report.js";
import { type ResultRow, readRows } from "./results.js";
import { RESULTS_FILE, comparePair } from "./runner.js";

export class MergeError extends Error {}

/** A bench output folder's run.json (written by `reward-edit bench`). */
interface RunDescription {
  suite: string;
  shard?: { index: number; count: number };
  models?: Array<{ label: string }>;
  presets?: Array<{ label: string }>;
  [k: string]: unknown;
}

function readRun(dir: string): RunDescription {
  if (!existsSync(path.join(dir, RESULTS_FILE))) throw new MergeError(`${dir} has no ${RESULTS_FILE}`);
  if (!existsSync(path.join(dir, "run.json"))) throw new MergeError(`${dir} has no run.json (not a bench output folder)`);
  return JSON.parse(readFileSync(path.join(dir, "run.json"), "utf8")) as RunDescription;
}

/**
 * Names the arguments two runs differ in, e.g. `steps (3 vs 4)`. Models count by name, not by
 * folder: shards run on other machines find the same model at other paths.
 */
function differences(x: RunDescription, y: RunDescription): string[] {
  const byName = (r: RunDescription) => ({ ...r, models: r.models?.map((m) => m.label) });
  const [a, b] = [byName(x), byName(y)] as Array<Record<string, unknown>>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => k !== "shard");
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => `${k} (${JSON.stringify(a[k]) ?? "unset"} vs ${JSON.stringify(b[k]) ?? "unset"})`);
}

export function checkShards(runs: Array<{ dir: string; run: RunDescription }>): void {
  const [first] = runs;
  for (const r of runs.slice(1)) {
    const diff = differences(first.run, r.run);
    if (diff.length) throw new MergeError(`${r.dir} was run with other arguments than ${first.dir}: ${diff.join(", ")}`);
  }
  const slices = runs.map((r) => r.run.shard ?? { index: 0, count: 1 });
  const count = slices[0].count;
  if (slices.some((s) => s.count !== count)) throw new MergeError(`the shards split the run differently: ${slices.map((s) => `${s.index}/${s.count}`).join(", ")}`);
  const seen = new Map<number, string>();
  for (const [i, s] of slices.entries()) {
    if (seen.has(s.index)) throw new MergeError(`shard ${s.index}/${count} given twice: ${seen.get(s.index)} and ${runs[i].dir}`);
    seen.set(s.index, runs[i].dir);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length) throw new MergeError(`shard${missing.length > 1 ? "s" : ""} ${missing.map((i) => `${i}/${count}`).join(", ")} missing`);
}

/** One line naming each judge and the shards it judged in, when there is more than one judge. */
export function checkJudges(shards: Array<{ dir: string; rows: ResultRow[] }>): void {
  const all = distinctJudges(shards.flatMap((s) => s.rows));
  if (all.length < 2) return;
  const where = all.map((j) => {
    const id = judgeIdentity(j);
    const dirs = shards.filter((s) => s.rows.some((r) => r.judge && judgeIdentity(r.judge) === id)).map((s) => s.dir);
    return `${j.label} [${j.rows} rows in ${dirs.join(", ")}]`;
  });
  throw new MergeError(`the rows were judged by ${all.length} different judges: ${where.join("; ")}; give --allow-mixed-judges to merge them anyway`);
}

export interface MergeOptions {
  /** Merge rows of different judges; the report then says the judges are mixed. */
  allowMixedJudges?: boolean;
  /** Dollars per million prompt and completion tokens, for the report's cost line. */
  price?: [number, number];
}

export async function mergeShards(shards: string[], out: string, o: MergeOptions = {}): Promise<ResultRow[]> {
  const runs = shards.map((dir) => ({ dir, run: readRun(dir) }));
  checkShards(runs);
  const shardRows = runs.map(({ dir }) => ({ dir, rows: readRows(path.join(dir, RESULTS_FILE)) }));
  if (!o.allowMixedJudges) checkJudges(shardRows);
  mkdirSync(path.join(out, "images"), { recursive: true });
  const byKey = new Map<string, ResultRow>();
  for (const { dir, rows } of shardRows) {
    for (const r of rows) byKey.set(r.key, r);
    const imgDir = path.join(dir, "images");
    if (existsSync(imgDir)) for (const f of readdirSync(imgDir)) copyFileSync(path.join(imgDir, f), path.join(out, "images", f));
  }
  const rows = [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  writeFileSync(path.join(out, RESULTS_FILE), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  // the merged folder describes the whole run, so it can be resumed or merged like one
  const { shard: _s, ...whole } = runs[0].run;
  writeFileSync(path.join(out, "run.json"), JSON.stringify(whole, null, 2));
  const { models, presets } = runs[0].run;
  await writeReport(rows, out, runs[0].run.suite, models && presets ? comparePair({ models, presets }) : undefined, { price: o.price });
  return rows;
}
