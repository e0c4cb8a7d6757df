/** `bench rejudge RUN --out NEW`: judge a finished run's edits again; no editor is loaded or called. */
import path from "node:path";
import type { Command } from "commander";
import { JudgeScorer, SCORING_PROTOCOLS, type ScoringProtocol, judgeConfigFrom } from "../../reward/index.js";
import { RejudgeError, readRunDescription, rejudgeRun } from "../benchmark/rejudge.js";
import { writeReport } from "../benchmark/report.js";
import { RESULTS_FILE, comparePair } from "../benchmark/runner.js";
import { benchProgress, priceFrom } from "./bench-progress.js";
import { CliError, parseNumber } from "./errors.js";

const MAX_REPEATS = 20;

export function parseRepeats(text: string | undefined): number {
  return text === undefined ? 1 : parseNumber("--judge-repeats", text, { integer: true, min: 1, max: MAX_REPEATS });
}

export function registerRejudge(bench: Command): void {
  bench
    .command("rejudge")
    .description("judge an existing run's edits again (another judge, protocol or repeat count) into a new folder, without editing anything")
    .argument("<run>", "a bench output folder")
    .requiredOption("--out <dir>", "the new output folder")
    .option("--protocol <name>", `judge protocol: ${SCORING_PROTOCOLS.join(", ")} (default: the run's, else viescore for gedit-bench, else the configured one)`)
    .option("--judge-repeats <k>", `judge each edit k times (1..${MAX_REPEATS}); the figures use the mean, the report the repeatability`, "1")
    .option("--price <in,out>", "dollars per million prompt and completion tokens, for the cost estimate (default: the judge config's price)")
    .action(async (run: string, o) => {
      const repeats = parseRepeats(o.judgeRepeats);
      const config = (() => {
        try {
          return judgeConfigFrom();
        } catch (e) {
          throw new CliError((e as Error).message);
        }
      })();
      if (!config) throw new CliError("no judge configured: set REWARD_EDIT_JUDGE_MODEL (and OPENAI_BASE_URL)");
      if (o.protocol !== undefined && !(SCORING_PROTOCOLS as readonly string[]).includes(o.protocol)) throw new CliError(`--protocol must be ${SCORING_PROTOCOLS.slice(0, -1).join(", ")} or ${SCORING_PROTOCOLS.at(-1)}, got "${o.protocol}"`);
      const price = priceFrom(o.price, config.price);
      if (path.resolve(run) === path.resolve(o.out)) throw new CliError("--out must be a new folder, not the run being judged again");
      const described = (() => {
        try {
          return readRunDescription(run);
        } catch (e) {
          throw new CliError((e as Error).message);
        }
      })();
      const protocol = (o.protocol ?? (described.backend === "judge" ? described.protocol : undefined) ?? (described.suite === "gedit-bench" ? "viescore" : config.protocol)) as ScoringProtocol;
      const progress = benchProgress("rejudge", price);
      const result = await rejudgeRun({ run, out: o.out, judge: new JudgeScorer({ ...config, protocol }), protocol, repeats, onProgress: progress.onProgress }).catch((e) => {
        throw e instanceof RejudgeError ? new CliError(e.message) : e;
      });
      progress.stop();
      const { models, presets, suite } = result.description as { models?: Array<{ label: string }>; presets?: Array<{ label: string }>; suite: string };
      const rows = [...result.rows].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const { judge, cost } = await writeReport(rows, o.out, suite, models && presets ? comparePair({ models, presets }) : undefined, { price });
      process.stderr.write(`rejudge: ${result.judged} edits judged again, ${result.resumed} resumed from ${path.join(o.out, RESULTS_FILE)}; report in ${path.join(o.out, "report.html")}\n`);
      process.stdout.write(`${judge.line}\n${cost.line}\n`);
    });
}
