import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { JudgeScorer, SCORING_PROTOCOLS, type ScoringProtocol, judgeConfigFrom } from "../../reward/index.js";
import { loadPresets } from "../presets/index.js";
import { consoleSummary, writeReport } from "../benchmark/report.js";
import { parseStatsOptions, registerBenchCompare } from "./bench-compare.js";
import { MAX_ROUNDS } from "../refine/index.js";
import { RESULTS_FILE, type PresetChoice, comparePair, runBenchmark } from "../benchmark/runner.js";
import { MergeError, mergeShards } from "../benchmark/merge.js";
import type { ResultRow } from "../benchmark/results.js";
import { checkInstructionLengths, loadRealEdit, loadSuite } from "../benchmark/suites.js";
import { GEDIT_DATASET, GEDIT_LANGUAGES, type GeditLanguage, loadGedit } from "../benchmark/gedit.js";
import { pullGedit } from "../benchmark/gedit-source.js";
import { progressFor } from "../hub/index.js";
import { REAL_EDIT_DATASET, pullRealEdit } from "../pull/dataset.js";
import { registerBenchExport } from "./bench-export.js";
import { judgeSummary } from "../benchmark/judge-summary.js";
import { benchProgress, priceFrom } from "./bench-progress.js";
import { parseRepeats, registerRejudge } from "./bench-rejudge.js";
import { CliError, parseNumber, parseRewards } from "./errors.js";
import { benchPresets, editorChoices, reportSweep } from "./bench-editors.js";
import { registerOutputCommands } from "./bench-outputs.js";

