/**
 * A catalogue batch: every row edited on the server's inference worker pool (JobPool, the same
 * workers and protocol as `serve`), results written as they finish, a summary line per photo,
 * resumable, and a contact sheet at the end. A photo that cannot be read or edited becomes an
 * error line; the others go on.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import type { OutputFormat } from "../../editor/index.js";
import { type EditMask, MaskInputError, decodeMask, encodeMask } from "../../raster/mask.js";
import type { Scorer } from "../../reward/index.js";
import { workerLayout } from "../config/workers.js";
import { type ModelAbilities, type RequestedParams, resolveParams } from "../edit-params.js";
import type { Preset } from "../presets/index.js";
import type { ProvenanceSetup } from "../provenance/index.js";
import { JobPool } from "../server/jobs.js";
import type { EditJobRequest } from "../server/worker/protocol.js";
import { writeContactSheet } from "./contact-sheet.js";
import type { BatchRow } from "./manifest.js";
import { type SummaryRow, appendSummary, readSummary, scoreCells } from "./summary.js";

export interface BatchOptions {
  rows: BatchRow[];
  outDir: string;
  modelDir: string;
  /** The flags' settings; a row's own rewards, preset, mask and seed replace them. */
  requested: RequestedParams;
  abilities: ModelAbilities;
  presets: Record<string, Preset>;
  /** Seed of row i when the row names none: seed + i (so a resumed batch edits as the first run would have). */
  seed: number;
  detail: EditJobRequest["detail"];
  mask?: EditMask;
  maskMode?: EditJobRequest["maskMode"];
  format: OutputFormat;
  workers: number | "auto";
  providers: string[];
  ortThreads: number;
  /** Scores each result (judge or local scorer); none: no scores column. */
  scorer?: Scorer;
  /** How results are marked (setupProvenance); null or absent: not at all. */
  provenance?: ProvenanceSetup;
  onStart?: (todo: number, done: number, total: number) => void;
  onRow?: (row: SummaryRow) => void;
}

export interface BatchOutcome {
  total: number;
  /** Rows a previous run had already recorded. */
  skipped: number;
  edited: number;
  failed: number;
  summary: string;
  contactSheet: string;
  wallMs: number;
}

/** As the server's default: two large photos are not decoded side by side (REWARD_EDIT_PIXEL_BUDGET). */
const PIXEL_BUDGET = 60_000_000;

const EXT: Record<OutputFormat, string> = { png: ".png", jpeg: ".jpg", webp: ".webp" };

/** One output name per row, stable across runs: the photo's name, numbered where two rows share one. */
export function outputNames(rows: BatchRow[], format: OutputFormat): Map<number, string> {
  const stems = rows.map((r) => path.basename(r.input, path.extname(r.input)));
  const count = new Map<string, number>();
  for (const s of stems) count.set(s, (count.get(s) ?? 0) + 1);
  return new Map(rows.map((r, i) => [r.index, `${count.get(stems[i])! > 1 ? `${stems[i]}-${r.index + 1}` : stems[i]}${EXT[format]}`]));
}

