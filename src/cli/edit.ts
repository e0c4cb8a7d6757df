import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { type EditResult, type LatentEstimate, type OutputFormat, edit, loadModel, previewMapFor, previewPng } from "../../editor/index.js";
import { MAX_ROUNDS } from "../refine/index.js";
import { refineToFiles } from "./refine.js";
import { sessionOptionsFromEnv } from "../config/session.js";
import { addEditFlags, parseEditFlags } from "./edit-flags.js";
import { CliError, parseNumber } from "./errors.js";
import { MAX_INSTRUCTION_LENGTH, textTooLong } from "../limits.js";
import { applyLike } from "./like.js";
import { cliProvenance } from "./provenance.js";
import { createMarker, maskDigest, modelDigest } from "../provenance/index.js";
import { sha256 } from "../provenance/parameters.js";

/** What the auto mask did, for the summary line. */
function autoMaskNote(a: EditResult["parameters"]["autoMask"]): string {
  if (!a) return "";
  const cover = `${(100 * a.coverage).toFixed(1)} %`;
  if (a.applied) return `auto mask over ${cover} of the photo, `;
  return a.reason === "global" ? `no auto mask (a global edit: the map covers ${cover}), ` : "auto mask not used (--mask-in wins), ";
}

const FORMAT_BY_EXT: Record<string, OutputFormat> = { ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp" };

export function registerEdit(program: Command): void {
  const cmd = program
    .command("edit")
    .description("edit one image with an instruction and desired reward levels")
    .requiredOption("--image <file>", "input image (any format sharp reads)")
    .option("--instruction <text>", 'what to change, e.g. "make the mug red" (required unless --like records it)')
    .option("--like <result>", "a result of reward-edit: edit --image with the settings recorded in it (same source, same model = same pixels); flags given here win");
  addEditFlags(cmd)
    .option("--mask <file>", "write the full-resolution blend mask (PNG, white = edited; with --detail keep)")
    .option("--refine <n>", "refinement rounds: score each result (judge when configured, else the local scorer) and edit again from its verdict; the best round is written", "1")
    .option("--rounds-dir <dir>", "with --refine: write every round's image and rounds.json here")
    .option("--preview-dir <dir>", "write a small preview of the forming image at every step here (step-001.png, ...; docs/progress.md)")
    .requiredOption("--out <file>", "output image (.png, .jpg or .webp)")
    .action(async (o, cmd: Command) => {
      const like = o.like ? await applyLike(o.like, o, cmd) : undefined;
      if (!o.instruction) throw new CliError("--instruction is required (or --like a result that records it)");
      const tooLong = textTooLong("--instruction", o.instruction, MAX_INSTRUCTION_LENGTH);
      if (tooLong) throw new CliError(tooLong);
      const rounds = parseNumber("--refine", o.refine, { integer: true, min: 1, max: MAX_ROUNDS });
      const format = FORMAT_BY_EXT[path.extname(o.out).toLowerCase()];
      if (!format) throw new CliError(`--out must end in .png, .jpg or .webp, got "${o.out}"`);
      if (o.mask && o.detail !== "keep") throw new CliError("--mask needs --detail keep");
      if (o.background === "transparent" && format === "jpeg") throw new CliError(`--background transparent needs a .png or .webp --out (JPEG has no alpha channel), got "${o.out}"`);
      if (o.previewDir && rounds > 1) throw new CliError("--preview-dir is for a single edit; it does not combine with --refine");
      const f = await parseEditFlags(o);
      const { params, seed } = f;
      if (like?.mask_sha256 && maskDigest(f.editMask) !== like.mask_sha256) {
        throw new CliError(`--like ${o.like} was made with a mask (pixels sha256 ${like.mask_sha256.slice(0, 12)}...): give that mask with --mask-in`);
      }
      const marker = createMarker(await cliProvenance());
      let image: Buffer;
      try {
        image = await readFile(o.image);
      } catch (err) {
        throw new CliError(`cannot read --image ${o.image}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (like) {
        const digest = await modelDigest(f.modelDir);
        if (like.model.digest !== digest) process.stderr.write(`like: ${o.like} was made with model ${like.model.name} (${like.model.digest ?? "no digest"}); ${f.modelDir} differs, so the pixels will too\n`);
        if (like.source_sha256 !== sha256(image)) process.stderr.write(`like: --image is not the photo ${o.like} was made from (its sha256 differs)\n`);
      }
      const model = await loadModel(f.modelDir, sessionOptionsFromEnv());
      const facts = async (res: Awaited<ReturnType<typeof edit>>) => ({
        parameters: res.parameters,
        preset: params.preset,
        maskSha256: maskDigest(f.editMask),
        workingSize: f.workingSize,
        format,
        model: { name: model.manifest.name, digest: await modelDigest(f.modelDir) },
        source: image,
      });
      const bar = process.stderr.isTTY ? new SingleBar({ format: "editing [{bar}] {value}/{total} steps | ETA {eta_formatted}", etaBuffer: 5, stream: process.stderr }) : null;
      // previews are written as the steps go, each from its own copy of the estimate's pixels
      const previewMap = o.previewDir ? previewMapFor(model.manifest) : null;
      if (o.previewDir && !previewMap) process.stderr.write(`preview: ${model.manifest.name} has no latent preview map (reward-edit.json preview) and no fallback for ${model.manifest.latent_channels} latent channels: no previews written\n`);
      if (previewMap) await mkdir(o.previewDir, { recursive: true });
      const previewWrites: Promise<void>[] = [];
      const onEstimate = previewMap
        ? (e: LatentEstimate) => {
            const name = path.join(o.previewDir, `step-${String(e.step).padStart(3, "0")}.png`);
            previewWrites.push(previewPng(e, previewMap).then(({ png }) => writeFile(name, png)));
          }
        : undefined;
      try {
        if (rounds > 1) {
          await refineToFiles(model, { image, instruction: o.instruction, params, seed, rounds, out: o.out, roundsDir: o.roundsDir, format, editMask: f.editMask, maskMode: f.maskMode,
            mark: async (res, refine) => marker.markResult(res.image, format, { ...(await facts(res)), refine }) });
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
          onEstimate,
        });
        bar?.stop();
        await Promise.all(previewWrites);
        await writeFile(o.out, await marker.markResult(result.image, format, await facts(result)));
        if (o.mask && result.mask) await writeFile(o.mask, result.mask);
        const r = result.parameters;
        const t = result.timings;
        process.stderr.write(
          `wrote ${o.out} (${result.width}x${result.height}, seed ${r.seed}, ${r.steps} steps, ` +
            `rewards ${r.rewardsApplied ? r.rewards!.join(",") : "not applied (model takes none)"}, ` +
            `${result.keptFraction === null ? "detail off" : `${(100 * result.keptFraction).toFixed(1)} % of pixels kept from the source`}, ` +
            autoMaskNote(r.autoMask) +
            `${r.scheduler}: ${t.unetEvaluations} UNet evaluations${t.shallowEvaluations ? ` + ${t.shallowEvaluations} on cached deep features` : ""}, ` +
            `${t.totalMs.toFixed(0)} ms)\n`,
        );
      } finally {
        bar?.stop();
        await model.dispose();
      }
    });
}