function parseShard(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new CliError(`--shard must be i/N with 0 <= i < N, got "${s}"`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

function presetChoices(o: { preset?: string; rewards?: string }): PresetChoice[] {
  if (o.rewards && o.preset) throw new CliError("give either --rewards or --preset, not both");
  if (o.rewards) {
    const r = parseRewards(o.rewards);
    return [{ label: `rewards ${r.join(",")}`, rewards: r }];
  }
  const all = loadPresets();
  return (o.preset ?? "best").split(",").map((name) => {
    const p = all[name.trim()];
    if (!p) throw new CliError(`unknown preset "${name}"; known: ${Object.keys(all).join(", ")}`);
    return { label: p.name, rewards: p.rewards, steps: p.steps, textGuidance: p.text_guidance, imageGuidance: p.image_guidance };
  });
}

const sortRows = (rows: ResultRow[]) => [...rows].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

export function registerBench(program: Command): void {
  const bench = program
    .command("bench")
    .enablePositionalOptions()
    .description("run an editor over a benchmark suite, score every edit, write results.jsonl + report.json/summary.md/report.html")
    .option("--suite <name>", "sample | real-edit | jsonl | synthetic | gedit-bench", "sample")
    .option("--suite-path <path>", "the Real-Edit folder, the JSONL file or GEdit-Bench's .arrow folder (real-edit and gedit-bench without it: pulled from the Hub)")
    .option("--dataset <repo[@rev]>", `the Hub dataset --suite real-edit or gedit-bench pulls (default ${REAL_EDIT_DATASET}, ${GEDIT_DATASET})`)
    .option("--language <en|cn>", "gedit-bench: the instructions' language (default en)")
    .option("--intersection", "gedit-bench: only the rows with Intersection_exist")
    .option("--protocol <name>", `judge protocol: ${SCORING_PROTOCOLS.join(", ")} (default viescore for gedit-bench, else the configured one, mrc)`)
    .option("--model <dir>", "model folder or hub:REPO[/SUBFOLDER][@REV] (default: the bundled editor)")
    .option("--editor <spec>", "the editor: a model folder, hub:..., openai:MODEL[@BASE_URL] or a JSON config file (key in REWARD_EDIT_EDITOR_API_KEY)")
    .option("--outputs <dir>", "judge edits made elsewhere: GEdit-Bench's fullset/ layout or an outputs.jsonl manifest (checked first)")
    .option("--sweep <perspective>", "following, preserving or quality (or a comma list): that reward level at 0..5, the others at 5")
    .option("--compare [dir]", "also run a second model or editor spec and compare (default: the bundled no-reward baseline)")
    .option("--preset <names>", "comma-separated presets (default best)")
    .option("--rewards <F,P,Q>", "explicit reward levels instead of presets")
    .option("--seeds <list>", "comma-separated seeds", "0")
    .option("--steps <n>", "override the steps of every edit")
    .option("--backend <name>", "judge or local (default: judge when configured)")
    .option("--shard <i/N>", "run only slice i of N (merge the slices with `bench merge`)")
    .option("--limit <n>", "only the first n samples")
    .option("--refine <n>", "refinement rounds per edit: the scorer's verdict drives up to n edits, the best is kept", "1")
    .option("--judge-repeats <k>", "judge each edit k times; the figures use the mean, the report the repeatability (ICC)", "1")
    .option("--price <in,out>", "dollars per million judge prompt and completion tokens, for the cost estimate (default: the judge config's price)")
    .option("--out <dir>", "where results and reports go", "bench-results/run")
    .option("--aggregate <scored|strict>", "the headline aggregation: scored (means over scored rows) or strict (failed, refused, missing edits count as the lowest score)", "scored")
    .option("--bootstrap <n>", "bootstrap resamples for every 95 % interval", "2000")
    .option("--bootstrap-seed <s>", "the bootstrap's seed", "0")
    .action(async (o) => {
      const stats = parseStatsOptions(o);
      const judgeRepeats = parseRepeats(o.judgeRepeats);
      const refineRounds = parseNumber("--refine", o.refine, { integer: true, min: 1, max: MAX_ROUNDS });
      let dataset: { repo: string; commit: string } | undefined;
      const isGedit = o.suite === "gedit-bench";
      if (!isGedit && (o.language !== undefined || o.intersection)) throw new CliError("--language and --intersection belong to GEdit-Bench: use them with --suite gedit-bench");
      const language = (o.language ?? "en") as GeditLanguage;
      if (!GEDIT_LANGUAGES.includes(language)) throw new CliError(`--language must be ${GEDIT_LANGUAGES.join(" or ")}, got "${o.language}"`);
      const gedit = { language, intersection: Boolean(o.intersection) };
      const suite = await (async () => {
        if (isGedit && !o.suitePath) {
          const [repo, revision] = String(o.dataset ?? GEDIT_DATASET).split("@");
          const pulled = await pullGedit({ dataset: repo, revision, progress: progressFor(process.stderr, "dataset") });
          dataset = { repo, commit: pulled.commit };
          return loadGedit(pulled.dir, gedit);
        }
        if (isGedit) return loadGedit(o.suitePath, gedit);
        if (o.suite !== "real-edit" || o.suitePath) return loadSuite(o.suite, o.suitePath);
        const [repo, revision] = String(o.dataset ?? REAL_EDIT_DATASET).split("@");
        const located = await pullRealEdit({ dataset: repo, revision, progress: progressFor(process.stderr, "dataset") });
        dataset = { repo, commit: located.commit };
        return checkInstructionLengths(await loadRealEdit(located.dir, "real-edit", located.images));
      })().catch((e) => {
        throw new CliError((e as Error).message);
      });
      const backend = o.backend ?? (judgeConfigFrom() ? "judge" : "local");
      if (backend !== "judge" && backend !== "local") throw new CliError(`--backend must be judge or local, got "${o.backend}"`);
      const judgeConfig = backend === "judge" ? judgeConfigFrom() : null;
      if (backend === "judge" && !judgeConfig) throw new CliError("no judge configured: set REWARD_EDIT_JUDGE_MODEL (and OPENAI_BASE_URL)");
      if (o.protocol !== undefined && !(SCORING_PROTOCOLS as readonly string[]).includes(o.protocol)) throw new CliError(`--protocol must be ${SCORING_PROTOCOLS.slice(0, -1).join(", ")} or ${SCORING_PROTOCOLS.at(-1)}, got "${o.protocol}"`);
      if (o.protocol !== undefined && !judgeConfig) throw new CliError("--protocol chooses how the judge scores; this run has no judge (--backend local)");
      if (judgeRepeats > 1 && !judgeConfig) throw new CliError("--judge-repeats asks the judge again; this run has no judge (--backend local)");
      const price = priceFrom(o.price, judgeConfig?.price);
      // each benchmark is scored the way its published figures were: GEdit-Bench by VIEScore, Real-Edit by the Multi-Reward protocol
      const protocol: ScoringProtocol | undefined = judgeConfig ? ((o.protocol as ScoringProtocol | undefined) ?? (isGedit ? "viescore" : judgeConfig.protocol)) : undefined;
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const models = await editorChoices(o, { suite, log });
      const seeds = String(o.seeds).split(",").map((s) => parseNumber("--seeds", s, { integer: true, min: 0, max: 2 ** 32 - 1 }));
      const shard = o.shard ? parseShard(o.shard) : undefined;
      const plan = {
        suite,
        models,
        presets: benchPresets(o, models, () => presetChoices(o)),
        seeds,
        outDir: o.out,
        judge: judgeConfig ? new JudgeScorer({ ...judgeConfig, protocol: protocol! }) : null,
        shard,
        limit: o.limit ? parseNumber("--limit", o.limit, { integer: true, min: 1 }) : undefined,
        steps: o.steps ? parseNumber("--steps", o.steps, { integer: true, min: 1, max: 1000 }) : undefined,
        refine: refineRounds,
        judgeRepeats,
      };
      mkdirSync(o.out, { recursive: true });
      const runFile = path.join(o.out, "run.json");
      const description = { suite: suite.name, ...(dataset ? { dataset } : {}), ...(isGedit ? gedit : {}), models, presets: plan.presets, seeds, shard, limit: plan.limit, steps: plan.steps, backend, ...(protocol ? { protocol } : {}), ...(refineRounds > 1 ? { refine: refineRounds } : {}), ...(judgeRepeats > 1 ? { judgeRepeats } : {}) };
      if (existsSync(runFile) && JSON.stringify(JSON.parse(readFileSync(runFile, "utf8"))) !== JSON.stringify(description)) {
        throw new CliError(`${o.out} holds a run with other arguments; choose another --out`);
      }
      writeFileSync(runFile, JSON.stringify(description, null, 2));
      const progress = benchProgress("bench", price);
      const { rows, ran, skipped } = await runBenchmark({ ...plan, onProgress: progress.onProgress });
      progress.stop();
      if (o.sweep) reportSweep(rows, o.out, (line) => process.stdout.write(`${line}\n`));
      const report = await writeReport(sortRows(rows), o.out, suite.name, comparePair(plan), { ...stats, price });
      process.stderr.write(`bench: ${ran} edits run, ${skipped} resumed from ${path.join(o.out, RESULTS_FILE)}; report in ${path.join(o.out, "report.html")}\n`);
      process.stdout.write(consoleSummary(report));
      if (judgeConfig) process.stdout.write(`${report.judge.line}\n${report.cost.line}\n`);
    });

  registerOutputCommands(bench);

  bench
    .command("merge")
    .description("combine shard outputs into one results.jsonl and report, the same as one run")
    .requiredOption("--out <dir>", "merged output folder")
    .option("--allow-mixed-judges", "merge rows judged by different judges (the report then says so)")
    .option("--price <in,out>", "dollars per million judge prompt and completion tokens, for the cost estimate")
    .argument("<shards...>", "shard output folders")
    .action(async (shards: string[], o) => {
      const rows = await mergeShards(shards, o.out, { allowMixedJudges: Boolean(o.allowMixedJudges), price: priceFrom(o.price) }).catch((e) => {
        throw e instanceof MergeError ? new CliError(e.message) : e;
      });
      process.stderr.write(`merged ${rows.length} rows from ${shards.length} shard(s) into ${o.out}\n`);
      if (o.allowMixedJudges) process.stderr.write(`${judgeSummary(rows).line}\n`);
    });
  registerBenchExport(bench);
  registerBenchCompare(bench);
  registerRejudge(bench);
}