export async function runBatch(o: BatchOptions): Promise<BatchOutcome> {
  const t0 = performance.now();
  await mkdir(o.outDir, { recursive: true });
  const summaryFile = path.join(o.outDir, "summary.jsonl");
  const previous = await readSummary(summaryFile);
  // a kill may have left a torn last line: start the next one on a line of its own
  const text = await readFile(summaryFile, "utf8").catch(() => "");
  if (text && !text.endsWith("\n")) await writeFile(summaryFile, "\n", { flag: "a" });
  const done = new Set(previous.map((r) => r.row));
  const todo = o.rows.filter((r) => !done.has(r.index));
  const names = outputNames(o.rows, o.format);
  o.onStart?.(todo.length, o.rows.length - todo.length, o.rows.length);
  const results: SummaryRow[] = [...previous];
  let failed = 0;
  const sharedMask = o.mask ? new Uint8Array(await encodeMask(o.mask)) : undefined;

  const record = async (row: SummaryRow) => {
    await appendSummary(summaryFile, row);
    results.push(row);
    if (row.error) failed++;
    o.onRow?.(row);
  };

  if (todo.length) {
    const layout = workerLayout(o.workers, o.ortThreads, o.modelDir);
    const pool = new JobPool({ modelDir: o.modelDir, workers: layout.workers, queueSize: Number.MAX_SAFE_INTEGER, jobTtlMs: 60_000, providers: o.providers, ortThreads: layout.ortThreads, pixelBudget: PIXEL_BUDGET, provenance: o.provenance });
    await pool.start();
    const model = pool.model!;
    try {
      // a window of two jobs per worker: each worker has the next photo ready when it finishes one
      const window = 2 * layout.workers;
      let next = 0;
      const runOne = async (row: BatchRow) => {
        const t = performance.now();
        const fail = (error: string) => record({ row: row.index, input: row.input, instruction: row.instruction, ms: performance.now() - t, error });
        let image: Buffer;
        let maskBytes = sharedMask;
        let params;
        let pixels = 0;
        try {
          image = await readFile(row.path);
          const meta = await sharp(image).metadata().catch((e: Error) => {
            throw new Error(`image cannot be decoded: ${e.message}`);
          });
          pixels = (meta.width ?? 0) * (meta.height ?? 0);
          if (row.mask) {
            const m = await decodeMask(await readFile(row.mask));
            maskBytes = m.full ? undefined : new Uint8Array(await encodeMask(m));
          }
          params = resolveParams(
            {
              ...o.requested,
              rewards: row.rewards ?? (row.preset ? undefined : o.requested.rewards),
              preset: row.preset ?? (row.rewards ? undefined : o.requested.preset),
              background: row.background ?? o.requested.background,
              backgroundColour: row.backgroundColour ?? o.requested.backgroundColour,
              autoMask: row.autoMask ?? o.requested.autoMask,
            },
            o.presets,
            o.abilities,
          );
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          return fail(err instanceof MaskInputError ? `mask: ${e.message}` : e.code ? `cannot read ${e.path ?? row.input}: ${e.code}` : e.message);
        }
        const seed = row.seed ?? (o.seed + row.index) % 2 ** 32;
        const job = pool.submit({
          image: new Uint8Array(image),
          instruction: row.instruction,
          rewards: params.rewards,
          steps: params.steps,
          textGuidance: params.textGuidance,
          imageGuidance: params.imageGuidance,
          seed,
          sampling: params.sampling,
          format: o.format,
          candidates: 1,
          detail: o.detail,
          pixels,
          preset: params.preset,
          ...(maskBytes ? { editMask: maskBytes, maskMode: o.maskMode } : {}),
        });
        const finished = await job.done;
        if (finished.state !== "succeeded") {
          const e = finished.error;
          return fail(e ? `${e.field ? `${e.field}: ` : ""}${e.message}` : `edit ${finished.state}`);
        }
        const out = finished.output!;
        const c = out.candidates[0];
        const name = names.get(row.index)!;
        const file = path.join(o.outDir, name);
        // whole or not at all: a kill mid-write leaves a .part, never a torn image under the real name
        await writeFile(`${file}.part`, c.image);
        await rename(`${file}.part`, file);
        const scores = o.scorer
          ? await o.scorer.score({ source: image, edited: Buffer.from(c.image), instruction: row.instruction, mask: maskBytes ? Buffer.from(maskBytes) : undefined }).catch(() => null)
          : null;
        const p = out.parameters;
        await record({
          row: row.index,
          input: row.input,
          output: name,
          instruction: row.instruction,
          settings: {
            rewards: p.rewards,
            preset: params.preset,
            steps: p.steps,
            text_guidance: p.textGuidance,
            image_guidance: p.imageGuidance,
            seed: p.seed,
            scheduler: p.scheduler,
            mask: row.mask ?? (o.mask ? "--mask-in" : null),
            ...(p.autoMask ? { auto_mask: p.autoMask } : {}),
            model: model.name,
          },
          scores: o.scorer ? scoreCells(scores) : undefined,
          kept_fraction: c.keptFraction,
          ms: performance.now() - t,
        });
      };
      const lanes = Array.from({ length: Math.min(window, todo.length) }, async () => {
        while (next < todo.length) await runOne(todo[next++]);
      });
      await Promise.all(lanes);
    } finally {
      await pool.close();
    }
  }
  const sources = new Map(o.rows.map((r) => [r.index, r.path]));
  const contactSheet = await writeContactSheet(o.outDir, results, sources, `reward-edit batch: ${path.basename(path.resolve(o.outDir))}`);
  return {
    total: o.rows.length,
    skipped: o.rows.length - todo.length,
    edited: todo.length - failed,
    failed,
    summary: summaryFile,
    contactSheet,
    wallMs: performance.now() - t0,
  };
}
