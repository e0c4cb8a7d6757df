/** `reward-edit models report REFERENCE CANDIDATE --photos ...`: a quantised folder against its float32 source (issue 42). */
import path from "node:path";
import type { Command } from "commander";
import { sessionOptionsFromEnv } from "../config/session.js";
import { PARAM_RANGES } from "../edit-params.js";
import { UnknownPresetError, loadPresets } from "../presets/index.js";
import { DEFAULT_INSTRUCTION, DEFAULT_PRESET, DEFAULT_SEED, ReportInputError, compareFolders, reportMarkdown, writeReport } from "../quantize/report.js";
import { CliError, parseNumber } from "./errors.js";

interface ReportFlags {
  photos: string;
  instruction: string;
  preset: string;
  seed: string;
  steps?: string;
  threads?: string;
  out?: string;
}

export function registerModelsReport(models: Command): void {
  models
    .command("report")
    .description("edit your photos with a float32 folder and its quantised copy (same instruction, preset and seed) and write how far apart they are: PSNR per photo, mean and lowest, and each graph's relative error on the same inputs")
    .argument("<reference>", "the float32 model folder")
    .argument("<candidate>", "the quantised model folder")
    .requiredOption("--photos <files>", "photos to edit, comma-separated (any format sharp reads)")
    .option("--instruction <text>", "what both folders are asked to do", DEFAULT_INSTRUCTION)
    .option("--preset <name>", "edit settings (GET /v1/presets describes them)", DEFAULT_PRESET)
    .option("--seed <s>", "random seed of every edit", String(DEFAULT_SEED))
    .option("--steps <n>", "denoising steps (default: the preset's)")
    .option("--threads <n>", "ONNX Runtime threads per graph (default: ORT_THREADS, else ONNX Runtime's)")
    .option("--out <dir>", "where quantization-report.json and .md go (default: the candidate folder)")
    .action(async (reference: string, candidate: string, o: ReportFlags) => {
      const photos = o.photos.split(",").map((p) => p.trim()).filter(Boolean);
      if (photos.length === 0) throw new CliError("--photos: no photos given; name at least one, comma-separated");
      const presets = loadPresets();
      if (!Object.hasOwn(presets, o.preset)) throw new CliError(new UnknownPresetError(o.preset, Object.keys(presets)).message);
      const seed = parseNumber("--seed", o.seed, PARAM_RANGES.seed);
      const steps = o.steps === undefined ? undefined : parseNumber("--steps", o.steps, PARAM_RANGES.steps);
      const threads = o.threads === undefined ? undefined : parseNumber("--threads", o.threads, { integer: true, min: 1, max: 256 });
      let report;
      try {
        report = await compareFolders({
          reference,
          candidate,
          photos,
          instruction: o.instruction,
          preset: o.preset,
          seed,
          steps,
          threads,
          session: sessionOptionsFromEnv(),
          log: (line) => process.stderr.write(`report: ${line}\n`),
        });
      } catch (e) {
        if (e instanceof ReportInputError) throw new CliError(e.message);
        throw e;
      }
      const out = o.out ?? candidate;
      const files = await writeReport(report, out).catch((e: NodeJS.ErrnoException) => {
        throw new CliError(`cannot write the report into ${out}: ${e.code ?? e.message}`);
      });
      process.stderr.write(`report: wrote ${files.json} and ${path.basename(files.md)}\n`);
      process.stdout.write(reportMarkdown(report));
    });
}
