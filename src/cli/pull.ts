/** `reward-edit models pull REPO`: an editor from the Hugging Face Hub, converted and validated. */
import type { Command } from "commander";
import { HubError, progressFor } from "../hub/index.js";
import { sessionOptionsFromEnv } from "../config/session.js";
import { type ComputeKind, calibrationItems, checkCompute, parseCompute } from "../pull/compute.js";
import { PullError, type WeightDtype, parseWeightDtype, pullModel } from "../pull/model.js";
import { ConverterMissing } from "../pull/converter.js";
import type { CalibrationItem } from "../quantize/calibrate.js";
import { CliError } from "./errors.js";
import { COMPUTE_OPTION_HELP } from "./models-compute.js";

/** `--compute` of convert and pull: what it does with --dtype int8. */
export const CONVERT_COMPUTE_HELP =
  "float32 (int8 weights, if any, read through DequantizeLinear) or int8: with --dtype int8, the UNets and VAE decoder compute in int8 too, calibrated on edits after converting (a longer conversion; docs/performance.md)";

/** The options convert and pull share for int8 arithmetic. */
export function computeOptions(command: Command): Command {
  return command
    .option("--compute <kind>", CONVERT_COMPUTE_HELP, "float32")
    .option("--calibration-photos <files>", COMPUTE_OPTION_HELP.calibrationPhotos)
    .option("--instruction <text>", "with --calibration-photos: the instruction they are edited with");
}

export interface ComputeChoice {
  dtype: WeightDtype;
  compute: ComputeKind;
  /** The user's calibration edits, if they named photos. */
  calibration?: CalibrationItem[];
  threads?: number;
}

/** --dtype, --compute and the calibration photos, each refused in one line. */
export function parseComputeChoice(o: { dtype: string; compute: string; calibrationPhotos?: string; instruction?: string }): ComputeChoice {
  try {
    const dtype = parseWeightDtype(o.dtype);
    const compute = parseCompute(o.compute);
    checkCompute(dtype, compute);
    const photos = (o.calibrationPhotos ?? "").split(",").map((p) => p.trim()).filter(Boolean);
    if ((photos.length > 0 || o.instruction !== undefined) && compute !== "int8") throw new CliError("--calibration-photos and --instruction are for --compute int8");
    if (o.instruction !== undefined && photos.length === 0) throw new CliError("--instruction goes with --calibration-photos (the default calibration edits carry their own)");
    return { dtype, compute, calibration: photos.length ? calibrationItems(photos, o.instruction) : undefined, threads: sessionOptionsFromEnv().intraOpThreads };
  } catch (e) {
    throw e instanceof PullError ? new CliError(e.message) : e;
  }
}

export function registerPull(models: Command): void {
  const pull = models
    .command("pull")
    .description("download a diffusers-format InstructPix2Pix or Multi-Reward editor from the Hugging Face Hub (the shared HF cache), convert and validate it")
    .argument("<repo>", "repository id, e.g. timbrooks/instruct-pix2pix or Gstar666/Reward-InsPix2Pix")
    .option("--revision <rev>", "branch, tag or commit", "main")
    .option("--subfolder <dir>", "the editor's folder inside the repository, e.g. stage2_reward_instruct_pix2pix")
    .option("--variant <name>", "weight files of this variant first, e.g. fp16 (float32 files otherwise)")
    .option("--dtype <dtype>", "weights of the converted graphs: float32, float16 (half the files) or int8 (the UNets and text encoder: a quarter of the memory)", "float32")
    .option("--out <dir>", "model folder to write (default: under the project's cache, one per commit)");
  computeOptions(pull).action(
    async (repo: string, o: { revision: string; subfolder?: string; variant?: string; dtype: string; compute: string; calibrationPhotos?: string; instruction?: string; out?: string }) => {
      const { dtype, compute, calibration, threads } = parseComputeChoice(o);
      if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) throw new CliError(`"${repo}" is not a repository id: write NAMESPACE/NAME`);
      const subfolder = o.subfolder?.replace(/^\/+|\/+$/g, "") || undefined;
      try {
        const t0 = Date.now();
        const r = await pullModel({ repo, revision: o.revision, subfolder, variant: o.variant, dtype, compute, calibration, threads, out: o.out, progress: progressFor(process.stderr) });
        const d = r.snapshot.downloaded;
        process.stderr.write(
          `pull: ${repo}${subfolder ? `/${subfolder}` : ""}@${o.revision} is commit ${r.commit}; ${d.files} file(s), ${d.bytes} bytes downloaded${r.snapshot.offline ? " (offline: from the cache)" : ""}; ${r.converted ? "converted" : "already converted"} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
        );
        // the hub: form finds this folder only with the same dtype and arithmetic
        const hubEnv = [...(dtype !== "float32" ? [`REWARD_EDIT_HUB_DTYPE=${dtype}`] : []), ...(compute !== "float32" ? [`REWARD_EDIT_HUB_COMPUTE=${compute}`] : [])];
        const hub = `hub:${repo}${subfolder ? `/${subfolder}` : ""}${o.revision !== "main" ? `@${o.revision}` : ""}`;
        process.stdout.write(`ok: ${r.dir}; serve it with REWARD_EDIT_MODEL=${r.dir} npm start (or REWARD_EDIT_MODEL=${hub}${hubEnv.length ? ` ${hubEnv.join(" ")}` : ""})\n`);
      } catch (e) {
        if (e instanceof HubError || e instanceof PullError || e instanceof ConverterMissing) throw new CliError(e.message);
        throw e;
      }
    },
  );
}
