/**
 * The only module that imports onnxruntime-node. Everything else sees the small `Session`
 * interface: typed input metadata, a checked `run`, and `dispose`.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";

export type DType = "float32" | "float16" | "int32" | "int64" | "bool" | string;

export interface InputInfo {
  name: string;
  type: DType;
  /** Symbolic dims are strings, unknown are -1/null, as the session reports them. */
  shape: Array<number | string | null>;
}

export interface HostTensor {
  type: "float32" | "int32" | "int64";
  data: Float32Array | Int32Array | BigInt64Array;
  dims: number[];
}

export interface RunOutput {
  data: Float32Array;
  dims: number[];
}

export interface SessionOptions {
  /** Execution providers in order of preference, e.g. ["cuda", "cpu"]; CPU is always the fallback. */
  providers?: string[];
  intraOpThreads?: number;
  interOpThreads?: number;
  graphOptimizationLevel?: "disabled" | "basic" | "extended" | "all";
  enableCpuMemArena?: boolean;
  enableProfiling?: boolean;
  /**
   * ORT's worker threads spin after each run by default; on a small machine they then starve
   * the JavaScript between runs (image I/O, scheduler): off unless this is true. Measured on
   * 2 cores: a 20-step edit 213 -> 201 ms (64 px input), 210 -> 159 ms (600x400 photo).
   */
  allowSpinning?: boolean;
  /**
   * A folder for ONNX Runtime's optimised graphs (REWARD_EDIT_ORT_CACHE): the first session of a
   * model writes its optimised graph there, later ones load it with optimisation off. Measured on
   * the full-size UNet: 9.7 s to create with optimisation, 0.85 s from the saved graph (14.1 s
   * the time it is written). The graph holds CPU-specific layouts, so the key includes the CPU.
   */
  optimizedCacheDir?: string;
  log?: (msg: string) => void;
}

export interface RunOptions {
  /**
   * A check of the graph (inspectModelFolder's width probe), not work: a failure is expected and
   * reported by the caller, so ONNX Runtime logs nothing to stderr, and runMs does not count it.
   */
  probe?: boolean;
}

export interface Session {
  readonly path: string;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputs: readonly InputInfo[];
  /** Output names, element types and (symbolic or fixed) shapes, as the graph declares them. */
  readonly outputs: readonly InputInfo[];
  /** Provider that actually serves this session (after any fallback). */
  readonly provider: string;
  /** Milliseconds spent inside ONNX Runtime's run() since creation. */
  readonly runMs: number;
  /**
   * Runs the model. Outputs are not preallocated: onnxruntime-node (1.30) copies every output
   * into a fresh ArrayBuffer even when given one to write into, and `npm run bench` measured no
   * difference (0.93-1.05 per UNet call across three runs).
   */
  run(feeds: Record<string, HostTensor>, options?: RunOptions): Promise<Record<string, RunOutput>>;
  /** Ends profiling; ORT writes the trace to <model>-profile_<timestamp>.json. */
  endProfiling(): void;
  dispose(): Promise<void>;
}

class OrtSession implements Session {
  runMs = 0;
  readonly inputs: InputInfo[];
  readonly outputs: InputInfo[];

