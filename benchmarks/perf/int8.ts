/**
 * int8 weights against float32 on the full-size converted folder (issue 33), side by side in one
 * process: each graph that quantize.py rewrites (UNet, shallow UNet, text encoder) with the same
 * feeds, calls alternating round by round so the machine's drift falls on both alike, and the
 * int8 output's error against the float32 one. The UNet runs at batch 2 on a 512 px latent, as a
 * `fast` edit runs it (image guidance 1: two branches).
 *
 *   node dist/benchmarks/perf/int8.js [rounds [int8-folder]]
 */
import path from "node:path";
import { type Session, createSession } from "../../editor/model/session.js";
import { stat } from "../../src/stats.js";
import { feedsFor } from "./float16.js";
import { FULLSCALE_CACHE, FULLSCALE_INT8, ensureInt8Model } from "./fullscale.js";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);

export interface Int8Row {
  graph: string;
  float32Ms: ReturnType<typeof stat>;
  int8Ms: ReturnType<typeof stat>;
  /** int8 time / float32 time, medians. */
  timeRatio: number;
  /** max |int8 - float32| / max |float32|, over every output. */
  relError: number;
}

function textFeeds(s: Session) {
  const ids = new BigInt64Array(2 * 77);
  for (let k = 0; k < ids.length; k++) ids[k] = BigInt(k % 77 === 0 ? 49406 : k % 77 < 9 ? 320 + ((k * 37) % 4000) : 49407);
  const type = s.inputs[0].type === "int32" ? "int32" : "int64";
  return { [s.inputNames[0]]: type === "int32" ? { type, data: Int32Array.from(ids, Number), dims: [2, 77] } : { type, data: ids, dims: [2, 77] } } as const;
}

export async function compareInt8(rounds = 3, int8Folder: string = FULLSCALE_INT8): Promise<Int8Row[]> {
  if (int8Folder === FULLSCALE_INT8) ensureInt8Model();
  const rows: Int8Row[] = [];
  const options = { intraOpThreads: THREADS, interOpThreads: 1 };
  for (const graph of ["unet", "unet_shallow", "text_encoder"]) {
    const sessions = [await createSession(path.join(FULLSCALE_CACHE, graph, "model.onnx"), options), await createSession(path.join(int8Folder, graph, "model.onnx"), options)];
    try {
      let feeds = graph === "text_encoder" ? textFeeds(sessions[0]) : feedsFor(sessions[0], 2, [64, 64]);
      if (graph === "unet_shallow") {
        // the deep features the whole UNet would pass: any smooth tensor of the declared channels
        const unet = await createSession(path.join(FULLSCALE_CACHE, "unet", "model.onnx"), options);
        const deep = (await unet.run(feedsFor(unet, 2, [64, 64]))).deep_features;
        await unet.dispose();
        feeds = { ...feedsFor(sessions[0], 2, [64, 64]), deep_features: { type: "float32", data: deep.data, dims: deep.dims } };
      }
      const ms: number[][] = [[], []];
      const outs: Array<Record<string, Float32Array>> = [{}, {}];
      for (let r = 0; r < rounds; r++) {
        for (const [k, s] of sessions.entries()) {
          const t = performance.now();
          const o = await s.run(feeds as never);
          ms[k].push(performance.now() - t);
          if (r === 0) for (const [name, v] of Object.entries(o)) outs[k][name] = v.data;
        }
      }
      let diff = 0;
      let peak = 0;
      for (const name of Object.keys(outs[0])) {
        for (let i = 0; i < outs[0][name].length; i++) {
          diff = Math.max(diff, Math.abs(outs[0][name][i] - outs[1][name][i]));
          peak = Math.max(peak, Math.abs(outs[0][name][i]));
        }
      }
      rows.push({ graph, float32Ms: stat(ms[0]), int8Ms: stat(ms[1]), timeRatio: stat(ms[1]).median / stat(ms[0]).median, relError: diff / peak });
    } finally {
      for (const s of sessions) await s.dispose();
    }
  }
  return rows;
}

export function int8Table(rows: Int8Row[]): string {
  const f = (s: ReturnType<typeof stat>) => `${(s.median / 1000).toFixed(2)} (${(s.min / 1000).toFixed(2)}-${(s.max / 1000).toFixed(2)})`;
  const out = ["| graph | float32 s, median (min-max) | int8 s | int8 / float32 | max error / max output |", "| --- | --- | --- | --- | --- |"];
  for (const r of rows) out.push(`| ${r.graph} | ${f(r.float32Ms)} | ${f(r.int8Ms)} | ${r.timeRatio.toFixed(3)} | ${r.relError.toExponential(2)} |`);
  return out.join("\n");
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const rows = await compareInt8(process.argv[2] ? Number(process.argv[2]) : undefined, process.argv[3]);
  process.stdout.write(JSON.stringify(rows) + "\n" + int8Table(rows) + "\n");
}
