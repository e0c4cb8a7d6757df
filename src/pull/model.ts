/**
 * `models pull`: a diffusers-format editor from the Hub into the shared cache (only the files the
 * converter reads), converted once per commit into a model folder that records where it came from.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { inspectModelFolder } from "../../editor/index.js";
import { type HubEnv, type PullProgress, type Snapshot, checkName, containedPath, hubEnv, snapshot } from "../hub/index.js";
import { withLock } from "../hub/lock.js";
import { projectCacheDir } from "../paths.js";
import type { CalibrationItem } from "../quantize/calibrate.js";
import { type ComputeKind, checkCompute, convertComputeInt8 } from "./compute.js";
import type { WeightDtype } from "./dtype.js";
import { PullError } from "./errors.js";
import { type ConverterOutput, runConverter } from "./converter.js";
import { configSelector, editorSelector } from "./select.js";

export { WEIGHT_DTYPES, type WeightDtype, parseWeightDtype } from "./dtype.js";

export interface PullModelOptions {
  repo: string;
  revision?: string;
  subfolder?: string;
  /** Weight files of this variant (fp16) before the float32 ones. */
  variant?: string;
  /** The converted graphs' weights. */
  dtype?: WeightDtype;
  /** Their arithmetic: int8 (with dtype int8) calibrates on edits after converting (src/pull/compute.ts). */
  compute?: ComputeKind;
  /** With compute int8: the calibration edits (default: the bundled sample photos and scenes). */
  calibration?: CalibrationItem[];
  /** With compute int8: ONNX Runtime threads for the calibration edits. */
  threads?: number;
  out?: string;
  env?: HubEnv;
  progress?: PullProgress;
  /** Where the converter's output goes. */
  converterOutput?: ConverterOutput;
  fetch?: typeof fetch;
}

/** What reward-edit.json records of the repository a folder was converted from. */
export interface HubSource {
  repo: string;
  repo_type: "model";
  subfolder: string | null;
  revision: string;
  commit: string;
  variant: string | null;
  endpoint: string;
  files: string[];
}

export interface PulledModel {
  dir: string;
  commit: string;
  /** False when the folder of this commit was already converted. */
  converted: boolean;
  snapshot: Snapshot;
}

export { PullError };

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "--");

export function defaultModelOut(o: { repo: string; subfolder?: string; commit: string; variant?: string; dtype: WeightDtype; compute?: ComputeKind }, env = process.env): string {
  const name = ["models", ...o.repo.split("/"), ...(o.subfolder ? [slug(o.subfolder)] : [])].join("--");
  // int8 arithmetic beside int8 weights of the same commit, never in their folder
  const compute = o.compute === "int8" ? "-compute" : "";
  return path.join(projectCacheDir(env), "models", name, `${o.commit.slice(0, 12)}${o.variant ? `-${o.variant}` : ""}-${o.dtype}${compute}`);
}

