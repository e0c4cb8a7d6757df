import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { type OutputFormat, edit, loadModel } from "../../editor/index.js";
import { MAX_ROUNDS } from "../refine/index.js";
import { refineToFiles } from "./refine.js";
import { sessionOptionsFromEnv } from "../config/session.js";
import { addEditFlags, parseEditFlags } from "./edit-flags.js";
import { CliError, parseNumber } from "./errors.js";

const FORMAT_BY_EXT: Record<string, OutputFormat> = { ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp" };

export function registerEdit(program: Command): void {
  const cmd = program
    .command("edit")
    .description("edit one image with an instruction and desired reward levels")
    .requiredOption("--image <file>", "input image (any format sharp reads)")
    .requiredOption("--instruction <text>", 'what to change, e.g. "make the mug red"');
  addEditFlags(cmd)
    .option("--mask <file>", "write the full-resolution blend mask (PNG, white = edited; with --detail keep)")
    .option("--refine <n>", "refinement rounds: score each result (judge when configured, else the local scorer) and edit again from its verdict; the best round is written", "1")
    .option("--rounds-dir <dir>", "with --refine: write every round's image and rounds.json here")
    .requiredOption("--out <file>", "output image (.png, .jpg or .webp)")
    .action(async (o) => {
      const rounds = parseNumber("--refine", o.refine, { integer: true, min: 1, max: MAX_ROUNDS });
      const format = FORMAT_BY_EXT[path.extname(o.out).toLowerCase()];
      if (!format) throw new CliError(`--out must end in .png, .jpg or .webp, got "${o.out}"`);
      if (o.mask && o.detail !== "keep") throw new CliError("--mask needs --detail keep");
      const f = await parseEditFlags(o);
      const { params, seed } = f;
      let image: Buffer;
      try {
        image = await readFile(o.image);
      } catch (err) {
        throw new CliError(`cannot read --image ${o.image}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const model = await loadModel(f.modelDir, sessionOptionsFromEnv());
      const bar = process.stderr.isTTY ? new SingleBar({ format: "editing [{bar}] {value}/{total} steps | ETA {eta}s", stream: process.stderr }) : null;
      try {
        if (rounds > 1) {
          await refineToFiles(model, { image, instruction: o.instruction, params, seed, rounds, out: o.out, roundsDir: o.roundsDir, format, editMask: f.editMask, maskMode: f.maskMode });
          return;
        }
        const { preset: _, sampling, ...numbers } = params;
        const result = await edit(model, {
          image,
          instruction: o.instruction,
          ...numbers,
          ...sampling,
          seed,
          feedback: f.feedback,
          format,
          workingSize: f.workingSize,
          detail: f.detail,
          mask: Boolean(o.mask),
          editMask: f.editMask,
          maskMode: f.maskMode,
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
