import { existsSync, statSync } from "node:fs";
import type { Command } from "commander";
import { inspectModelFolder } from "../../editor/index.js";
import { HubError, progressFor } from "../hub/index.js";
import { convertComputeInt8 } from "../pull/compute.js";
import { ConverterMissing, runConverter, runQuantizer } from "../pull/converter.js";
import { PullError, pullConfig } from "../pull/model.js";
import { DEFAULT_TINY_DECODER_REPO, pullTinyDecoder } from "../pull/tiny-decoder.js";
import { HUB_PREFIX, parseHubSpec } from "../pull/spec.js";
import { CliError } from "./errors.js";
import { COMPUTE_OPTION_HELP, type ComputeFlags, quantizeComputeCommand } from "./models-compute.js";
import { DEFAULT_KEEP_FRACTION } from "../quantize/int8-compute.js";
import { registerModelsReport } from "./models-report.js";
import { computeOptions, parseComputeChoice, registerPull } from "./pull.js";

/** One file is an original-layout (CompVis/LDM) single-file checkpoint; a folder is diffusers'. */
function sourceKind(src: string): "file" | "folder" | "missing" {
  try {
    return statSync(src).isFile() ? "file" : "folder";
  } catch {
    return "missing";
  }
}

/** Where single files get their configs, tokenizer and scheduler when --config names none. */
export const DEFAULT_CONFIG_REPO = "timbrooks/instruct-pix2pix";

/**
 * The diffusers folder whose small files (model_index.json, the component config.json files,
 * tokenizer/, scheduler/) go with a single-file checkpoint: a local folder, or a Hub repository
 * (REPO[/SUBFOLDER][@REV], default timbrooks/instruct-pix2pix) of which only those files are pulled.
 */
export async function configDirFor(config: string | undefined): Promise<string> {
  if (config !== undefined && existsSync(config)) return config;
  const spec = config ?? DEFAULT_CONFIG_REPO;
  let repo;
  try {
    repo = parseHubSpec(spec.startsWith(HUB_PREFIX) ? spec : `${HUB_PREFIX}${spec}`);
  } catch {
    throw new CliError(`--config ${spec}: neither a folder nor a Hub repository (NAMESPACE/NAME[/SUBFOLDER][@REVISION])`);
  }
  try {
    const dir = await pullConfig(repo);
    process.stderr.write(`config: the small files of ${repo.repo}${repo.subfolder ? `/${repo.subfolder}` : ""} (no weights), from the Hub cache\n`);
    return dir;
  } catch (e) {
    throw e instanceof HubError ? new CliError(`--config ${spec}: ${e.message}`) : e;
  }
}

