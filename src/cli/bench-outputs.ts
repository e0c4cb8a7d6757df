/**
 * `bench outputs-template` and `bench check-outputs`: for edits made elsewhere, where each file
 * belongs, and what a folder lacks before any judge is paid.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { MANIFEST, checkOutputs, describeCheck, templatePath } from "../benchmark/editors/outputs.js";
import { GEDIT_DATASET, GEDIT_LANGUAGES, type GeditLanguage, loadGedit } from "../benchmark/gedit.js";
import { pullGedit } from "../benchmark/gedit-source.js";
import { type Suite, loadRealEdit, loadSuite } from "../benchmark/suites.js";
import { progressFor } from "../hub/index.js";
import { REAL_EDIT_DATASET, pullRealEdit } from "../pull/dataset.js";
import { CliError, parseNumber } from "./errors.js";

interface SuiteOptions {
  suite: string;
  suitePath?: string;
  dataset?: string;
  language?: string;
  intersection?: boolean;
}

/** The suite as `bench` reads it (a Hub pull where bench would pull). */
async function suiteOf(o: SuiteOptions): Promise<Suite> {
  const isGedit = o.suite === "gedit-bench";
  if (!isGedit && (o.language !== undefined || o.intersection)) throw new CliError("--language and --intersection belong to GEdit-Bench: use them with --suite gedit-bench");
  const language = (o.language ?? "en") as GeditLanguage;
  if (!GEDIT_LANGUAGES.includes(language)) throw new CliError(`--language must be ${GEDIT_LANGUAGES.join(" or ")}, got "${o.language}"`);
  const progress = progressFor(process.stderr, "dataset");
  try {
    if (isGedit) {
      const dir = o.suitePath ?? (await pullGedit({ dataset: String(o.dataset ?? GEDIT_DATASET).split("@")[0], revision: o.dataset?.split("@")[1], progress })).dir;
      return await loadGedit(dir, { language, intersection: Boolean(o.intersection) });
    }
    if (o.suite !== "real-edit" || o.suitePath) return await loadSuite(o.suite, o.suitePath);
    const [repo, revision] = String(o.dataset ?? REAL_EDIT_DATASET).split("@");
    const located = await pullRealEdit({ dataset: repo, revision, progress });
    return await loadRealEdit(located.dir, "real-edit", located.images);
  } catch (e) {
    throw e instanceof CliError ? e : new CliError((e as Error).message);
  }
}

const suiteFlags = (c: Command) =>
  c
    .requiredOption("--suite <name>", "sample | real-edit | jsonl | synthetic | gedit-bench")
    .option("--suite-path <path>", "the suite's folder or file, as bench takes it")
    .option("--dataset <repo[@rev]>", "the Hub dataset real-edit or gedit-bench pulls")
    .option("--language <en|cn>", "gedit-bench: the instructions' language (default en)")
    .option("--intersection", "gedit-bench: only the rows with Intersection_exist");

export function registerOutputCommands(bench: Command): void {
  suiteFlags(bench.command("outputs-template").description(`write DIR/${MANIFEST}: every sample id of the suite, its instruction and source, and the path where its edit belongs`))
    .requiredOption("--out <dir>", "the outputs folder")
    .action(async (o: SuiteOptions & { out: string }) => {
      const suite = await suiteOf(o);
      mkdirSync(o.out, { recursive: true });
      const lines = suite.samples.map((s) => JSON.stringify({ id: s.id, path: templatePath(s), instruction: s.instruction, source: s.image }));
      writeFileSync(path.join(o.out, MANIFEST), lines.join("\n") + "\n");
      process.stderr.write(`${path.join(o.out, MANIFEST)}: ${suite.samples.length} samples of ${suite.name}; put each edit at its path (relative to the manifest)\n`);
    });

  suiteFlags(bench.command("check-outputs").description("list what an outputs folder lacks before any judge is paid: missing, extra, undecodable, another aspect ratio than the source"))
    .requiredOption("--outputs <dir>", `edits made elsewhere: GEdit-Bench's fullset/ layout or an ${MANIFEST} manifest`)
    .option("--limit <n>", "only the first n samples")
    .action(async (o: SuiteOptions & { outputs: string; limit?: string }) => {
      const suite = await suiteOf(o);
      const limit = o.limit ? parseNumber("--limit", o.limit, { integer: true, min: 1 }) : undefined;
      const check = await checkOutputs(o.outputs, suite, { limit }).catch((e: Error) => {
        throw new CliError(e.message);
      });
      for (const line of describeCheck(check)) process.stdout.write(`${line}\n`);
      if (check.usable.size === 0) throw new CliError(`${o.outputs}: nothing usable to judge`);
    });
}