  constructor(
    readonly path: string,
    private readonly inner: ort.InferenceSession,
    readonly provider: string,
  ) {
    const info = (m: ort.InferenceSession.ValueMetadata): InputInfo =>
      m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: "non-tensor", shape: [] };
    this.inputs = inner.inputMetadata.map(info);
    this.outputs = inner.outputMetadata.map(info);
  }

  get inputNames(): readonly string[] {
    return this.inner.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.inner.outputNames;
  }

  async run(feeds: Record<string, HostTensor>, options: RunOptions = {}): Promise<Record<string, RunOutput>> {
    // one checkpoint before each call: a missing input names itself instead of a native error
    for (const name of this.inputNames) {
      if (!(name in feeds)) throw new Error(`${this.path}: missing input "${name}"`);
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) ortFeeds[name] = wrap(feeds[name]);
    const start = performance.now();
    let out: ort.InferenceSession.ReturnType;
    try {
      out = options.probe ? await this.inner.run(ortFeeds, { logSeverityLevel: 4 }) : await this.inner.run(ortFeeds);
    } catch (err) {
      const shapes = Object.entries(feeds).map(([k, v]) => `${k}: ${v.type}[${v.dims.join(",")}]`).join("; ");
      // cause: ONNX Runtime's own words, for callers that read its dimension errors
      throw new Error(`${this.path}: run failed (${(err as Error).message}); inputs ${shapes}`, { cause: err });
    } finally {
      if (!options.probe) this.runMs += performance.now() - start;
    }
    const result: Record<string, RunOutput> = {};
    for (const [name, t] of Object.entries(out)) {
      if (t.type !== "float32") throw new Error(`${this.path}: output "${name}" is ${t.type}, expected float32`);
      result[name] = { data: t.data as Float32Array, dims: [...t.dims] };
    }
    return result;
  }

  endProfiling(): void {
    this.inner.endProfiling();
  }

  dispose(): Promise<void> {
    return this.inner.release();
  }
}

/**
 * ORT's Tensor for a host buffer, made once per buffer: a denoising loop feeds the same buffers
 * every step (refilled in place), so their wrappers are reused rather than rebuilt each call.
 */
const wrappers = new WeakMap<ArrayBufferView, { dims: string; tensor: ort.Tensor }>();

function wrap(t: HostTensor): ort.Tensor {
  const key = t.dims.join(",");
  const hit = wrappers.get(t.data);
  if (hit && hit.dims === key && hit.tensor.type === t.type) return hit.tensor;
  const tensor = new ort.Tensor(t.type, t.data, t.dims);
  wrappers.set(t.data, { dims: key, tensor });
  return tensor;
}

function ortOptions(o: SessionOptions, providers: string[], profilePrefix?: string): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: providers,
    graphOptimizationLevel: o.graphOptimizationLevel ?? "all",
    enableCpuMemArena: o.enableCpuMemArena ?? true,
    enableProfiling: o.enableProfiling ?? false,
  };
  // onnxruntime-node rejects keys that are present but undefined
  if (o.intraOpThreads !== undefined) opts.intraOpNumThreads = o.intraOpThreads;
  if (o.interOpThreads !== undefined) opts.interOpNumThreads = o.interOpThreads;
  if (profilePrefix !== undefined) opts.profileFilePrefix = profilePrefix;
  if (!(o.allowSpinning ?? false)) {
    opts.extra = { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } };
  }
  return opts;
}

/**
 * Opens a session with the preferred providers; a provider that fails to load is logged and
 * the session is opened on CPU instead, so a misconfigured GPU never takes the process down.
 */
export async function createSession(file: string, options: SessionOptions = {}): Promise<Session> {
  const log = options.log ?? (() => {});
  // ORT silently drops a provider its build lacks (dml, coreml on Linux) and runs on CPU: drop
  // those here, saying so, so `provider` never names one that is not serving
  const built = new Set(ort.listSupportedBackends().map((b) => b.name));
  const requested = (options.providers ?? ["cpu"]).map((p) => p.toLowerCase());
  const missing = requested.filter((p) => p !== "cpu" && !built.has(p));
  if (missing.length) log(`execution providers [${missing.join(", ")}] are not in this onnxruntime-node build (it has ${[...built].join(", ")}); ignored`);
  const wanted = requested.filter((p) => p === "cpu" || built.has(p));
  const profile = options.enableProfiling ? file.replace(/\.onnx$/, "") + "-profile" : undefined;
  if (wanted.some((p) => p !== "cpu")) {
    try {
      const s = await ort.InferenceSession.create(file, ortOptions(options, wanted, profile));
      return new OrtSession(file, s, wanted[0]);
    } catch (err) {
      log(`execution providers [${wanted.join(", ")}] unavailable for ${file}: ${(err as Error).message.split("\n")[0]}; using cpu`);
    }
  }
  if (options.optimizedCacheDir && (options.graphOptimizationLevel ?? "all") !== "disabled" && !options.enableProfiling) {
    return new OrtSession(file, await createCached(file, options, options.optimizedCacheDir, log), "cpu");
  }
  const s = await ort.InferenceSession.create(file, ortOptions(options, ["cpu"], profile));
  return new OrtSession(file, s, "cpu");
}

