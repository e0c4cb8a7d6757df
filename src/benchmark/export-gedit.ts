/**
 * `bench export --format gedit-csv`: a GEdit-Bench run's scored rows as the per-task CSV files
 * that Step1X-Edit's official evaluation writes (GEdit-Bench/test_gedit_score.py) and its
 * statistics script reads (GEdit-Bench/calculate_statistics.py), so that script can recompute our
 * table. The format below is what those two scripts do (read at Step1X-Edit 570eba6), described
 * in docs/gedit-bench.md; none of their code is used.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { judgedBoth } from "./gedit-metrics.js";
import { GEDIT_LANGUAGES, GEDIT_TASKS, type GeditLanguage } from "./gedit-facts.js";
import { type ResultRow, readRows } from "./results.js";
import { RESULTS_FILE } from "./runner.js";

/** The official columns, in the official order; `sementics_score` is spelt as the scripts spell it. */
export const GEDIT_CSV_COLUMNS = ["source_image", "edited_image", "instruction", "sementics_score", "quality_score", "intersection_exist", "instruction_language"] as const;

/** The judge folder names calculate_statistics.py's --backbone accepts. */
export const GEDIT_BACKBONES = ["gpt4o", "qwen25vl"] as const;
export type GeditBackbone = (typeof GEDIT_BACKBONES)[number];

export const EXPORT_FORMATS = ["gedit-csv"] as const;

export class ExportError extends Error {}

export interface GeditExportOptions {
  runDir: string;
  outDir: string;
  /** The judge folder; by default qwen25vl when the judge's model id names Qwen, else gpt4o. */
  backbone?: GeditBackbone;
  /** The official --model_name; only for a run with one group (model / preset). */
  modelName?: string;
  /**
   * What Chinese rows' instruction_language says: "cn" (default), the data set's value, which the
   * official evaluation writes; or "zh", the only Chinese value calculate_statistics.py's
   * --language accepts.
   */
  cnAs?: "cn" | "zh";
}

export interface GeditExport {
  groups: GeditExportGroup[];
  /** Groups with no VIEScore figures (local scorer, another protocol): nothing to write. */
  skipped: string[];
}

export interface GeditExportGroup {
  /** Our report's group: "model / preset". */
  group: string;
  modelName: string;
  backbone: GeditBackbone;
  /** `<out>/<model_name>/<backbone>/eval_results_new`, where the script looks. */
  dir: string;
  /** Rows written, per language. */
  written: Partial<Record<GeditLanguage, number>>;
  /** Rows of the group that are in no CSV, as they are in no mean of ours. */
  leftOut: { unscored: number; notJudged: number; failed: number };
  /** Lines worth a user's attention: where the script's figures will differ from our table. */
  warnings: string[];
  /** The official command that aggregates this folder, one per language written. */
  commands: string[];
}

/** The rows our mean takes: an edit whose SC and PQ were both scored (the table's own rule). */
const scored = judgedBoth;

/**
 * A field as Python's csv writer quotes it by default (QUOTE_MINIMAL): quoted only when it holds
 * the delimiter, a quote or a line break, a quote doubled inside.
 */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A CSV as csv.DictWriter writes it: header first, "\r\n" after every line. */
function csvText(rows: string[][]): string {
  return [[...GEDIT_CSV_COLUMNS], ...rows].map((r) => `${r.map(csvField).join(",")}\r\n`).join("");
}

/** A model name usable as the script's folder and file prefix. */
const folderName = (s: string) => s.replace(/[^A-Za-z0-9._+-]+/g, "_").replace(/^[._]+|_+$/g, "") || "model";

function readRun(runDir: string): { suite?: string; rows: ResultRow[] } {
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new ExportError(`${runDir} does not exist (give a bench output folder)`);
  const results = path.join(runDir, RESULTS_FILE);
  if (!existsSync(results)) throw new ExportError(`${runDir} has no ${RESULTS_FILE} (not a bench output folder)`);
  const runFile = path.join(runDir, "run.json");
  let suite: string | undefined;
  if (existsSync(runFile)) {
    try {
      suite = (JSON.parse(readFileSync(runFile, "utf8")) as { suite?: string }).suite;
    } catch {
      throw new ExportError(`${runFile} is not JSON`);
    }
  }
  return { suite, rows: readRows(results) };
}

function backboneOf(rows: ResultRow[], chosen?: GeditBackbone): GeditBackbone {
  if (chosen) return chosen;
  const model = rows.find((r) => r.scorer?.backend === "judge")?.scorer?.model ?? "";
  return /qwen/i.test(model) ? "qwen25vl" : "gpt4o";
}

/** One row of the official CSV: paths as absolute paths of this run's files (the script keys on them, never opens them). */
function csvRow(r: ResultRow, runDir: string, cnAs: string): string[] {
  const v = r.viescore!;
  return [
    path.resolve(r.image),
    r.edited ? path.resolve(runDir, "images", r.edited) : "",
    r.instruction,
    // String() gives the shortest text that reads back as the same double, as Python's repr does
    String(v.sc.score),
    String(v.pq.score),
    // Python writes its bools as True / False, which pandas reads back as bools
    r.gedit!.intersection ? "True" : "False",
    r.gedit!.language === "cn" ? cnAs : r.gedit!.language,
  ];
}

