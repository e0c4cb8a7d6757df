/**
 * `models quantize --compute int8` (issue 42): a float32 folder -> a folder whose UNets and VAE
 * decoder compute in int8 on ONNX Runtime's QLinearConv / MatMulIntegerToFloat kernels. The ranges
 * come from the folder's own edits (calibrate.ts); models/convert/qdq.py writes the graphs.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadModel } from "../../editor/index.js";
import { ROOT } from "../paths.js";
import { type CalibrationItem, type CalibrationRecord, type CalibrationSchedule, type RangeMode, type Ranges, measureRanges, recordCalibration, runQdqTool } from "./calibrate.js";
import type { Feeds, GraphName } from "./record.js";
import { type LayerSensitivity, layerSensitivity, mostSensitive } from "./sensitivity.js";

export const COMPUTE_GRAPHS: readonly GraphName[] = ["unet", "unet_shallow", "vae_decoder"];
export const MATMUL_MODES = ["static", "dynamic", "float"] as const;
export type MatmulMode = (typeof MATMUL_MODES)[number];

/** Instructions for calibration photos that come without one: the kinds of edit users ask for. */
const PHOTO_INSTRUCTIONS = [
  "make it red",
  "put it on white marble",
  "remove the object",
  "turn it into a watercolour painting",
  "make the background dark blue",
  "add a hat",
];

/**
 * The default calibration set: the bundled sample photos, each with an instruction from the list
 * above, and synthetic scenes with their own instructions (models/heldout-v2/scenes, not the
 * held-out suite the quality figures are measured on).
 */
export function defaultCalibrationItems(scenes = 4): CalibrationItem[] {
  const examples = path.join(ROOT, "models", "reward-edit-synthetic", "examples");
  const photos = readdirSync(examples).filter((f) => f.endsWith(".png")).sort();
  const items = photos.map((f, k) => ({ image: readFileSync(path.join(examples, f)), instruction: PHOTO_INSTRUCTIONS[k % PHOTO_INSTRUCTIONS.length] }));
  const dir = path.join(ROOT, "models", "heldout-v2", "scenes");
  const records = readFileSync(path.join(dir, "scenes.jsonl"), "utf8").split("\n").filter(Boolean).slice(0, scenes);
  for (const line of records) {
    const r = JSON.parse(line) as { id: string; instruction: string };
    items.push({ image: readFileSync(path.join(dir, `${r.id}-source.png`)), instruction: r.instruction });
  }
  return items;
}

export interface ComputeQuantizeOptions {
  src: string;
  out: string;
  graphs?: readonly GraphName[];
  items?: CalibrationItem[];
  schedules?: readonly CalibrationSchedule[];
  matmul?: MatmulMode;
  /** Node names kept in float32 besides the sweep's. */
  keep?: string[];
  /**
   * The share of each graph's quantisable layers kept in float32, those that add the most error
   * in the sensitivity sweep (sensitivity.ts); 0 skips the sweep.
   */
  keepFraction?: number;
  /** Recorded calls per graph the sweep replays. */
  sweepCalls?: number;
  /** Keep every n-th recorded call per graph. */
  every?: number;
  /** How each activation's range is read from the calls (calibrate.ts). */
  rangeMode?: RangeMode;
  threads?: number;
  /** Where to keep the measured ranges (default: OUT/quantization-ranges.json). */
  rangesFile?: string;
  log?: (line: string) => void;
}

/** Measured on the bundled editor's held-out scenes (docs/performance.md): the default share kept. */
export const DEFAULT_KEEP_FRACTION = 0.1;

export interface ComputeQuantizeResult {
  out: string;
  ranges: Record<string, Ranges>;
  sensitivity: Record<string, { layers: LayerSensitivity[]; outputError: number }>;
  record: CalibrationRecord;
  graphs: Record<string, { int8_nodes: number; conv: number; matmul: number; kept_float: string[]; weight_only?: number }>;
  seconds: { calibration: number; ranges: number; sweep: number; write: number };
}

