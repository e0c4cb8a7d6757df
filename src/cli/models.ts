import { spawn } from "node:child_process";
import type { Command } from "commander";
import { inspectModelFolder } from "../../editor/index.js";
import { CONVERTER, PYTHON } from "../paths.js";
import { CliError } from "./errors.js";

/** Runs the Python converter (models/convert), its progress and problems going straight to the user. */
function runConverter(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [CONVERTER, ...args], { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, OPENBLAS_NUM_THREADS: "1" } });
    child.on("error", (e) => reject(new CliError(`cannot run ${PYTHON} (${e.message}); the converter needs Python 3 with torch and onnx (Debian: python3-torch python3-onnx)`)));
    child.on("close", (code) => resolve(code ?? 1));
  });
}

export function registerModels(program: Command): void {
  const models = program.command("models").description("inspect model folders");
  models
    .command("convert")
    .description("convert a diffusers-format InstructPix2Pix or Multi-Reward checkpoint folder into a model folder, then validate it")
    .argument("<src>", "checkpoint folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)")
    .argument("<out>", "model folder to write")
    .option("--dtype <dtype>", "float32 or float16 (half the size; float32 inputs and outputs)", "float32")
    .option("--check", "only check tensor names and shapes against the configs; write nothing")
    .option("--unfused-attention", "export attention as MatMul/Softmax/MatMul instead of ONNX Runtime's fused MultiHeadAttention")
    .action(async (src: string, out: string, o: { dtype: string; check?: boolean; unfusedAttention?: boolean }) => {
      if (o.dtype !== "float32" && o.dtype !== "float16") throw new CliError(`--dtype must be float32 or float16, got "${o.dtype}"`);
      const code = await runConverter([src, out, "--dtype", o.dtype, ...(o.check ? ["--check"] : []), ...(o.unfusedAttention ? ["--unfused-attention"] : [])]);
      if (code !== 0) {
        process.exitCode = code;
        return;
      }
      if (o.check) return;
      const report = await inspectModelFolder(out);
      await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
      if (report.problems.length > 0) throw new CliError(`converted folder ${out} does not validate: ${report.problems.join("; ")}`);
      const m = report.manifest!;
      process.stdout.write(`ok: ${out} (${m.name}, ${m.resolution}px, ${m.rewards ? "reward inputs" : "no reward inputs"}); serve it with REWARD_EDIT_MODEL=${out} npm start\n`);
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
