/**
 * Full-scale timing (issue 7c, issue 12): the path users run. A full-size Multi-Reward checkpoint in
 * the real diffusers layout (random weights: the real ones cannot be downloaded here) is written by
 * models/convert/random_checkpoint.py and turned into a model folder by the checkpoint converter;
 * then one guided batch-3 UNet step at 512x512 with the top operators from ONNX Runtime's profiler,
 * a whole 20-step edit of a 512x512 photo through the real pipeline, and the achieved FLOP rates
 * against this machine's sgemm peak measured by ONNX Runtime in the same run. Everything is cached
 * outside git (about 10 GB).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createSession, edit, loadModel } from "../../editor/index.js";
import { CONVERTER, PYTHON, QUANTIZER, ROOT } from "../../src/paths.js";
import { compareFloat16 } from "./float16.js";
import { peakRssGb } from "./peak-rss.js";

const CACHE = process.env.REWARD_EDIT_CACHE ?? path.join(os.homedir(), ".cache", "reward-edit");
export const FULLSCALE_CHECKPOINT = path.join(CACHE, "mrc-random-checkpoint");
export const FULLSCALE_CACHE = path.join(CACHE, "mrc-random-float32");

function python(script: string, args: string[], capture = false): string {
  const r = spawnSync(PYTHON, [script, ...args], {
    stdio: ["ignore", capture ? "pipe" : "inherit", "inherit"],
    encoding: "utf8",
    env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
  });
  if (r.status !== 0) throw new Error(`${path.basename(script)} failed`);
  return r.stdout ?? "";
}

/** Checkpoint -> converted folder -> FLOP counts, each step only when its output is missing. */
export function ensureFullScaleModel(): void {
  const convert = path.join(ROOT, "models", "convert");
  const layout = path.resolve(ROOT, "..", "shared", "reference", "sd15-onnx-layout");
  if (!existsSync(path.join(FULLSCALE_CHECKPOINT, "unet", "diffusion_pytorch_model.safetensors"))) {
    python(path.join(convert, "random_checkpoint.py"), ["--layout", layout, "--out", FULLSCALE_CHECKPOINT, "--rewards"]);
  }
  // a folder converted before DeepCache (issue 20) lacks the shallow UNet graph: convert again
  if (!existsSync(path.join(FULLSCALE_CACHE, "reward-edit.json")) || !existsSync(path.join(FULLSCALE_CACHE, "unet_shallow", "model.onnx"))) {
    const line = python(CONVERTER, [FULLSCALE_CHECKPOINT, FULLSCALE_CACHE], true).trim().split("\n").pop()!;
    writeFileSync(path.join(FULLSCALE_CACHE, "conversion.json"), line);
  }
  if (!existsSync(path.join(FULLSCALE_CACHE, "flops.json")) || !existsSync(path.join(FULLSCALE_CACHE, "matmul", "model.onnx"))) {
    python(path.join(convert, "flops.py"), ["--checkpoint", FULLSCALE_CHECKPOINT, "--out", FULLSCALE_CACHE]);
  }
}

/** The float32 folder quantised by models/convert/quantize.py. */
export const FULLSCALE_INT8 = path.join(CACHE, "mrc-random-int8");

