/**
 * Calibration for int8 arithmetic (issue 42): the activation ranges of a folder's graphs, measured
 * on the folder's own edits. The edits run with the default schedule (three guidance branches in
 * one batch, every step) and the `fast` one (two branches, DPM-Solver++, DeepCache's outer graph),
 * so every step's noise level and every branch, the null-text and null-image ones included, is in
 * the recorded feeds. The feeds are then replayed through a copy of each graph that exposes its
 * activations (models/convert/qdq.py augment), and each tensor's range is kept.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type EditorModel, type SessionOptions, createSession, edit } from "../../editor/index.js";
import { type RequestedParams, resolveParams } from "../edit-params.js";
import { PYTHON, ROOT } from "../paths.js";
import { loadPresets } from "../presets/index.js";
import { type Feeds, type GraphName, recordFeeds } from "./record.js";

export const QDQ_TOOL = path.join(ROOT, "models", "convert", "qdq.py");

/** The schedules an edit can take: the default (no preset) and the `fast` preset. */
export const CALIBRATION_SCHEDULES = ["default", "fast"] as const;
export type CalibrationSchedule = (typeof CALIBRATION_SCHEDULES)[number];

export interface CalibrationItem {
  image: Buffer;
  instruction: string;
}

export interface CalibrationPlan {
  items: CalibrationItem[];
  schedules?: readonly CalibrationSchedule[];
  seed?: number;
  /** Keep every n-th call of each graph (1: all). */
  every?: number;
  log?: (line: string) => void;
}

/** tensor -> [min, max] over every replayed call. */
export type Ranges = Record<string, [number, number]>;

export interface CalibrationRecord {
  edits: number;
  schedules: CalibrationSchedule[];
  calls: Partial<Record<GraphName, number>>;
  seed: number;
  /** The share of layers the sensitivity sweep kept in float32. */
  keepFraction?: number;
}

function scheduleParams(schedule: CalibrationSchedule, model: EditorModel): Omit<RequestedParams, "preset"> {
  if (schedule === "default") return {};
  const p = resolveParams({ preset: schedule }, loadPresets(), { deepCache: model.unetShallow !== undefined });
  return { rewards: p.rewards, steps: p.steps, textGuidance: p.textGuidance, imageGuidance: p.imageGuidance, ...p.sampling };
}

/** Edits every item with every schedule while recording what the named graphs are fed. */
export async function recordCalibration(model: EditorModel, graphs: readonly GraphName[], plan: CalibrationPlan): Promise<{ feeds: Map<GraphName, Feeds[]>; record: CalibrationRecord }> {
  const schedules = [...(plan.schedules ?? CALIBRATION_SCHEDULES)];
  const seed = plan.seed ?? 0;
  const every = Math.max(1, plan.every ?? 1);
  const rec = recordFeeds(model, graphs, (_g, call) => call % every === 0);
  let edits = 0;
  try {
    for (const [k, item] of plan.items.entries()) {
      for (const schedule of schedules) {
        const p = scheduleParams(schedule, model);
        await edit(model, { image: item.image, instruction: item.instruction, seed: seed + k, workingSize: true, ...p, autoMask: false });
        edits++;
        plan.log?.(`calibration: edit ${edits}/${plan.items.length * schedules.length} (${schedule})`);
      }
    }
  } finally {
    rec.stop();
  }
  const calls = Object.fromEntries([...rec.feeds].map(([g, f]) => [g, f.length]));
  return { feeds: rec.feeds, record: { edits, schedules, calls, seed } };
}

/**
 * Runs models/convert/qdq.py and resolves with its standard output. Asynchronous on purpose: on a
 * full-size graph it works for minutes, and a pull's lock must keep its heartbeat meanwhile.
 */
export function runQdqTool(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [QDQ_TOOL, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => reject(new Error(`cannot run ${PYTHON} (${e.message}); int8 arithmetic needs Python 3 with onnx (Debian: python3-onnx)`)));
    child.on("close", (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
      else reject(new Error(`qdq.py ${args[0]} failed: ${Buffer.concat(err).toString("utf8").trim().split("\n").pop()}`));
    });
  });
}

