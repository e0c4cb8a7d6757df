/**
 * Full-scale timing (issue 7c): a UNet with Stable Diffusion 1.5's architecture and 8 input
 * channels (random weights, made by models/train/sd_unet.py and cached outside git), one guided
 * batch-3 step at 512x512, the top operators from ONNX Runtime's profiler, and the achieved FLOP
 * rate against this machine's sgemm peak measured by ONNX Runtime in the same run.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createSession } from "../../editor/index.js";
import { ROOT } from "../paths.js";

export const FULLSCALE_CACHE = process.env.REWARD_EDIT_CACHE ?? path.join(os.homedir(), ".cache", "reward-edit", "sd15-ip2p");

export function ensureFullScaleModel(): void {
  if (existsSync(path.join(FULLSCALE_CACHE, "flops.json")) && existsSync(path.join(FULLSCALE_CACHE, "matmul", "model.onnx"))) return;
  const config = path.resolve(ROOT, "..", "shared", "reference", "sd15-onnx-layout", "unet", "config.json");
  const r = spawnSync("/usr/bin/python3", [path.join(ROOT, "models", "train", "sd_unet.py"), "--config", config, "--out", FULLSCALE_CACHE], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
  });
  if (r.status !== 0) throw new Error("sd_unet.py failed");
}

export async function measureFullScale(threads: number, repeats = 2) {
  ensureFullScaleModel();
  const flops = JSON.parse(readFileSync(path.join(FULLSCALE_CACHE, "flops.json"), "utf8"));
  // sgemm peak as ORT itself achieves it on a large MatMul
  const mm = await createSession(path.join(FULLSCALE_CACHE, "matmul", "model.onnx"), { intraOpThreads: threads });
  const n = JSON.parse(readFileSync(path.join(FULLSCALE_CACHE, "matmul", "flops.json"), "utf8")).n as number;
  const x = new Float32Array(n * n).fill(0.5);
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    await mm.run({ x: { type: "float32", data: x, dims: [n, n] } });
    if (i > 0) best = Math.min(best, performance.now() - t);
  }
  await mm.dispose();
  const peak = (2 * n ** 3) / (best / 1000) / 1e9;

  const unet = await createSession(path.join(FULLSCALE_CACHE, "unet", "model.onnx"), { intraOpThreads: threads, enableProfiling: true });
  const L = flops.latent as number;
  const feeds = {
    sample: { type: "float32" as const, data: new Float32Array(3 * 8 * L * L).fill(0.1), dims: [3, 8, L, L] },
    timestep: { type: "float32" as const, data: new Float32Array([500, 500, 500]), dims: [3] },
    encoder_hidden_states: { type: "float32" as const, data: new Float32Array(3 * 77 * 768).fill(0.01), dims: [3, 77, 768] },
  };
  await unet.run(feeds); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await unet.run(feeds);
    times.push(performance.now() - t);
  }
  unet.endProfiling();
  await unet.dispose();
  // ORT names the trace <prefix>_<timestamp>.json beside the model
  const dir = path.join(FULLSCALE_CACHE, "unet");
  const traces = readdirSync(dir).filter((f) => f.startsWith("model-profile_") && f.endsWith(".json")).sort();
  const profileFile = traces.length ? path.join(dir, traces[traces.length - 1]) : undefined;
  const stepMs = Math.min(...times);
  const achieved = flops.flops_per_call / (stepMs / 1000) / 1e9;
  return {
    params_m: flops.params / 1e6,
    tflop_per_step: flops.flops_per_call / 1e12,
    step_ms: { min: stepMs, all: times },
    unet_only_20_step_edit_s: (20 * stepMs) / 1000,
    sgemm_peak_gflops: peak,
    achieved_gflops: achieved,
    fraction_of_peak: achieved / peak,
    top_operators: profileFile ? topOperators(profileFile) : [],
  };
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