/**
 * Writes the graph ONNX Runtime actually runs for `file` (after its optimiser's fusions) to
 * `outFile`: how one checks which kernels a quantised graph gets.
 */
export async function writeOptimizedGraph(file: string, outFile: string, options: SessionOptions = {}): Promise<void> {
  const opts = ortOptions(options, ["cpu"]);
  const extra = (opts.extra ?? {}) as { session?: Record<string, unknown> };
  const s = await ort.InferenceSession.create(file, {
    ...opts,
    optimizedModelFilePath: outFile,
    logSeverityLevel: 3,
    extra: { ...extra, session: { ...(extra.session ?? {}), optimized_model_external_initializers_file_name: `${path.basename(outFile)}_data`, optimized_model_external_initializers_min_size_in_bytes: "1024" } },
  });
  await s.release();
}

/** What decides an optimised graph: the model's file, the optimisation level, ORT and the CPU. */
function cacheKey(file: string, options: SessionOptions): string {
  const st = statSync(file);
  const data = `${file}_data`;
  const dataSt = existsSync(data) ? statSync(data) : null;
  return createHash("sha256")
    .update(JSON.stringify([path.resolve(file), st.size, st.mtimeMs, dataSt?.size, dataSt?.mtimeMs, options.graphOptimizationLevel ?? "all", ortVersion, os.cpus()[0]?.model, os.arch()]))
    .digest("hex")
    .slice(0, 24);
}

async function createCached(file: string, options: SessionOptions, dir: string, log: (msg: string) => void): Promise<ort.InferenceSession> {
  const entry = path.join(dir, cacheKey(file, options));
  const cached = path.join(entry, "model.onnx");
  const opts = ortOptions(options, ["cpu"]);
  if (existsSync(cached)) {
    try {
      return await ort.InferenceSession.create(cached, { ...opts, graphOptimizationLevel: "disabled" });
    } catch (err) {
      log(`optimised graph ${cached} unusable (${(err as Error).message.split("\n")[0]}); optimising ${file} again`);
      rmSync(entry, { recursive: true, force: true });
    }
  }
  // written beside the entry and renamed into place, so a reader never sees half a graph
  const tmp = `${entry}.${process.pid}.${Date.now()}.tmp`;
  try {
    mkdirSync(tmp, { recursive: true });
    const extra = (opts.extra ?? {}) as { session?: Record<string, unknown> };
    const s = await ort.InferenceSession.create(file, {
      ...opts,
      optimizedModelFilePath: path.join(tmp, "model.onnx"),
      // ORT warns that such a graph suits only this machine: the key says so already
      logSeverityLevel: 3,
      // past protobuf's 2 GB limit the weights must go to a file beside the graph
      extra: { ...extra, session: { ...(extra.session ?? {}), optimized_model_external_initializers_file_name: "model.onnx_data", optimized_model_external_initializers_min_size_in_bytes: "1024" } },
    });
    try {
      renameSync(tmp, entry);
    } catch {
      // another process wrote it first: keep theirs
      rmSync(tmp, { recursive: true, force: true });
    }
    return s;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    log(`cannot write an optimised graph of ${file} to ${dir}: ${(err as Error).message.split("\n")[0]}`);
    return ort.InferenceSession.create(file, opts);
  }
}

export const ortVersion: string = ort.env.versions?.node ?? "unknown";