/**
 * Replays `feeds` through a copy of `graphFile` with its quantisable activations as outputs, and
 * returns each activation's [min, max]. Tensors are reduced as they come, one call at a time.
 */
/**
 * How a tensor's range is read from its calls: "minmax", the extremes over every call (nothing
 * clips, the rare outlier costs resolution), or "percentile", each call's 0.01 % and 99.99 %
 * points (read from an even sample of at most 262,144 values), widest over the calls (the
 * outliers clip, the rest keeps resolution).
 */
export const RANGE_MODES = ["minmax", "percentile"] as const;
export type RangeMode = (typeof RANGE_MODES)[number];

const SAMPLE = 1 << 18;
const TAIL = 1e-4;

function callRange(d: Float32Array, mode: RangeMode): [number, number] {
  if (mode === "percentile" && d.length > 1 / TAIL) {
    const step = Math.max(1, Math.floor(d.length / SAMPLE));
    const sample = new Float32Array(Math.ceil(d.length / step));
    for (let i = 0, k = 0; i < d.length; i += step) sample[k++] = d[i];
    sample.sort();
    return [sample[Math.floor(TAIL * (sample.length - 1))], sample[Math.ceil((1 - TAIL) * (sample.length - 1))]];
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

export async function measureRanges(graphFile: string, feeds: Feeds[], options: SessionOptions = {}, mode: RangeMode = "minmax"): Promise<Ranges> {
  const ranges: Ranges = {};
  await replayExposed(graphFile, feeds, undefined, options, (_call, name, d) => {
    const [lo, hi] = callRange(d, mode);
    const r = ranges[name];
    ranges[name] = r ? [Math.min(r[0], lo), Math.max(r[1], hi)] : [lo, hi];
  });
  return ranges;
}

/** A copy of a graph whose chosen tensors are graph outputs, opened as a session. */
export interface ExposedGraph {
  /** The tensors each run returns (those of the requested ones the graph produces). */
  readonly tensors: ReadonlySet<string>;
  run(feeds: Feeds): Promise<Map<string, Float32Array>>;
  close(): Promise<void>;
}

/** Opens `graphFile` with `tensors` (default: the activations calibration measures) as outputs. */
export async function openExposed(graphFile: string, tensors: string[] | undefined, options: SessionOptions = {}): Promise<ExposedGraph> {
  const work = mkdtempSync(path.join(os.tmpdir(), "reward-edit-calibration-"));
  try {
    const args = ["augment", graphFile, work];
    if (tensors) {
      writeFileSync(path.join(work, "tensors.txt"), tensors.join("\n"));
      args.push("--tensors", path.join(work, "tensors.txt"));
    }
    const exposed = new Set((JSON.parse(await runQdqTool(args)) as { tensors: string[] }).tensors);
    // optimisation on: the exposed tensors are graph outputs, so no fusion removes them
    const session = await createSession(path.join(work, "model.onnx"), { ...options, enableCpuMemArena: false });
    return {
      tensors: exposed,
      run: async (f) => {
        const out = await session.run(f);
        return new Map(Object.entries(out).map(([name, t]) => [name, t.data]));
      },
      close: async () => {
        await session.dispose();
        rmSync(work, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
}

/** Runs each of `feeds` through `graphFile` with `tensors` exposed, handing each to `visit`. */
export async function replayExposed(graphFile: string, feeds: Feeds[], tensors: string[] | undefined, options: SessionOptions, visit: (call: number, name: string, data: Float32Array) => void): Promise<void> {
  const g = await openExposed(graphFile, tensors, options);
  try {
    for (const [call, f] of feeds.entries()) {
      for (const [name, data] of await g.run(f)) if (g.tensors.has(name)) visit(call, name, data);
    }
  } finally {
    await g.close();
  }
}

/** The Conv and MatMul nodes of a graph that qdq.py can put on int8 kernels. */
export async function quantisableNodes(graphFile: string): Promise<Array<{ node: string; op: string; input: string; output: string; shape: number[] }>> {
  return (JSON.parse(await runQdqTool(["targets", graphFile])) as { targets: Array<{ node: string; op: string; input: string; output: string; shape: number[] }> }).targets;
}

export function readRanges(file: string): Record<string, Ranges> {
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, Ranges>;
}
