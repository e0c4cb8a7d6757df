/**
 * float32, int8 weights (issue 33) and int8 arithmetic (issue 42) on the full-size converted folder,
 * graph by graph, side by side in one process: each graph with the same feeds, calls alternating
 * round by round so the machine's drift falls on every folder alike, and each output's error
 * against float32's. The UNet runs at the batch sizes a `fast` edit uses (2 inside its guidance
 * interval, 1 outside), the outer DeepCache graph at 2, the VAE at 512 px.
 *
 *   node dist/benchmarks/perf/int8.js [rounds]
 */
import path from "node:path";
import { type HostTensor, type Session, createSession } from "../../editor/index.js";
import { stat } from "../../src/stats.js";
import { feedsFor } from "./float16.js";
import { FULLSCALE_CACHE, FULLSCALE_INT8, FULLSCALE_INT8_COMPUTE, FULLSCALE_INT8_DYNAMIC, ensureDynamicModel, ensureInt8Model } from "./fullscale.js";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);

export const INT8_FOLDERS = { float32: FULLSCALE_CACHE, "int8 weights": FULLSCALE_INT8, "int8 arithmetic": FULLSCALE_INT8_COMPUTE, "int8, dynamic MatMul": FULLSCALE_INT8_DYNAMIC } as const;
type FolderName = keyof typeof INT8_FOLDERS;

export interface Int8Row {
  graph: string;
  /** Per folder: seconds per call (median, min, max), time against float32's median, max |out - float32| / max |float32|. */
  folders: Record<string, { ms: ReturnType<typeof stat>; timeRatio: number; relError: number }>;
}

function textFeeds(s: Session): Record<string, HostTensor> {
  const ids = new BigInt64Array(2 * 77);
  for (let k = 0; k < ids.length; k++) ids[k] = BigInt(k % 77 === 0 ? 49406 : k % 77 < 9 ? 320 + ((k * 37) % 4000) : 49407);
  const type = s.inputs[0].type === "int32" ? "int32" : "int64";
  return { [s.inputNames[0]]: type === "int32" ? { type, data: Int32Array.from(ids, Number), dims: [2, 77] } : { type, data: ids, dims: [2, 77] } };
}

interface Case {
  label: string;
  graph: string;
  feeds: (s: Session, float32: Record<string, Session>) => Promise<Record<string, HostTensor>>;
}

const CASES: Case[] = [
  { label: "unet, batch 2", graph: "unet", feeds: async (s) => feedsFor(s, 2, [64, 64]) },
  { label: "unet, batch 1", graph: "unet", feeds: async (s) => feedsFor(s, 1, [64, 64]) },
  {
    label: "unet_shallow (DeepCache outer graph), batch 2",
    graph: "unet_shallow",
    feeds: async (s, f32) => {
      // the deep features the whole UNet would pass
      const deep = (await f32.unet.run(feedsFor(f32.unet, 2, [64, 64]))).deep_features;
      return { ...feedsFor(s, 2, [64, 64]), deep_features: { type: "float32", data: deep.data, dims: deep.dims } };
    },
  },
  { label: "vae_decoder, 512 px", graph: "vae_decoder", feeds: async (s) => feedsFor(s, 1, [64, 64]) },
  { label: "vae_encoder, 512 px", graph: "vae_encoder", feeds: async (s) => feedsFor(s, 1, [512, 512]) },
  { label: "text_encoder", graph: "text_encoder", feeds: async (s) => textFeeds(s) },
];

export async function compareInt8(rounds = 3, folders: Record<string, string> = INT8_FOLDERS): Promise<Int8Row[]> {
  if (folders === INT8_FOLDERS) {
    ensureInt8Model();
    await ensureDynamicModel();
  }
  const names = Object.keys(folders);
  const options = { intraOpThreads: THREADS, interOpThreads: 1 };
  const rows: Int8Row[] = [];
  const f32: Record<string, Session> = { unet: await createSession(path.join(folders[names[0]], "unet", "model.onnx"), options) };
  try {
    for (const c of CASES) {
      const sessions = await Promise.all(names.map((n) => createSession(path.join(folders[n], c.graph, "model.onnx"), options)));
      try {
        const feeds = await c.feeds(sessions[0], f32);
        const ms: number[][] = names.map(() => []);
        const outs: Array<Record<string, Float32Array>> = names.map(() => ({}));
        for (let r = 0; r < rounds; r++) {
          for (const [k, s] of sessions.entries()) {
            const t = performance.now();
            const o = await s.run(feeds as never);
            ms[k].push(performance.now() - t);
            if (r === 0) for (const [name, v] of Object.entries(o)) outs[k][name] = v.data;
          }
        }
        const row: Int8Row = { graph: c.label, folders: {} };
        for (const [k, n] of names.entries()) {
          let diff = 0;
          let peak = 0;
          for (const name of Object.keys(outs[0])) {
            for (let i = 0; i < outs[0][name].length; i++) {
              diff = Math.max(diff, Math.abs(outs[0][name][i] - outs[k][name][i]));
              peak = Math.max(peak, Math.abs(outs[0][name][i]));
            }
          }
          row.folders[n] = { ms: stat(ms[k]), timeRatio: stat(ms[k]).median / stat(ms[0]).median, relError: diff / peak };
        }
        rows.push(row);
      } finally {
        for (const s of sessions) await s.dispose();
      }
    }
  } finally {
    await f32.unet.dispose();
  }
  return rows;
}

export function int8Table(rows: Int8Row[]): string {
  if (rows.length === 0) return "";
  const names = Object.keys(rows[0].folders) as FolderName[];
  const f = (s: ReturnType<typeof stat>) => `${(s.median / 1000).toFixed(2)} (${(s.min / 1000).toFixed(2)}-${(s.max / 1000).toFixed(2)})`;
  const head = ["graph", ...names.map((n, k) => (k === 0 ? `${n} s, median (min-max)` : `${n} s | ${n} / ${names[0]} | ${n} error`))];
  const out = [`| ${head.join(" | ")} |`, `|${" --- |".repeat(1 + 1 + (names.length - 1) * 3)}`];
  for (const r of rows) {
    const cells = names.map((n, k) => {
      const x = r.folders[n];
      return k === 0 ? f(x.ms) : `${f(x.ms)} | ${x.timeRatio.toFixed(2)} | ${x.relError.toExponential(1)}`;
    });
    out.push(`| ${r.graph} | ${cells.join(" | ")} |`);
  }
  return out.join("\n");
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const rows = await compareInt8(process.argv[2] ? Number(process.argv[2]) : undefined);
  process.stdout.write(JSON.stringify(rows) + "\n" + int8Table(rows) + "\n");
}
