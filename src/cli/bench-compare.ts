/**
 * `bench compare RUN_A RUN_B` and `bench agreement RUN_A RUN_B`: two finished runs' results.jsonl
 * read back and compared, with no model and no judge call. Compare pairs rows on sample id + seed
 * and refuses rows judged by different judges unless told otherwise; agreement sets two judgings
 * of the same edits side by side.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { agreement, agreementMarkdown } from "../benchmark/agreement.js";
import { compareMarkdown, compareRows, judgesOf } from "../benchmark/compare.js";
import { AGGREGATES, type Aggregate, type StatsOptions } from "../benchmark/figures.js";
import { groupRows } from "../benchmark/metrics.js";
import { type ResultRow, readRows } from "../benchmark/results.js";
import { RESULTS_FILE } from "../benchmark/runner.js";
import { CliError, parseNumber } from "./errors.js";

/** --aggregate, --bootstrap and --bootstrap-seed, checked. */
export function parseStatsOptions(o: { aggregate?: string; bootstrap?: string; bootstrapSeed?: string }): StatsOptions {
  const aggregate = (o.aggregate ?? "scored") as Aggregate;
  if (!AGGREGATES.includes(aggregate)) throw new CliError(`--aggregate must be scored or strict, got "${o.aggregate}"`);
  return {
    aggregate,
    bootstrap: parseNumber("--bootstrap", o.bootstrap ?? "2000", { integer: true, min: 1, max: 1_000_000 }),
    seed: parseNumber("--bootstrap-seed", o.bootstrapSeed ?? "0", { integer: true, min: 0, max: 2 ** 32 - 1 }),
  };
}

function readRun(dir: string): ResultRow[] {
  const file = path.join(dir, RESULTS_FILE);
  if (!existsSync(file)) throw new CliError(`${dir} has no ${RESULTS_FILE} (not a bench output folder)`);
  const rows = readRows(file);
  if (!rows.length) throw new CliError(`${file} holds no rows`);
  return rows;
}

/** The group to compare: the one named, else the run's only one (or its first, said on stderr). */
function pickGroup(dir: string, rows: ResultRow[], name: string | undefined, flag: string): { group: string; rows: ResultRow[] } {
  const groups = groupRows(rows);
  if (name !== undefined) {
    const rs = groups.get(name);
    if (!rs) throw new CliError(`${dir} has no group "${name}" (${flag}); it has: ${[...groups.keys()].join(", ")}`);
    return { group: name, rows: rs };
  }
  const [first] = groups.keys();
  if (groups.size > 1) process.stderr.write(`${dir} holds ${groups.size} groups; comparing its first, "${first}" (choose with ${flag})\n`);
  return { group: first, rows: groups.get(first)! };
}

const label = (dir: string, group: string) => `${path.basename(path.resolve(dir))}: ${group}`;

export function registerBenchCompare(bench: Command): void {
  bench
    .command("compare")
    .description("compare two finished runs on the samples both have: paired differences with 95 % intervals, sign-flip p, wins; per task Holm-corrected")
    .argument("<runA>", "a bench output folder (A)")
    .argument("<runB>", "another bench output folder (B); differences are B minus A")
    .option("--out <dir>", "where compare.json and compare.md go", "bench-results/compare")
    .option("--a-group <name>", "the group of run A to compare (\"model / preset\"; default its only or first one)")
    .option("--b-group <name>", "the group of run B to compare")
    .option("--allow-mixed-judges", "compare rows judged by different judges anyway (the report says so)")
    .option("--aggregate <scored|strict>", "scored (pairs both scored) or strict (failed, refused, missing edits count as the lowest score)", "scored")
    .option("--bootstrap <n>", "bootstrap resamples", "2000")
    .option("--bootstrap-seed <s>", "the bootstrap's seed", "0")
    .action((runA: string, runB: string, o) => {
      const stats = parseStatsOptions(o);
      const a = pickGroup(runA, readRun(runA), o.aGroup, "--a-group");
      const b = pickGroup(runB, readRun(runB), o.bGroup, "--b-group");
      const judges = judgesOf([...a.rows, ...b.rows]);
      if (judges.length > 1 && !o.allowMixedJudges) throw new CliError(`the rows were judged by different judges (${judges.join(" | ")}); compare anyway with --allow-mixed-judges`);
      const c = compareRows(a.rows, b.rows, { a: label(runA, a.group), b: label(runB, b.group) }, stats);
      if (judges.length > 1) c.mixedJudges = judges;
      if (!c.pairs) throw new CliError(`${runA} and ${runB} share no sample (id + seed): nothing to compare`);
      const md = compareMarkdown(c, "#").join("\n");
      mkdirSync(o.out, { recursive: true });
      writeFileSync(path.join(o.out, "compare.json"), JSON.stringify(c, null, 2));
      writeFileSync(path.join(o.out, "compare.md"), md);
      process.stdout.write(`${md}\n`);
      process.stderr.write(`comparison in ${path.join(o.out, "compare.md")}\n`);
    });

  bench
    .command("agreement")
    .description("how two judgings of the same edits agree: Spearman's rho, Kendall's tau-b, mean absolute difference per figure; Cohen's kappa on following yes/no")
    .argument("<runA>", "a bench output folder")
    .argument("<runB>", "another judging of the same edits (e.g. a rejudged run)")
    .option("--out <dir>", "also write agreement.json and agreement.md here")
    .action((runA: string, runB: string, o) => {
      const g = agreement(readRun(runA), readRun(runB), { a: path.basename(path.resolve(runA)), b: path.basename(path.resolve(runB)) });
      if (!g.rows) throw new CliError(`${runA} and ${runB} share no edit (model, preset, sample, seed): nothing to set side by side`);
      const md = agreementMarkdown(g).join("\n");
      if (o.out) {
        mkdirSync(o.out, { recursive: true });
        writeFileSync(path.join(o.out, "agreement.json"), JSON.stringify(g, null, 2));
        writeFileSync(path.join(o.out, "agreement.md"), md);
      }
      process.stdout.write(`${md}\n`);
    });
}
