/**
 * How far a quantised folder is from its float32 source, on the user's own photos (issue 42 item 2):
 * the real checkpoints' int8 quality cannot be measured here, so the user measures it. Both folders
 * edit every photo with the same instruction, preset and seed; the results are compared as 8-bit
 * RGB (PSNR, largest pixel difference), and each graph is compared on the same inputs: the feeds the
 * reference editor gave it during the first photo's edit, replayed through both folders' sessions.
 *
 * The folders are loaded one after the other (a full-size float32 folder is 4.4 GB): the reference
 * edits every photo and answers the recorded feeds, is disposed, then the candidate does the same.
 */
import { statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { type EditorModel, type Manifest, type Session, type SessionOptions, edit, loadModel } from "../../editor/index.js";
import { decodeRaster } from "../../raster/raster.js";
import { resolveParams } from "../edit-params.js";
import { loadPresets } from "../presets/index.js";
import { type Feeds, GRAPH_FIELDS, type GraphName, recordFeeds } from "./record.js";

export const DEFAULT_INSTRUCTION = "make it look like a watercolour painting";
export const DEFAULT_PRESET = "fast";
export const DEFAULT_SEED = 1;
/** Calls kept per graph from the first photo's edit: enough to cover the guided and the cached UNet steps, small enough to hold. */
export const CALLS_PER_GRAPH = 2;
export const REPORT_JSON = "quantization-report.json";
export const REPORT_MD = "quantization-report.md";

export interface CompareOptions {
  reference: string;
  candidate: string;
  photos: string[];
  instruction?: string;
  preset?: string;
  seed?: number;
  /** Replaces the preset's step count. */
  steps?: number;
  threads?: number;
  /** Providers and the rest (the CLI passes the environment's); threads wins over its intraOpThreads. */
  session?: SessionOptions;
  log?: (s: string) => void;
}

export interface FolderIdentity {
  dir: string;
  name: string;
  /** The manifest's source.dtype; null where the folder does not record it (the bundled editor is float32). */
  dtype: string | null;
  /** The manifest's source.compute, where the converter recorded it. */
  compute: string | null;
  /** Wall time of each photo's edit, in order (informative: one run, whatever else the machine does). */
  editMs: number[];
  meanEditMs: number;
}

export interface PhotoComparison {
  photo: string;
  width: number;
  height: number;
  /** PSNR of the candidate's result against the reference's, dB on 8-bit RGB, peak 255; null when identical. */
  psnrDb: number | null;
  identical: boolean;
  /** Largest difference of one 8-bit channel value. */
  maxAbsDiff: number;
}

export interface ComponentComparison {
  graph: GraphName;
  /** Recorded calls replayed through both folders. */
  calls: number;
  outputs: string[];
  /** max |candidate - reference| / max |reference|, over every output element of every call. */
  maxAbsRel: number | null;
  /** RMS(candidate - reference) / RMS(reference). */
  rmsRel: number | null;
  /** Why the graph could not be compared (the candidate lacks it, or rejects the reference's feeds). */
  error?: string;
}

export interface QuantReport {
  reference: FolderIdentity;
  candidate: FolderIdentity;
  settings: { instruction: string; preset: string; seed: number; steps: number | null; threads: number | null; compared: string };
  photos: PhotoComparison[];
  /** Mean PSNR over the photos whose results differ; null when none does. */
  meanPsnrDb: number | null;
  /** The photo with the lowest PSNR; null when every result is identical. */
  lowest: { photo: string; psnrDb: number } | null;
  identicalPhotos: number;
  components: ComponentComparison[];
}

type RunOutput = Awaited<ReturnType<Session["run"]>>[string];

/** A photo or folder the report cannot use; the CLI prints the message as its one line. */
export class ReportInputError extends Error {}

interface FolderRun {
  identity: FolderIdentity;
  /** Per photo: 8-bit RGB, HWC. */
  pixels: Array<{ width: number; height: number; data: Uint8Array }>;
  /** Per graph: each recorded call's outputs, by output name. */
  outputs: Map<GraphName, { outputs?: Array<Record<string, RunOutput>>; error?: string }>;
}

function identity(dir: string, m: Manifest, editMs: number[]): FolderIdentity {
  const str = (v: unknown) => (typeof v === "string" ? v : null);
  return {
    dir,
    name: m.name,
    dtype: str(m.source?.dtype),
    compute: str(m.source?.compute),
    editMs,
    meanEditMs: editMs.reduce((a, b) => a + b, 0) / Math.max(1, editMs.length),
  };
}

async function rgb8(png: Buffer): Promise<{ width: number; height: number; data: Uint8Array }> {
  const r = await decodeRaster(png);
  const data = new Uint8Array(r.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(r.data[i] * 255);
  return { width: r.width, height: r.height, data };
}

/** Reads and decodes every photo up front, so a bad one is named before any model loads. */
async function readPhotos(photos: string[]): Promise<Buffer[]> {
  if (photos.length === 0) throw new ReportInputError("no photos to compare on: give at least one");
  const out: Buffer[] = [];
  for (const p of photos) {
    let bytes: Buffer;
    try {
      bytes = await readFile(p);
    } catch (err) {
      throw new ReportInputError(`cannot read photo ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      await decodeRaster(bytes);
    } catch {
      throw new ReportInputError(`photo ${p}: not an image this tool can decode`);
    }
    out.push(bytes);
  }
  return out;
}

async function replay(session: Session | undefined, feeds: Feeds[]): Promise<{ outputs?: Array<Record<string, RunOutput>>; error?: string }> {
  if (!session) return { error: "the folder has no such graph" };
  try {
    const outputs = [];
    for (const f of feeds) outputs.push(await session.run(f));
    return { outputs };
  } catch (err) {
    return { error: ((err as Error).message ?? String(err)).split("\n")[0] };
  }
}

/**
 * Edits every photo with one folder; with `feeds` absent, records the first photo's feeds first,
 * and in both cases replays the feeds through this folder's graphs before it is disposed.
 */
async function runFolder(
  role: "reference" | "candidate",
  dir: string,
  photos: Buffer[],
  o: Required<Pick<CompareOptions, "instruction" | "preset" | "seed">> & Pick<CompareOptions, "steps" | "log">,
  session: SessionOptions,
  feeds: Map<GraphName, Feeds[]> | null,
): Promise<{ run: FolderRun; feeds: Map<GraphName, Feeds[]> }> {
  const model: EditorModel = await loadModel(dir, session);
  try {
    // the same preset -> EditOptions path as `reward-edit edit`
    const params = resolveParams({ preset: o.preset, steps: o.steps }, loadPresets(), { deepCache: model.unetShallow !== undefined });
    const { preset: _, sampling, ...numbers } = params;
    const recorded = feeds ?? new Map<GraphName, Feeds[]>();
    const pixels: FolderRun["pixels"] = [];
    const editMs: number[] = [];
    for (let i = 0; i < photos.length; i++) {
      const recording = !feeds && i === 0 ? recordFeeds(model, Object.keys(GRAPH_FIELDS) as GraphName[], (_g, call) => call < CALLS_PER_GRAPH) : null;
      const t0 = performance.now();
      try {
        // no encode cache: each folder's own encoders run on every photo, and are recorded
        const r = await edit(model, { image: photos[i], instruction: o.instruction, ...numbers, ...sampling, seed: o.seed, format: "png", encodeCache: null });
        editMs.push(performance.now() - t0);
        pixels.push(await rgb8(r.image));
      } finally {
        recording?.stop();
      }
      if (recording) for (const [g, f] of recording.feeds) recorded.set(g, f);
      o.log?.(`${role}: photo ${i + 1}/${photos.length} edited in ${(editMs[i] / 1000).toFixed(1)} s`);
    }
    const outputs: FolderRun["outputs"] = new Map();
    const sessions = model as unknown as Record<string, Session | undefined>;
    for (const [g, f] of recorded) outputs.set(g, await replay(sessions[GRAPH_FIELDS[g]], f));
    return { run: { identity: identity(dir, model.manifest, editMs), pixels, outputs }, feeds: recorded };
  } finally {
    await model.dispose();
  }
}

function comparePhoto(photo: string, a: FolderRun["pixels"][number], b: FolderRun["pixels"][number]): PhotoComparison {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`${photo}: the results differ in size (${a.width}x${a.height} vs ${b.width}x${b.height})`);
  let se = 0;
  let max = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    se += d * d;
    if (d > max) max = d;
  }
  const mse = se / a.data.length;
  const psnr = mse === 0 ? null : 10 * Math.log10((255 * 255) / mse);
  return { photo, width: a.width, height: a.height, psnrDb: psnr, identical: mse === 0, maxAbsDiff: max };
}

function compareGraph(graph: GraphName, ref: FolderRun["outputs"], cand: FolderRun["outputs"]): ComponentComparison {
  const r = ref.get(graph)!;
  const c = cand.get(graph);
  const base = { graph, calls: r.outputs?.length ?? 0, outputs: r.outputs ? Object.keys(r.outputs[0] ?? {}) : [] };
  const error = r.error ? `reference: ${r.error}` : !c || c.error ? `candidate: ${c?.error ?? "not run"}` : undefined;
  if (error) return { ...base, maxAbsRel: null, rmsRel: null, error };
  let maxErr = 0;
  let maxRef = 0;
  let seErr = 0;
  let seRef = 0;
  let n = 0;
  for (let k = 0; k < r.outputs!.length; k++) {
    for (const name of base.outputs) {
      const x = r.outputs![k][name].data;
      const y = c!.outputs![k][name]?.data;
      if (!y || y.length !== x.length) return { ...base, maxAbsRel: null, rmsRel: null, error: `candidate: output ${name} differs in shape` };
      for (let i = 0; i < x.length; i++) {
        const d = Math.abs(y[i] - x[i]);
        if (d > maxErr) maxErr = d;
        const a = Math.abs(x[i]);
        if (a > maxRef) maxRef = a;
        seErr += d * d;
        seRef += x[i] * x[i];
      }
      n += x.length;
    }
  }
  // an all-zero reference: relative error 0 when the candidate agrees, else unbounded (null)
  const rel = (e: number, ref: number) => (e === 0 ? 0 : ref === 0 ? null : e / ref);
  return { ...base, maxAbsRel: rel(maxErr, maxRef), rmsRel: n ? rel(Math.sqrt(seErr / n), Math.sqrt(seRef / n)) : null };
}

export async function compareFolders(o: CompareOptions): Promise<QuantReport> {
  const settings = { instruction: o.instruction ?? DEFAULT_INSTRUCTION, preset: o.preset ?? DEFAULT_PRESET, seed: o.seed ?? DEFAULT_SEED, steps: o.steps, log: o.log };
  // both folders are checked before the reference's edits, which take minutes on a full-size folder
  for (const [role, dir] of [["reference", o.reference], ["candidate", o.candidate]]) {
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new ReportInputError(`${role} ${dir}: no such folder`);
  }
  const photos = await readPhotos(o.photos);
  const session: SessionOptions = { ...o.session, ...(o.threads !== undefined ? { intraOpThreads: o.threads } : {}) };
  const ref = await runFolder("reference", o.reference, photos, settings, session, null);
  const cand = await runFolder("candidate", o.candidate, photos, settings, session, ref.feeds);
  const rows = o.photos.map((p, i) => comparePhoto(p, ref.run.pixels[i], cand.run.pixels[i]));
  const differing = rows.filter((r) => r.psnrDb !== null) as Array<PhotoComparison & { psnrDb: number }>;
  const lowest = differing.reduce<(typeof differing)[number] | null>((lo, r) => (lo === null || r.psnrDb < lo.psnrDb ? r : lo), null);
  return {
    reference: ref.run.identity,
    candidate: cand.run.identity,
    settings: {
      instruction: settings.instruction,
      preset: settings.preset,
      seed: settings.seed,
      steps: o.steps ?? null,
      threads: o.threads ?? null,
      compared: "each edit's result at the photo's own size (detail keep), 8-bit RGB",
    },
    photos: rows,
    meanPsnrDb: differing.length ? differing.reduce((a, r) => a + r.psnrDb, 0) / differing.length : null,
    lowest: lowest && { photo: lowest.photo, psnrDb: lowest.psnrDb },
    identicalPhotos: rows.length - differing.length,
    components: [...ref.run.outputs.keys()].map((g) => compareGraph(g, ref.run.outputs, cand.run.outputs)),
  };
}

const db = (v: number | null) => (v === null ? "identical" : `${v.toFixed(2)} dB`);
const rel = (v: number | null) => (v === null ? "-" : v === 0 ? "0" : v.toExponential(2));

export function reportMarkdown(r: QuantReport): string {
  const who = (f: FolderIdentity) => `${f.dir} (${f.name}; weights ${f.dtype ?? "not recorded"}${f.compute ? `, compute ${f.compute}` : ""}; ${(f.meanEditMs / 1000).toFixed(1)} s per edit)`;
  const lines = [
    "# Quantisation report",
    "",
    `Reference: ${who(r.reference)}`,
    `Candidate: ${who(r.candidate)}`,
    `Edits: "${r.settings.instruction}", preset ${r.settings.preset}, seed ${r.settings.seed}${r.settings.steps !== null ? `, ${r.settings.steps} steps` : ""}; compared: ${r.settings.compared}.`,
    "",
    "| photo | PSNR | max diff (of 255) |",
    "|---|---|---|",
    ...r.photos.map((p) => `| ${p.photo} | ${db(p.psnrDb)} | ${p.maxAbsDiff} |`),
    "",
    `Mean PSNR: ${db(r.meanPsnrDb)}${r.identicalPhotos ? ` (${r.identicalPhotos} photo(s) identical, not in the mean)` : ""}. ` +
      `Lowest: ${r.lowest ? `${r.lowest.psnrDb.toFixed(2)} dB (${r.lowest.photo})` : "identical"}.`,
    "",
    "| component | calls | max abs err / max abs ref | RMS err / RMS ref |",
    "|---|---|---|---|",
    ...r.components.map((c) => `| ${c.graph} | ${c.calls} | ${c.error ? c.error : rel(c.maxAbsRel)} | ${c.error ? "-" : rel(c.rmsRel)} |`),
    "",
  ];
  return lines.join("\n");
}

export async function writeReport(r: QuantReport, outDir: string): Promise<{ json: string; md: string }> {
  const json = path.join(outDir, REPORT_JSON);
  const md = path.join(outDir, REPORT_MD);
  await mkdir(outDir, { recursive: true });
  await writeFile(json, `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(md, reportMarkdown(r));
  return { json, md };
}
