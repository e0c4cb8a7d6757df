/** `reward-edit models pull REPO`: an editor from the Hugging Face Hub, converted and validated. */
import type { Command } from "commander";
import { HubError, progressFor } from "../hub/index.js";
import { PullError, type WeightDtype, parseWeightDtype, pullModel } from "../pull/model.js";
import { ConverterMissing } from "../pull/converter.js";
import { CliError } from "./errors.js";

export function registerPull(models: Command): void {
  models
    .command("pull")
    .description("download a diffusers-format InstructPix2Pix or Multi-Reward editor from the Hugging Face Hub (the shared HF cache), convert and validate it")
    .argument("<repo>", "repository id, e.g. timbrooks/instruct-pix2pix or Gstar666/Reward-InsPix2Pix")
    .option("--revision <rev>", "branch, tag or commit", "main")
    .option("--subfolder <dir>", "the editor's folder inside the repository, e.g. stage2_reward_instruct_pix2pix")
    .option("--variant <name>", "weight files of this variant first, e.g. fp16 (float32 files otherwise)")
    .option("--dtype <dtype>", "weights of the converted graphs: float32, float16 (half the files) or int8 (the UNets and text encoder: a quarter of the memory)", "float32")
    .option("--out <dir>", "model folder to write (default: under the project's cache, one per commit)")
    .action(async (repo: string, o: { revision: string; subfolder?: string; variant?: string; dtype: string; out?: string }) => {
      const dtype = parseDtype(o.dtype);
      if (!/^[\w.-]+\/[\w.-]+$/.test(repo)) throw new CliError(`"${repo}" is not a repository id: write NAMESPACE/NAME`);
      const subfolder = o.subfolder?.replace(/^\/+|\/+$/g, "") || undefined;
      try {
        const t0 = Date.now();
        const r = await pullModel({ repo, revision: o.revision, subfolder, variant: o.variant, dtype, out: o.out, progress: progressFor(process.stderr) });
        const d = r.snapshot.downloaded;
        process.stderr.write(
          `pull: ${repo}${subfolder ? `/${subfolder}` : ""}@${o.revision} is commit ${r.commit}; ${d.files} file(s), ${d.bytes} bytes downloaded${r.snapshot.offline ? " (offline: from the cache)" : ""}; ${r.converted ? "converted" : "already converted"} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
        );
        process.stdout.write(`ok: ${r.dir}; serve it with REWARD_EDIT_MODEL=${r.dir} npm start (or REWARD_EDIT_MODEL=hub:${repo}${subfolder ? `/${subfolder}` : ""}${o.revision !== "main" ? `@${o.revision}` : ""})\n`);
      } catch (e) {
        if (e instanceof HubError || e instanceof PullError || e instanceof ConverterMissing) throw new CliError(e.message);
        throw e;
      }
    });
}

export function parseDtype(s: string): WeightDtype {
  try {
    return parseWeightDtype(s);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}