/** The full-size folder quantised once into `out` (quantize.py options in quantizeArgs). */
export function ensureInt8Model(out = FULLSCALE_INT8, quantizeArgs: string[] = []): void {
  ensureFullScaleModel();
  if (!existsSync(path.join(out, "reward-edit.json"))) {
    const r = spawnSync(PYTHON, [QUANTIZER, FULLSCALE_CACHE, out, ...quantizeArgs], { stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) throw new Error("quantising the full-size folder failed");
  }
}
/** The float32 folder with int8 arithmetic (models quantize --compute int8). */
export const FULLSCALE_INT8_COMPUTE = path.join(CACHE, "mrc-random-int8-compute");

/**
 * The full-size folder with int8 arithmetic, written once. Its weights are random, so the ranges
 * calibrate nothing meaningful: this folder is for time and memory, never for quality (the
 * bundled editor and the golden checkpoints are). One sample photo, the `fast` schedule.
 */
export async function ensureComputeModel(out = FULLSCALE_INT8_COMPUTE): Promise<void> {
  ensureFullScaleModel();
  if (existsSync(path.join(out, "reward-edit.json"))) return;
  const { quantizeCompute } = await import("../../src/quantize/int8-compute.js");
  const image = readFileSync(path.join(ROOT, "src", "benchmark", "sample", "images", "astronaut.png"));
  // the `fast` schedule only: a default edit of this folder takes about 10 minutes here, and
  // calibrating a random-weight folder measures nothing but time
  await quantizeCompute({ src: FULLSCALE_CACHE, out, items: [{ image, instruction: "make it look like a watercolour painting" }], schedules: ["fast"], sweepCalls: 2, log: (l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`) });
}

/** int8 arithmetic with dynamic MatMuls (scale per call), the same ranges and kept layers otherwise. */
export const FULLSCALE_INT8_DYNAMIC = path.join(CACHE, "mrc-random-int8-dynamic");

export async function ensureDynamicModel(out = FULLSCALE_INT8_DYNAMIC): Promise<void> {
  await ensureComputeModel();
  if (existsSync(path.join(out, "reward-edit.json"))) return;
  const { writeComputeFolder } = await import("../../src/quantize/int8-compute.js");
  const ranges = JSON.parse(readFileSync(path.join(FULLSCALE_INT8_COMPUTE, "quantization-ranges.json"), "utf8"));
  const m = JSON.parse(readFileSync(path.join(FULLSCALE_INT8_COMPUTE, "reward-edit.json"), "utf8")) as { source: { quantized: { int8_graphs: string[]; kept_float?: Record<string, string[]> } } };
  const keep = Object.values(m.source.quantized.kept_float ?? {}).flat();
  await writeComputeFolder(FULLSCALE_CACHE, out, ranges, { graphs: m.source.quantized.int8_graphs as never, matmul: "dynamic", keep });
}

interface ComponentFlops {
  params: number;
  flops_per_call: number;
}

export async function measureFullScale(threads: number, repeats = 3, editSteps = 20) {
  ensureFullScaleModel();
  const flops = JSON.parse(readFileSync(path.join(FULLSCALE_CACHE, "flops.json"), "utf8")) as {
    latent: number;
    components: Record<"unet" | "vae_encoder" | "vae_decoder" | "text_encoder", ComponentFlops>;
  };
  const unetFlops = flops.components.unet;
  // first, so the process's peak RSS is the whole edit's (sessions + activations), not the later sessions'
  const whole = await measureWholeEdit(threads, editSteps, flops.components);
  // sgemm peak as ORT itself achieves it on a large MatMul, sampled between the UNet steps: this
  // machine's speed drifts by tens of percent, and one early sample can sit below a later step
  const mm = await createSession(path.join(FULLSCALE_CACHE, "matmul", "model.onnx"), { intraOpThreads: threads });
  const n = JSON.parse(readFileSync(path.join(FULLSCALE_CACHE, "matmul", "flops.json"), "utf8")).n as number;
  const x = { type: "float32" as const, data: new Float32Array(n * n).fill(0.5), dims: [n, n] };
  const sgemmGflops = async () => {
    let best = Infinity;
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      await mm.run({ x });
      if (i > 0) best = Math.min(best, performance.now() - t);
    }
    return (2 * n ** 3) / (best / 1000) / 1e9;
  };
  const peaks = [await sgemmGflops()];

  const unet = await createSession(path.join(FULLSCALE_CACHE, "unet", "model.onnx"), { intraOpThreads: threads, enableProfiling: true });
  const L = flops.latent as number;
  const feeds = {
    sample: { type: "float32" as const, data: new Float32Array(3 * 8 * L * L).fill(0.1), dims: [3, 8, L, L] },
    timestep: { type: "float32" as const, data: new Float32Array([500, 500, 500]), dims: [3] },
    encoder_hidden_states: { type: "float32" as const, data: new Float32Array(3 * 77 * 768).fill(0.01), dims: [3, 77, 768] },
    // the Multi-Reward inputs, as the pipeline feeds them (scores 5,5,5 and a pooled feedback text)
    reward_scores: { type: "float32" as const, data: new Float32Array(9).fill(5), dims: [3, 3] },
    feedback_embeds: { type: "float32" as const, data: new Float32Array(3 * 768).fill(0.01), dims: [3, 768] },
  };
  await unet.run(feeds); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await unet.run(feeds);
    times.push(performance.now() - t);
    peaks.push(await sgemmGflops());
  }
  await mm.dispose();
  const peak = Math.max(...peaks);
  unet.endProfiling();
  await unet.dispose();
  // ORT names the trace <prefix>_<timestamp>.json beside the model
  const dir = path.join(FULLSCALE_CACHE, "unet");
  const traces = readdirSync(dir).filter((f) => f.startsWith("model-profile_") && f.endsWith(".json")).sort();
  const profileFile = traces.length ? path.join(dir, traces[traces.length - 1]) : undefined;
  const stepMs = Math.min(...times);
  const achieved = unetFlops.flops_per_call / (stepMs / 1000) / 1e9;
  const topOps = profileFile ? topOperators(profileFile) : [];
  const float16 = process.env.BENCH_FULLSCALE_FP16 === "0" ? null : await compareFloat16(FULLSCALE_CACHE, threads, { rounds: 3, perRound: 1, latent: [L, L], out: path.join(FULLSCALE_CACHE, "unet-fp16", "model.onnx") });
  const conversion = existsSync(path.join(FULLSCALE_CACHE, "conversion.json")) ? JSON.parse(readFileSync(path.join(FULLSCALE_CACHE, "conversion.json"), "utf8")) : null;
  return {
    conversion,
    params_m: unetFlops.params / 1e6,
    tflop_per_step: unetFlops.flops_per_call / 1e12,
    step_ms: { min: stepMs, all: times },
    sgemm_peak_gflops: peak,
    sgemm_samples_gflops: peaks,
    achieved_gflops: achieved,
    fraction_of_peak: achieved / peak,
    top_operators: topOps,
    float16,
    edit: { ...whole, fraction_of_peak: whole.achieved_gflops / peak },
  };
}

/** A whole edit of a 512x512 photo through loadModel + edit(), as a user would run it. */
async function measureWholeEdit(threads: number, steps: number, c: Record<"unet" | "vae_encoder" | "vae_decoder" | "text_encoder", ComponentFlops>) {
  const model = await loadModel(FULLSCALE_CACHE, { intraOpThreads: threads, interOpThreads: 1 });
  try {
    const image = readFileSync(path.join(ROOT, "src", "benchmark", "sample", "images", "astronaut.png"));
    const r = await edit(model, { image, instruction: "turn the suit gold", steps, seed: 0 });
    const ms = (s: { runMs: number }) => s.runMs;
    const totalFlops = c.text_encoder.flops_per_call + c.vae_encoder.flops_per_call + steps * c.unet.flops_per_call + c.vae_decoder.flops_per_call;
    return {
      steps,
      size: `${r.parameters.workingWidth}x${r.parameters.workingHeight}`,
      params_m: (c.unet.params + c.vae_encoder.params + c.vae_decoder.params + c.text_encoder.params) / 1e6,
      tflop: totalFlops / 1e12,
      wall_s: r.timings.totalMs / 1000,
      ort_s: r.timings.ortMs / 1000,
      overhead_ratio: r.timings.totalMs / r.timings.ortMs,
      component_s: {
        text_encoder: ms(model.textEncoder) / 1000,
        vae_encoder: ms(model.vaeEncoder) / 1000,
        unet: ms(model.unet) / 1000,
        vae_decoder: ms(model.vaeDecoder) / 1000,
      },
      achieved_gflops: totalFlops / (r.timings.totalMs / 1000) / 1e9,
      // the working size is capped at the model's resolution, so this bounds any input and says
      // whether VAE tiling would be needed (measured first in the process, before other sessions)
      peak_rss_gb: peakRssGb(),
    };
  } finally {
    await model.dispose();
  }
}

/** Total time per operator type in an ORT profile (Chrome trace JSON), largest first. */
export function topOperators(file: string): Array<{ op: string; ms: number; share: number }> {
  const events = JSON.parse(readFileSync(file, "utf8")) as Array<{ cat: string; dur: number; args?: { op_name?: string } }>;
  rmSync(file, { force: true });
  const by = new Map<string, number>();
  for (const e of events) if (e.cat === "Node" && e.args?.op_name) by.set(e.args.op_name, (by.get(e.args.op_name) ?? 0) + e.dur);
  const total = [...by.values()].reduce((a, b) => a + b, 0);
  return [...by.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([op, us]) => ({ op, ms: us / 1000, share: us / total }));
}
