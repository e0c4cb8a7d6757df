import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { DETAIL_MODES, type DetailMode, type OutputFormat, SCHEDULER_NAMES, type SchedulerName, declaresDeepCache, edit, loadModel } from "../../editor/index.js";
import { resolveParams } from "../edit-params.js";
import { MAX_ROUNDS } from "../refine/index.js";
import { refineToFiles } from "./refine.js";
import { sessionOptionsFromEnv } from "../config/session.js";
import { defaultModelDir } from "../paths.js";
import { loadPresets } from "../presets/index.js";
import { CliError, parseInterval, parseNumber, parseRewards } from "./errors.js";

const FORMAT_BY_EXT: Record<string, OutputFormat> = { ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp" };

export function registerEdit(program: Command): void {
  program
    .command("edit")
    .description("edit one image with an instruction and desired reward levels")
    .requiredOption("--image <file>", "input image (any format sharp reads)")
    .requiredOption("--instruction <text>", 'what to change, e.g. "make the mug red"')
    .option("--model <dir>", "model folder (default: the bundled editor)")
    .option("--rewards <F,P,Q>", "desired following, preserving, quality levels, each 0..5")
    .option("--preset <name>", "named preset: best, faithful, bold, draft, fast (GET /v1/presets describes them)")
    .option("--steps <n>", "denoising steps")
    .option("--text-guidance <x>", "text guidance scale")
    .option("--image-guidance <y>", "image guidance scale")
    .option("--seed <s>", "random seed (same seed + inputs = same image)")
    .option("--scheduler <name>", `one of ${SCHEDULER_NAMES.join(", ")}`)
    .option("--karras", "Karras sigma spacing (dpmpp-2m, unipc)")
    .option("--guidance-interval <lo,hi>", "run the guidance branches only for noise levels sigma in (lo, hi]; the conditioned branch alone outside")
    .option("--adaptive-guidance <cos>", "stop the guidance branches once the full and image-only predictions agree to this cosine (0..1)")
    .option("--cache-interval <n>", "DeepCache: the whole UNet every n-th step, its outer blocks on cached deep features in between")
    .option("--feedback <text>", "reward feedback text (default: the model's, \"None; None; None\")")
    .option("--working-size", "return the image at the model's working size")
    .option("--detail <mode>", "keep: compose at full resolution, keeping the source's pixels and fine detail; off: resize the whole result", "keep")
    .option("--mask <file>", "write the full-resolution blend mask (PNG, white = edited; with --detail keep)")
    .option("--refine <n>", "refinement rounds: score each result (judge when configured, else the local scorer) and edit again from its verdict; the best round is written", "1")
    .option("--rounds-dir <dir>", "with --refine: write every round's image and rounds.json here")
    .requiredOption("--out <file>", "output image (.png, .jpg or .webp)")
    .action(async (o) => {
      const rounds = parseNumber("--refine", o.refine, { integer: true, min: 1, max: MAX_ROUNDS });
      const format = FORMAT_BY_EXT[path.extname(o.out).toLowerCase()];
      if (!format) throw new CliError(`--out must end in .png, .jpg or .webp, got "${o.out}"`);
      if (!DETAIL_MODES.includes(o.detail)) throw new CliError(`--detail must be one of ${DETAIL_MODES.join(", ")}, got "${o.detail}"`);
      if (o.mask && o.detail !== "keep") throw new CliError("--mask needs --detail keep");
      if (o.scheduler && !SCHEDULER_NAMES.includes(o.scheduler)) {
        throw new CliError(`--scheduler must be one of ${SCHEDULER_NAMES.join(", ")}, got "${o.scheduler}"`);
      }
      const modelDir = o.model ?? defaultModelDir();
      const deepCache = await declaresDeepCache(modelDir);
      let params;
      try {
        params = resolveParams(
          {
            rewards: o.rewards === undefined ? undefined : parseRewards(o.rewards),
            preset: o.preset,
            steps: o.steps === undefined ? undefined : parseNumber("--steps", o.steps, { integer: true, min: 1, max: 1000 }),
            textGuidance: o.textGuidance === undefined ? undefined : parseNumber("--text-guidance", o.textGuidance, { min: 0, max: 30 }),
            imageGuidance: o.imageGuidance === undefined ? undefined : parseNumber("--image-guidance", o.imageGuidance, { min: 0, max: 30 }),
            scheduler: o.scheduler as SchedulerName | undefined,
            karrasSigmas: o.karras ? true : undefined,
            guidanceInterval: o.guidanceInterval === undefined ? undefined : parseInterval("--guidance-interval", o.guidanceInterval),
            adaptiveGuidance: o.adaptiveGuidance === undefined ? undefined : parseNumber("--adaptive-guidance", o.adaptiveGuidance, { min: 0, max: 1 }),
            cacheInterval: o.cacheInterval === undefined ? undefined : parseNumber("--cache-interval", o.cacheInterval, { integer: true, min: 1, max: 50 }),
          },
          loadPresets(),
          { deepCache },
        );
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      const seed = o.seed === undefined ? undefined : parseNumber("--seed", o.seed, { integer: true, min: 0, max: 2 ** 32 - 1 });
      let image: Buffer;
      try {
        image = await readFile(o.image);
      } catch (err) {
        throw new CliError(`cannot read --image ${o.image}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const model = await loadModel(modelDir, sessionOptionsFromEnv());
      const bar = process.stderr.isTTY ? new SingleBar({ format: "editing [{bar}] {value}/{total} steps | ETA {eta}s", stream: process.stderr }) : null;
      try {
        if (rounds > 1) {
          await refineToFiles(model, { image, instruction: o.instruction, params, seed, rounds, out: o.out, roundsDir: o.roundsDir, format });
          return;
        }
        const { preset: _, sampling, ...numbers } = params;
        const result = await edit(model, {
          image,
          instruction: o.instruction,
          ...numbers,
          ...sampling,
          seed,
          feedback: o.feedback,
          format,
          workingSize: Boolean(o.workingSize),
          detail: o.detail as DetailMode,
          mask: Boolean(o.mask),
          onStep: (p) => {
            if (p.step === 1) bar?.start(p.steps, 0);
            bar?.update(p.step);
          },
        });
        bar?.stop();
        await writeFile(o.out, result.image);
        if (o.mask && result.mask) await writeFile(o.mask, result.mask);
        const r = result.parameters;
        const t = result.timings;
        process.stderr.write(
          `wrote ${o.out} (${result.width}x${result.height}, seed ${r.seed}, ${r.steps} steps, ` +
            `rewards ${r.rewardsApplied ? r.rewards!.join(",") : "not applied (model takes none)"}, ` +
            `${result.keptFraction === null ? "detail off" : `${(100 * result.keptFraction).toFixed(1)} % of pixels kept from the source`}, ` +
            `${r.scheduler}: ${t.unetEvaluations} UNet evaluations${t.shallowEvaluations ? ` + ${t.shallowEvaluations} on cached deep features` : ""}, ` +
            `${t.totalMs.toFixed(0)} ms)\n`,
        );
      } finally {
        bar?.stop();
        await model.dispose();
      }
    });
}