/** Where calculate_statistics.py's figures will not be ours, said before anyone runs it. */
function warningsFor(rows: ResultRow[], cnAs: string): string[] {
  const out: string[] = [];
  const official = GEDIT_TASKS as readonly string[];
  const extra = [...new Set(rows.map((r) => r.gedit!.task))].filter((t) => !official.includes(t));
  if (extra.length) out.push(`task types ${extra.join(", ")} are not among the official 11: their files are written, calculate_statistics.py reads none of them, our table averages them in`);
  for (const language of GEDIT_LANGUAGES) {
    const rs = rows.filter((r) => r.gedit!.language === language);
    if (!rs.length) continue;
    for (const [set, subset] of [["full set", rs], ["intersection", rs.filter((r) => r.gedit!.intersection)]] as const) {
      const empty = official.filter((t) => !subset.some((r) => r.gedit!.task === t));
      if (empty.length) out.push(`${language} ${set}: no scored row in ${empty.join(", ")}: calculate_statistics.py prints nan for ${empty.length === 1 ? "it" : "them"} and for its Average; our table averages the ${official.length - empty.length} task types it has`);
    }
  }
  if (cnAs === "cn" && rows.some((r) => r.gedit!.language === "cn")) {
    out.push('cn rows say instruction_language "cn", as the data set and the official evaluation do, but calculate_statistics.py\'s --language takes only en or zh: export with --cn-as zh to aggregate them with it unchanged');
  }
  return out;
}

/**
 * Writes each group's scored rows (model / preset, seeds pooled as in our table) under
 * `<out>/<model_name>/<backbone>/eval_results_new/`: one `<model_name>_<task_type>_gpt_score.csv`
 * per official task type (a header alone when none was scored: the script opens all eleven) and
 * the `<model_name>_combined_gpt_score.csv` the official evaluation keeps beside them.
 */
export function exportGeditCsv(o: GeditExportOptions): GeditExport {
  const cnAs = o.cnAs ?? "cn";
  const { suite, rows } = readRun(o.runDir);
  const gedit = rows.filter((r) => r.gedit);
  if ((suite !== undefined && suite !== "gedit-bench") || !gedit.length) {
    throw new ExportError(`${o.runDir} is ${suite ? `a ${suite} run` : "a run with no GEdit-Bench rows"}, not GEdit-Bench: gedit-csv holds GEdit-Bench rows only`);
  }
  const groups = new Map<string, ResultRow[]>();
  for (const r of gedit) {
    const g = `${r.model} / ${r.preset}`;
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  if (o.modelName !== undefined && groups.size > 1) {
    throw new ExportError(`--model-name names one group; ${o.runDir} has ${groups.size} (${[...groups.keys()].join("; ")}): leave it out to export each under its own name`);
  }
  const judged = [...groups.entries()].filter(([, rs]) => rs.some((r) => r.viescore));
  const skipped = [...groups.keys()].filter((g) => !judged.some(([j]) => j === g));
  if (!judged.length) {
    const by = gedit.find((r) => r.scorer)?.scorer;
    throw new ExportError(`${o.runDir} has no VIEScore SC and PQ figures (${by ? `scored by ${by.backend === "judge" ? `protocol ${by.protocol}` : `the ${by.backend} scorer`}` : "nothing was scored"}): the official statistics read those; run bench with a judge and --protocol viescore`);
  }
  const onePreset = new Set(gedit.map((r) => r.preset)).size === 1;
  const names = new Map<string, string>();
  for (const [group, rs] of judged) {
    const name = folderName(o.modelName ?? (onePreset ? rs[0].model : `${rs[0].model}-${rs[0].preset}`));
    if (names.has(name)) throw new ExportError(`groups "${names.get(name)}" and "${group}" would both be exported as ${name}: export them from separate runs, or use --model-name on a one-group run`);
    names.set(name, group);
  }
  const out: GeditExportGroup[] = [];
  for (const [name, group] of names) {
    const rs = groups.get(group)!;
    const backbone = backboneOf(rs, o.backbone);
    const dir = path.join(o.outDir, name, backbone, "eval_results_new");
    mkdirSync(dir, { recursive: true });
    const keep = rs.filter(scored).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const tasks = [...GEDIT_TASKS, ...[...new Set(keep.map((r) => r.gedit!.task))].filter((t) => !(GEDIT_TASKS as readonly string[]).includes(t)).sort()];
    const combined: string[][] = [];
    for (const task of tasks) {
      const lines = keep.filter((r) => r.gedit!.task === task).map((r) => csvRow(r, o.runDir, cnAs));
      combined.push(...lines);
      writeFileSync(path.join(dir, `${name}_${task}_gpt_score.csv`), csvText(lines));
    }
    writeFileSync(path.join(dir, `${name}_combined_gpt_score.csv`), csvText(combined));
    const written: Partial<Record<GeditLanguage, number>> = {};
    for (const l of GEDIT_LANGUAGES) {
      const n = keep.filter((r) => r.gedit!.language === l).length;
      if (n) written[l] = n;
    }
    out.push({
      group,
      modelName: name,
      backbone,
      dir,
      written,
      leftOut: {
        unscored: rs.filter((r) => r.status === "ok" && r.viescore && !scored(r)).length,
        notJudged: rs.filter((r) => r.status === "ok" && !r.viescore).length,
        failed: rs.filter((r) => r.status !== "ok").length,
      },
      warnings: warningsFor(keep, cnAs),
      commands: Object.keys(written)
        .filter((l) => l === "en" || cnAs === "zh")
        .map((l) => `python calculate_statistics.py --model_name ${name} --save_path ${path.resolve(o.outDir)} --backbone ${backbone} --language ${l === "cn" ? "zh" : l}`),
    });
  }
  return { groups: out, skipped };
}