/** Records the calibration edits and measures each graph's activation ranges. */
export async function calibrateFolder(src: string, graphs: readonly GraphName[], o: Pick<ComputeQuantizeOptions, "items" | "schedules" | "every" | "threads" | "log" | "sweepCalls" | "rangeMode"> = {}) {
  const options = { intraOpThreads: o.threads ?? 2, interOpThreads: 1 };
  const t0 = performance.now();
  const model = await loadModel(src, options);
  // disposed before the replays: a full-size float32 model and the exposed graph do not both fit small machines
  const { feeds, record } = await recordCalibration(model, graphs, { items: o.items ?? defaultCalibrationItems(), schedules: o.schedules, every: o.every, log: o.log }).finally(() => model.dispose());
  const t1 = performance.now();
  const ranges: Record<string, Ranges> = {};
  const sample = new Map<GraphName, Feeds[]>();
  for (const g of graphs) {
    const f = feeds.get(g);
    if (!f || f.length === 0) continue;
    o.log?.(`calibration: ${g}, ${f.length} calls`);
    ranges[g] = await measureRanges(path.join(src, g, "model.onnx"), f, options, o.rangeMode);
    // spread over the edits and their steps
    const n = Math.min(f.length, o.sweepCalls ?? 8);
    sample.set(g, Array.from({ length: n }, (_, k) => f[Math.floor((k * f.length) / n)]));
    feeds.delete(g);
  }
  return { ranges, record, sample, seconds: { calibration: (t1 - t0) / 1000, ranges: (performance.now() - t1) / 1000 } };
}

/** Per graph, the sensitivity sweep: every layer quantised, against float32, on the sampled feeds. */
export async function sweepFolder(src: string, ranges: Record<string, Ranges>, sample: Map<GraphName, Feeds[]>, matmul: MatmulMode, o: { threads?: number; log?: (line: string) => void } = {}) {
  const out: Record<string, { layers: LayerSensitivity[]; outputError: number }> = {};
  for (const [g, feeds] of sample) {
    const work = mkdtempSync(path.join(os.tmpdir(), "reward-edit-sweep-"));
    try {
      writeFileSync(path.join(work, "ranges.json"), JSON.stringify(ranges[g] ?? {}));
      await runQdqTool(["graph", path.join(src, g, "model.onnx"), path.join(work, "model.onnx"), "--ranges", path.join(work, "ranges.json"), "--matmul", matmul]);
      o.log?.(`sensitivity sweep: ${g}, ${feeds.length} calls`);
      out[g] = await layerSensitivity(path.join(src, g, "model.onnx"), path.join(work, "model.onnx"), feeds, { intraOpThreads: o.threads ?? 2, interOpThreads: 1 });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return out;
}

/** Writes OUT from SRC with the named graphs in int8 arithmetic. */
export async function writeComputeFolder(src: string, out: string, ranges: Record<string, Ranges>, o: { graphs: readonly GraphName[]; matmul: MatmulMode; keep: string[]; record?: CalibrationRecord; rangesFile?: string }) {
  const work = mkdtempSync(path.join(os.tmpdir(), "reward-edit-qdq-"));
  try {
    const rangesFile = path.join(work, "ranges.json");
    writeFileSync(rangesFile, JSON.stringify(ranges));
    const keepFile = path.join(work, "keep.txt");
    writeFileSync(keepFile, o.keep.join("\n"));
    const args = ["folder", src, out, "--ranges", rangesFile, "--graphs", o.graphs.join(","), "--matmul", o.matmul, "--keep", keepFile];
    if (o.record) args.push("--calibration", JSON.stringify(o.record));
    const stdout = await runQdqTool(args);
    writeFileSync(o.rangesFile ?? path.join(out, "quantization-ranges.json"), JSON.stringify(ranges, null, 1));
    return JSON.parse(stdout.trim().split("\n").pop()!) as { graphs: ComputeQuantizeResult["graphs"]; seconds: number };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function quantizeCompute(o: ComputeQuantizeOptions): Promise<ComputeQuantizeResult> {
  const graphs = (o.graphs ?? COMPUTE_GRAPHS).filter((g) => existsSync(path.join(o.src, g, "model.onnx")));
  const matmul = o.matmul ?? "static";
  const { ranges, record, sample, seconds } = await calibrateFolder(o.src, graphs, o);
  const t = performance.now();
  const fraction = o.keepFraction ?? DEFAULT_KEEP_FRACTION;
  const sensitivity = fraction > 0 ? await sweepFolder(o.src, ranges, sample, matmul, o) : {};
  const keep = [...(o.keep ?? []), ...Object.values(sensitivity).flatMap((s) => mostSensitive(s.layers, fraction))];
  const t2 = performance.now();
  const written = await writeComputeFolder(o.src, o.out, ranges, { graphs, matmul, keep, record: { ...record, keepFraction: fraction }, rangesFile: o.rangesFile });
  writeFileSync(path.join(o.out, "quantization-sensitivity.json"), JSON.stringify(sensitivity, null, 1));
  return { out: o.out, ranges, sensitivity, record, graphs: written.graphs, seconds: { ...seconds, sweep: (t2 - t) / 1000, write: (performance.now() - t2) / 1000 } };
}
