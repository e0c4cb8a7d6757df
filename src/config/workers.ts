/**
 * How the cores are split between inference workers and ONNX Runtime's intra-op threads.
 * `npm run bench` measured it: with the bundled editor on 2 cores, two workers of one thread
 * served 1.6x the requests per second of one worker with two threads (5.60 vs 3.49 req/s at 8
 * clients), because a small model's operators are too short to keep two threads busy. A large
 * model (Stable Diffusion: GBs of weights per worker) keeps one worker with every thread: its
 * operators parallelise well and a second copy of the weights would cost memory, not time.
 */
import { readdirSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Below this many bytes of ONNX files a model gets one worker per core under "auto". */
export const SMALL_MODEL_BYTES = 256 * 2 ** 20;

export interface WorkerLayout {
  workers: number;
  ortThreads: number;
  reason: string;
}

/** Bytes of every file under the model folder's component directories (graphs and external weights). */
export function modelBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += statSync(p).size;
    }
  };
  for (const c of ["text_encoder", "vae_encoder", "unet", "vae_decoder"]) {
    try {
      walk(path.join(dir, c));
    } catch {
      // a missing component is reported by the model loader, with the rest of the problems
    }
  }
  return total;
}

export function workerLayout(
  workers: number | "auto",
  ortThreads: number,
  modelDir: string,
  o: { cores?: number; smallModelBytes?: number } = {},
): WorkerLayout {
  const cores = o.cores ?? os.availableParallelism();
  let n: number;
  let reason: string;
  if (workers === "auto") {
    const bytes = modelBytes(modelDir);
    const small = bytes <= (o.smallModelBytes ?? SMALL_MODEL_BYTES);
    n = small ? cores : 1;
    reason = `auto: ${(bytes / 2 ** 20).toFixed(0)} MB model, ${cores} cores -> ${small ? "one worker per core" : "one worker with every core"}`;
  } else {
    n = workers;
    reason = "REWARD_EDIT_WORKERS";
  }
  return { workers: n, ortThreads: ortThreads > 0 ? ortThreads : Math.max(1, Math.floor(cores / n)), reason };
}