function readSource(dir: string): (HubSource & { dtype?: string; compute?: string }) | undefined {
  try {
    const m = JSON.parse(readFileSync(path.join(dir, "reward-edit.json"), "utf8")) as { source?: { hub?: HubSource; dtype?: string; compute?: string } };
    return m.source?.hub ? { ...m.source.hub, dtype: m.source.dtype, compute: m.source.compute } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Shard lists of sharded weights, read from an index file already in the snapshot. The names are
 * the repository's data: each must stay inside the index's folder (src/hub/safe-path.ts).
 */
function shardsFrom(snap: Snapshot | undefined, repo: string) {
  return (index: string) => {
    if (!snap) return undefined;
    let map: unknown;
    try {
      map = (JSON.parse(readFileSync(path.join(snap.dir, index), "utf8")) as { weight_map?: unknown }).weight_map;
    } catch (err) {
      throw new PullError(`${repo}: ${index} is not readable JSON (${(err as Error).message.split("\n")[0]})`);
    }
    if (!map || typeof map !== "object") throw new PullError(`${repo}: ${index} has no weight_map naming its shards`);
    const names = [...new Set(Object.values(map as Record<string, unknown>))];
    for (const n of names) checkName(n, { owner: repo, what: `shard named by ${index}` });
    return (names as string[]).sort();
  };
}

/** The selected files, by their paths inside the subfolder, as links a converter can read. */
function stage(snap: Snapshot, subfolder: string | undefined, dir: string, repo: string): void {
  rmSync(dir, { recursive: true, force: true });
  for (const f of snap.files) {
    const rel = subfolder ? path.posix.relative(subfolder, f) : f;
    const to = containedPath(dir, rel, { owner: repo, what: "selected file" });
    try {
      mkdirSync(path.dirname(to), { recursive: true });
      symlinkSync(realpathSync(path.join(snap.dir, f)), to);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST" || code === "ENOTDIR") throw new PullError(`${repo}: ${f} clashes with another selected file of the same name or folder; refusing to stage it`);
      throw err;
    }
  }
}

export async function pullSnapshot(o: PullModelOptions): Promise<Snapshot> {
  const env = o.env ?? hubEnv();
  const base = { repo: { type: "model" as const, name: o.repo }, revision: o.revision, under: o.subfolder, env, progress: o.progress, fetch: o.fetch };
  let snap = await snapshot({ ...base, select: editorSelector({ subfolder: o.subfolder, variant: o.variant }) });
  // sharded weights: the index names the shards, so a second pass fetches them once it is here
  if (snap.files.some((f) => f.endsWith(".index.json") || /\.index\.[^.]+\.json$/.test(f))) {
    const first = snap;
    snap = await snapshot({ ...base, revision: snap.commit, select: editorSelector({ subfolder: o.subfolder, variant: o.variant, shardsOf: shardsFrom(snap, o.repo) }) });
    snap = { ...snap, revision: first.revision, downloaded: { files: first.downloaded.files + snap.downloaded.files, bytes: first.downloaded.bytes + snap.downloaded.bytes } };
  }
  return snap;
}

export async function pullModel(o: PullModelOptions): Promise<PulledModel> {
  const env = o.env ?? hubEnv();
  const dtype = o.dtype ?? "float32";
  const compute = o.compute ?? "float32";
  checkCompute(dtype, compute);
  const snap = await pullSnapshot({ ...o, env });
  const out = path.resolve(o.out ?? defaultModelOut({ repo: o.repo, subfolder: o.subfolder, commit: snap.commit, variant: o.variant, dtype, compute }));
  const current = () => {
    const had = readSource(out);
    // a folder without source.compute predates it: float32 arithmetic
    return had && had.repo === o.repo && had.commit === snap.commit && (had.subfolder ?? undefined) === o.subfolder && (had.variant ?? undefined) === o.variant && had.dtype === dtype && (had.compute ?? "float32") === compute;
  };
  if (current()) return { dir: out, commit: snap.commit, converted: false, snapshot: snap };
  mkdirSync(path.dirname(out), { recursive: true });
  // replicas starting together on one volume convert once: the others wait and find it done
  return withLock(`${out}.lock`, async () => {
    if (current()) return { dir: out, commit: snap.commit, converted: false, snapshot: snap };
    await convertInto(out, snap, { ...o, dtype, compute, endpoint: env.endpoint });
    return { dir: out, commit: snap.commit, converted: true, snapshot: snap };
  }, { staleMs: 120_000 });
}

async function convertInto(out: string, snap: Snapshot, o: PullModelOptions & { dtype: WeightDtype; compute: ComputeKind; endpoint: string }): Promise<void> {
  const dtype = o.dtype;
  // convert beside the destination and move it in whole: an interrupted conversion never leaves a
  // folder that looks converted
  const work = `${out}.partial-${randomBytes(4).toString("hex")}`;
  const staged = `${work}-source`;
  try {
    stage(snap, o.subfolder, staged, o.repo);
    rmSync(work, { recursive: true, force: true });
    const name = [o.repo.split("/")[1], ...(o.subfolder ? [o.subfolder.split("/").pop()!] : [])].join("-");
    const code =
      o.compute === "int8"
        ? await convertComputeInt8(staged, work, { converterArgs: ["--name", name], converterOutput: o.converterOutput, items: o.calibration, threads: o.threads, log: calibrationLog(o.converterOutput) })
        : await runConverter([staged, work, "--dtype", dtype, "--name", name], o.converterOutput);
    if (code !== 0) throw new PullError(`converting ${o.repo}${o.subfolder ? `/${o.subfolder}` : ""}@${snap.commit.slice(0, 12)} failed (exit ${code}); the files are cached, so fixing the cause and pulling again downloads nothing`);
    const manifestFile = path.join(work, "reward-edit.json");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as { description?: string; source?: Record<string, unknown> };
    const source: HubSource = {
      repo: o.repo,
      repo_type: "model",
      subfolder: o.subfolder ?? null,
      revision: snap.revision,
      commit: snap.commit,
      variant: o.variant ?? null,
      endpoint: o.endpoint,
      files: snap.files,
    };
    manifest.source = { ...(manifest.source ?? {}), hub: source };
    manifest.description = `${(manifest.description ?? "").replace(/, converted from .*$/, "")}, converted from ${o.repo}${o.subfolder ? `/${o.subfolder}` : ""}@${snap.commit.slice(0, 12)} (${o.compute === "int8" ? "int8 arithmetic" : dtype}).`;
    writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
    const report = await inspectModelFolder(work);
    await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
    if (report.problems.length) throw new PullError(`the converted folder does not validate: ${report.problems.join("; ")}`);
    rmSync(out, { recursive: true, force: true });
    renameSync(work, out);
  } finally {
    rmSync(staged, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

/** The calibration's progress: on stderr, like the download's, unless the converter's output is ignored. */
function calibrationLog(output: ConverterOutput = "inherit"): ((line: string) => void) | undefined {
  return output === "ignore" ? undefined : (line) => process.stderr.write(`quantize: ${line}\n`);
}

/** The small files (configs, tokenizer, scheduler) of a diffusers repository, for a single-file conversion. */
export async function pullConfig(o: { repo: string; revision?: string; subfolder?: string; env?: HubEnv; fetch?: typeof fetch }): Promise<string> {
  const snap = await snapshot({ repo: { type: "model", name: o.repo }, revision: o.revision, under: o.subfolder, env: o.env ?? hubEnv(), select: configSelector(o.subfolder), fetch: o.fetch });
  return o.subfolder ? path.join(snap.dir, o.subfolder) : snap.dir;
}