export function registerModels(program: Command): void {
  const models = program.command("models").description("pull, convert and inspect model folders");
  registerPull(models);
  registerModelsReport(models);
  const convert = models
    .command("convert")
    .description("convert a diffusers-format InstructPix2Pix or Multi-Reward checkpoint folder, or an original-layout single-file InstructPix2Pix checkpoint, into a model folder, then validate it")
    .argument("<src>", "checkpoint folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/), or one original-layout (CompVis/LDM) FILE.safetensors or FILE.ckpt")
    .argument("<out>", "model folder to write")
    .option("--dtype <dtype>", "float32, float16 (half the files; float32 inputs and outputs) or int8 (the UNets' and text encoder's weights: a quarter of the memory, float32 arithmetic)", "float32")
    .option("--check", "only check tensor names and shapes against the configs; write nothing")
    .option("--unfused-attention", "export attention as MatMul/Softmax/MatMul instead of ONNX Runtime's fused MultiHeadAttention")
    .option("--config <dir|repo>", `single file only: diffusers folder or Hub repository of the same model giving its configs, tokenizer and scheduler (default ${DEFAULT_CONFIG_REPO})`)
    .option("--ema", "single file only: take the UNet's EMA weights (model_ema.*) instead of the raw ones");
  computeOptions(convert).action(
    async (src: string, out: string, o: { dtype: string; compute: string; calibrationPhotos?: string; instruction?: string; check?: boolean; unfusedAttention?: boolean; config?: string; ema?: boolean }) => {
      const { compute, calibration, threads } = parseComputeChoice(o);
      const kind = sourceKind(src);
      if (kind === "folder" && (o.config !== undefined || o.ema)) throw new CliError(`--config and --ema are for single-file checkpoints; ${src} is a folder with its own configs`);
      // a missing SRC goes to the converter as it is, which names what does not exist
      const config = kind === "file" ? await configDirFor(o.config) : o.config;
      const singleArgs = [...(config !== undefined ? ["--config", config] : []), ...(o.ema ? ["--ema"] : [])];
      const exportArgs = [...(o.unfusedAttention ? ["--unfused-attention"] : []), ...singleArgs];
      // int8 arithmetic: a float32 conversion beside OUT, calibrated and quantised into it (src/pull/compute.ts)
      const converting =
        compute === "int8" && !o.check
          ? convertComputeInt8(src, out, { converterArgs: exportArgs, items: calibration, threads, log: (line) => process.stderr.write(`quantize: ${line}\n`) })
          : runConverter([src, out, "--dtype", o.dtype, ...(o.check ? ["--check"] : []), ...exportArgs]);
      const code = await converting.catch((e) => {
        throw e instanceof ConverterMissing ? new CliError(e.message) : e;
      });
      if (code !== 0) {
        process.exitCode = code;
        return;
      }
      if (o.check) return;
      const report = await inspectModelFolder(out);
      await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
      if (report.problems.length > 0) throw new CliError(`converted folder ${out} does not validate: ${report.problems.join("; ")}`);
      const m = report.manifest!;
      const arithmetic = compute === "int8" ? ", int8 arithmetic" : "";
      process.stdout.write(`ok: ${out} (${m.name}, ${m.resolution}px, ${m.rewards ? "reward inputs" : "no reward inputs"}${arithmetic}); serve it with REWARD_EDIT_MODEL=${out} npm start\n`);
    },
  );
  models
    .command("quantize")
    .description("write a copy of a converted float32 folder with the UNets' and text encoder's weights in int8 (one scale per output channel, float32 arithmetic): a full-size editor in a quarter of the memory; with --compute int8 the UNets and VAE decoder also compute in int8, calibrated on edits, and a report compares the copy with its source; then validate it")
    .argument("<dir>", "converted model folder (float32)")
    .argument("<out>", "model folder to write (may be <dir> itself)")
    .option("--compute <kind>", COMPUTE_OPTION_HELP.compute, "float32")
    .option("--graphs <list>", "graphs to quantise, comma-separated (int8 weights: default unet,unet_shallow,text_encoder, the VAE stays float32 unless named)")
    .option("--conv-min-channels <n>", "int8 weights: convolutions with fewer output channels stay float32: 1280 on a full-size UNet: 0.23 GiB more, 14x less output error, its call +18 % instead of +22 % of float32 (docs/performance.md)", "0")
    .option("--matmul <mode>", COMPUTE_OPTION_HELP.matmul, "static")
    .option("--keep-fraction <x>", COMPUTE_OPTION_HELP.keepFraction, String(DEFAULT_KEEP_FRACTION))
    .option("--keep <nodes>", COMPUTE_OPTION_HELP.keep)
    .option("--calibration-photos <files>", COMPUTE_OPTION_HELP.calibrationPhotos)
    .option("--instruction <text>", "with --calibration-photos: the instruction they are edited with")
    .option("--photos <files>", COMPUTE_OPTION_HELP.photos)
    .action(async (dir: string, out: string, o: ComputeFlags & { compute: string; graphs?: string; convMinChannels: string }) => {
      if (parseComputeChoice({ dtype: "int8", compute: o.compute }).compute === "int8") return quantizeComputeCommand(dir, out, o);
      o.graphs ??= "unet,unet_shallow,text_encoder";
      if (!existsSync(dir)) throw new CliError(`${dir}: no such folder`);
      if (!/^\d+$/.test(o.convMinChannels)) throw new CliError(`--conv-min-channels must be a whole number, got "${o.convMinChannels}"`);
      const code = await runQuantizer([dir, out, "--graphs", o.graphs, "--conv-min-channels", o.convMinChannels]).catch((e) => {
        throw e instanceof ConverterMissing ? new CliError(e.message) : e;
      });
      if (code !== 0) {
        process.exitCode = code;
        return;
      }
      const report = await inspectModelFolder(out);
      await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
      if (report.problems.length > 0) throw new CliError(`quantised folder ${out} does not validate: ${report.problems.join("; ")}`);
      process.stdout.write(`ok: ${out} (${report.manifest!.name}, int8 weights); serve it with REWARD_EDIT_MODEL=${out} npm start\n`);
    });
  models
    .command("tiny-decoder")
    .description(`fetch TAESD (diffusers' AutoencoderTiny, default ${DEFAULT_TINY_DECODER_REPO}) from the Hugging Face Hub into the shared cache and add its decoder to a model folder as preview_decoder, for --decoder tiny`)
    .argument("<dir>", "model folder (an SD-family editor: latents 8x smaller than the image)")
    .option("--repo <id>", "repository holding config.json and diffusion_pytorch_model.safetensors", DEFAULT_TINY_DECODER_REPO)
    .option("--revision <rev>", "branch, tag or commit", "main")
    .option("--subfolder <dir>", "the AutoencoderTiny's folder inside the repository")
    .action(async (dir: string, o: { repo: string; revision: string; subfolder?: string }) => {
      try {
        const r = await pullTinyDecoder({ dir, repo: o.repo, revision: o.revision, subfolder: o.subfolder, progress: progressFor(process.stderr) });
        const report = await inspectModelFolder(dir);
        await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
        if (report.problems.length > 0) throw new CliError(`${dir} does not validate with the tiny decoder: ${report.problems.join("; ")}`);
        process.stdout.write(`ok: ${dir} decodes with --decoder tiny (${r.repo}@${r.snapshot.commit.slice(0, 12)}); the full VAE decoder stays the default\n`);
      } catch (e) {
        if (e instanceof HubError || e instanceof PullError || e instanceof ConverterMissing) throw new CliError(e.message);
        throw e;
      }
    });
  models
    .command("validate")
    .description("check a model folder: files, ONNX inputs, dtypes, ranks, reward inputs")
    .argument("<dir>", "model folder")
    .action(async (dir: string) => {
      const report = await inspectModelFolder(dir);
      await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
      if (report.problems.length > 0) {
        for (const p of report.problems) process.stdout.write(`problem: ${p}\n`);
        process.stdout.write(`${dir}: ${report.problems.length} problem(s)\n`);
        process.exitCode = 1;
        return;
      }
      const m = report.manifest!;
      const rewards = m.rewards ? `rewards [${m.rewards.perspectives.join(", ")}]` : "no reward inputs";
      process.stdout.write(`ok: ${m.name} (${m.resolution}px, ${m.latent_channels}-channel latents, ${rewards})\n`);
    });
}
