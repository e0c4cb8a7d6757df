/** `bench export RUN --format gedit-csv --out DIR`: a finished run in another tool's format. */
import type { Command } from "commander";
import { EXPORT_FORMATS, ExportError, GEDIT_BACKBONES, type GeditBackbone, exportGeditCsv } from "../benchmark/export-gedit.js";
import { CliError } from "./errors.js";

const oneOf = <T extends string>(flag: string, value: string, allowed: readonly T[]): T => {
  if (!(allowed as readonly string[]).includes(value)) throw new CliError(`${flag} must be ${allowed.join(" or ")}, got "${value}"`);
  return value as T;
};

export function registerBenchExport(bench: Command): void {
  bench
    .command("export")
    .description("write a finished run's scored rows in another tool's format (gedit-csv: the CSVs GEdit-Bench's calculate_statistics.py reads)")
    .argument("<run>", "a bench output folder (or a merged one)")
    .requiredOption("--format <name>", `output format: ${EXPORT_FORMATS.join(", ")}`)
    .requiredOption("--out <dir>", "where the files go (gedit-csv: the script's --save_path)")
    .option("--backbone <name>", `gedit-csv: the judge folder, ${GEDIT_BACKBONES.join(" or ")} (default: qwen25vl for a Qwen judge, else gpt4o)`)
    .option("--model-name <name>", "gedit-csv: the script's --model_name (default: the model's name; a run with one model and preset only)")
    .option("--cn-as <cn|zh>", 'gedit-csv: Chinese rows\' instruction_language: "cn" as the data set has it, or "zh" as calculate_statistics.py selects it', "cn")
    .action((run: string, o: { format: string; out: string; backbone?: string; modelName?: string; cnAs: string }) => {
      oneOf("--format", o.format, EXPORT_FORMATS);
      const backbone = o.backbone === undefined ? undefined : oneOf<GeditBackbone>("--backbone", o.backbone, GEDIT_BACKBONES);
      const cnAs = oneOf("--cn-as", o.cnAs, ["cn", "zh"] as const);
      if (o.modelName !== undefined && !/^[A-Za-z0-9._+-]+$/.test(o.modelName)) throw new CliError(`--model-name must be letters, digits, ".", "_", "+" or "-" (it names a folder and the files), got "${o.modelName}"`);
      let result;
      try {
        result = exportGeditCsv({ runDir: run, outDir: o.out, backbone, modelName: o.modelName, cnAs });
      } catch (e) {
        throw e instanceof ExportError ? new CliError(e.message) : e;
      }
      for (const g of result.skipped) process.stderr.write(`bench export: ${g}: no VIEScore figures, not exported\n`);
      for (const g of result.groups) {
        const written = Object.entries(g.written).map(([l, n]) => `${l} ${n}`).join(", ") || "none";
        const left = [`${g.leftOut.unscored} unscored`, `${g.leftOut.failed} failed`, ...(g.leftOut.notJudged ? [`${g.leftOut.notJudged} not judged`] : [])].join(", ");
        process.stdout.write(`${g.group}: scored rows written (${written}) to ${g.dir}; left out: ${left}\n`);
        for (const w of g.warnings) process.stderr.write(`bench export: ${g.modelName}: ${w}\n`);
        for (const c of g.commands) process.stdout.write(`  check with (in Step1X-Edit/GEdit-Bench): ${c}\n`);
      }
    });
}
