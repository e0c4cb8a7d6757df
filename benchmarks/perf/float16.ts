/**
 * Issue 7's "a float16 variant where it is faster": the UNet converted by models/train/fp16.py
 * (float32 inputs and outputs, float16 inside; cached outside git) against the float32 UNet,
 * same feeds, runs alternating. ONNX Runtime's CPU provider falls back to float32 (inserting
 * Casts) for any op without a float16 kernel, so the figure is what this machine really gets.
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type HostTensor, type Session, createSession } from "../../editor/model/session.js";
import { ROOT } from "../../src/paths.js";
import { stat } from "../../src/stats.js";

const CACHE = path.join(os.homedir(), ".cache", "reward-edit", "fp16");

/** Converts `unet/model.onnx` of a folder to `out` (once; again when the source is newer). */
export function float16Unet(dir: string, out = path.join(CACHE, path.basename(dir), "unet", "model.onnx")): string {
  const src = path.join(dir, "unet", "model.onnx");
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  const r = spawnSync("/usr/bin/python3", [path.join(ROOT, "models", "train", "fp16.py"), "--in", src, "--out", out], {
    encoding: "utf8",
    env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
  });
  if (r.status !== 0) throw new Error(`fp16.py failed: ${r.stderr.slice(-400)}`);
  return out;
}

/** Deterministic, non-constant feeds for whatever inputs the UNet declares. */
export function feedsFor(s: Session, batch: number, latent: [number, number]): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const i of s.inputs) {
    const dims = i.shape.map((d, k) => (typeof d === "number" && d > 0 ? d : k === 0 ? batch : k === 2 ? latent[0] : latent[1]));
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let k = 0; k < n; k++) data[k] = i.name === "timestep" ? 500 : i.name === "reward_scores" ? 5 : Math.sin(k * 0.37);
    feeds[i.name] = { type: "float32", data, dims };
  }
  return feeds;
}

export async function compareFloat16(dir: string, threads: number, opts: { rounds?: number; perRound?: number; latent?: [number, number]; out?: string } = {}) {
  const rounds = opts.rounds ?? 3;
  const perRound = opts.perRound ?? 10;
  let half: string;
  try {
    half = float16Unet(dir, opts.out);
  } catch (err) {
    return { error: (err as Error).message };
  }
  const options = { intraOpThreads: threads, interOpThreads: 1 };
  const sessions = [await createSession(path.join(dir, "unet", "model.onnx"), options), await createSession(half, options)];
  try {
    const feeds = feedsFor(sessions[0], 3, opts.latent ?? [32, 32]);
    const outs = [];
    for (const s of sessions) outs.push(Object.values(await s.run(feeds))[0].data.slice());
    let maxDiff = 0;
    let maxAbs = 0;
    for (let k = 0; k < outs[0].length; k++) {
      maxDiff = Math.max(maxDiff, Math.abs(outs[0][k] - outs[1][k]));
      maxAbs = Math.max(maxAbs, Math.abs(outs[0][k]));
    }
    const ms: number[][] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const [k, s] of sessions.entries()) {
        for (let i = 0; i < perRound; i++) {
          const t = performance.now();
          await s.run(feeds);
          ms[k].push(performance.now() - t);
        }
      }
    }
    return {
      float32_ms: stat(ms[0]),
      float16_ms: stat(ms[1]),
      speedup: stat(ms[0]).median / stat(ms[1]).median,
      max_abs_diff: maxDiff,
      max_abs_output: maxAbs,
    };
  } finally {
    for (const s of sessions) await s.dispose();
  }
}
