/**
 * What a catalogue batch edits: every photo of a folder with one instruction, or the rows of a
 * manifest (JSON Lines or CSV) naming image, instruction, rewards or preset, mask, seed and
 * background (with background_colour) per photo.
 */
import { readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { z } from "zod";
import { BACKGROUNDS, type Background } from "../../editor/pipeline/alpha.js";
import { MAX_INSTRUCTION_LENGTH, textTooLong } from "../limits.js";

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp", ".gif", ".tif", ".tiff", ".avif"];

export interface BatchRow {
  /** 0-based position in the input: the row's identity for resuming. */
  index: number;
  /** The photo's path as the input named it (relative to the manifest's folder). */
  input: string;
  /** Absolute path of the photo. */
  path: string;
  instruction: string;
  rewards?: [number, number, number];
  preset?: string;
  /** Absolute path of the row's mask (white = may change). */
  mask?: string;
  seed?: number;
  /** What a transparent photo's result keeps (alpha.ts); absent: the flags'. */
  background?: Background;
  backgroundColour?: string;
  /** The row's own auto mask switch (the flags' --auto-mask otherwise). */
  autoMask?: boolean;
}

export class ManifestError extends Error {}

const rewardsText = z
  .union([z.string(), z.array(z.number())])
  .transform((v, ctx) => {
    const nums = (Array.isArray(v) ? v : v.split(",").map((p) => (p.trim() === "" ? Number.NaN : Number(p)))) as number[];
    if (nums.length !== 3 || nums.some((n) => !Number.isFinite(n) || n < 0 || n > 5)) {
      ctx.addIssue({ code: "custom", message: "rewards must be three numbers in 0..5, e.g. 5,5,5" });
      return z.NEVER;
    }
    return nums as [number, number, number];
  });

/** Empty CSV cells are absent values. */
const blank = (v: unknown) => (v === "" || v === null ? undefined : v);

const rowSchema = z.strictObject({
  image: z.string().min(1, "image is required"),
  instruction: z.preprocess(blank, z.string().trim().min(1).max(MAX_INSTRUCTION_LENGTH, `at most ${MAX_INSTRUCTION_LENGTH} characters`).optional()),
  rewards: z.preprocess(blank, rewardsText.optional()),
  preset: z.preprocess(blank, z.string().min(1).optional()),
  mask: z.preprocess(blank, z.string().min(1).optional()),
  seed: z.preprocess(blank, z.coerce.number().int().min(0).max(2 ** 32 - 1).optional()),
  background: z.preprocess(blank, z.enum(BACKGROUNDS).optional()),
  background_colour: z.preprocess(blank, z.string().regex(/^#[0-9a-fA-F]{6}$/, "must be a colour #rrggbb").optional()),
  // JSON true/false, or a CSV cell true/false/1/0
  auto_mask: z.preprocess(blank, z.union([z.boolean(), z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1")], { message: "auto_mask must be true or false" }).optional()),
});

/**
 * The rows to edit. `instruction` is the default for rows without their own (and the only one for
 * a folder); a row with neither is a manifest error, reported with its line before anything runs.
 */
export async function readBatchInput(input: string, instruction?: string): Promise<BatchRow[]> {
  const tooLong = instruction === undefined ? null : textTooLong("--instruction", instruction, MAX_INSTRUCTION_LENGTH);
  if (tooLong) throw new ManifestError(tooLong);
  let info;
  try {
    info = await stat(input);
  } catch {
    throw new ManifestError(`--input ${input} does not exist`);
  }
  if (info.isDirectory()) {
    if (!instruction) throw new ManifestError("--instruction is required with a folder of photos");
    const names = (await readdir(input)).filter((n) => IMAGE_EXTENSIONS.includes(path.extname(n).toLowerCase())).sort();
    if (!names.length) throw new ManifestError(`no photos (${IMAGE_EXTENSIONS.join(" ")}) in ${input}`);
    return names.map((name, index) => ({ index, input: name, path: path.resolve(input, name), instruction }));
  }
  const ext = path.extname(input).toLowerCase();
  const text = await readFile(input, "utf8");
  let records: Array<{ line: number; value: unknown }>;
  if (ext === ".jsonl") {
    records = text
      .split("\n")
      .map((l, i) => ({ line: i + 1, text: l.trim() }))
      .filter((r) => r.text !== "")
      .map((r) => {
        try {
          return { line: r.line, value: JSON.parse(r.text) as unknown };
        } catch {
          throw new ManifestError(`${input}:${r.line}: not valid JSON`);
        }
      });
  } else if (ext === ".csv") {
    try {
      const rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, bom: true }) as Record<string, string>[];
      records = rows.map((value, i) => ({ line: i + 2, value }));
    } catch (err) {
      throw new ManifestError(`${input}: ${(err as Error).message}`);
    }
  } else throw new ManifestError(`--input must be a folder, a .jsonl or a .csv manifest, got "${input}"`);
  const base = path.dirname(path.resolve(input));
  return records.map(({ line, value }, index) => {
    const r = rowSchema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      const field = issue.code === "unrecognized_keys" ? issue.keys[0] : String(issue.path[0] ?? "row");
      throw new ManifestError(`${input}:${line}: ${issue.code === "unrecognized_keys" ? `unknown column "${field}"` : `${field}: ${issue.message}`}`);
    }
    const row = r.data;
    const text = row.instruction ?? instruction;
    if (!text) throw new ManifestError(`${input}:${line}: no instruction (give the row one, or --instruction for all)`);
    if (row.rewards && row.preset) throw new ManifestError(`${input}:${line}: give either rewards or preset, not both`);
    return {
      index,
      input: row.image,
      path: path.resolve(base, row.image),
      instruction: text,
      rewards: row.rewards,
      preset: row.preset,
      mask: row.mask ? path.resolve(base, row.mask) : undefined,
      seed: row.seed,
      ...(row.background ? { background: row.background } : {}),
      ...(row.background_colour ? { backgroundColour: row.background_colour } : {}),
      ...(row.auto_mask !== undefined ? { autoMask: row.auto_mask } : {}),
    };
  });
}
