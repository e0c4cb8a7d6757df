/**
 * GEdit-Bench's rows, whichever way its split is stored: Arrow IPC (stream or file), as `datasets`'
 * `save_to_disk` writes it, or Parquet, as `push_to_hub` and the Hub's own conversion
 * (`refs/convert/parquet`) write it. Both come out as batches of the same cells (text, booleans,
 * image structs `{bytes, path}`), so the suite reads either through one code path.
 *
 * Which files make the split is decided here too, for a folder on disk and for a Hub listing alike:
 * the `train` split's `.arrow` files when there are any, else its `.parquet` files; never both, so
 * a repository holding both formats is read once.
 */
import { closeSync, openSync, readFileSync, readSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { type Table, tableFromIPC } from "apache-arrow";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import { isSafeName } from "../hub/safe-path.js";

export const GEDIT_COLUMNS = ["task_type", "key", "instruction", "instruction_language", "input_image", "input_image_raw", "Intersection_exist"] as const;
export type GeditColumn = (typeof GEDIT_COLUMNS)[number];
const REQUIRED: GeditColumn[] = ["task_type", "key", "instruction", "instruction_language", "input_image"];
const TEXT = new Set<GeditColumn>(["task_type", "key", "instruction", "instruction_language"]);

export type SplitFormat = "arrow" | "parquet";

/** Rows `first` .. `first + length - 1` of one file (numbered from the file's first row). */
export interface RowBatch {
  first: number;
  length: number;
  has(column: GeditColumn): boolean;
  cell(column: GeditColumn, i: number): unknown;
}

/** Whether a path names a file of the train split: a `train` folder, or a name starting `train-`. */
const ofTrain = (p: string) => p.split("/").some((seg) => seg === "train" || /^train[-_.]/.test(seg));

/** Of repository-relative paths ending in `ext`, the train split's (all of them when no split is named), in name order. */
function splitOf(paths: string[], ext: string): string[] {
  const files = paths.filter((p) => p.endsWith(ext)).sort();
  const train = files.filter(ofTrain);
  return train.length ? train : files;
}

/** Of repository-relative .arrow paths, those of the train split (all of them when no split is named). */
export const pickSplit = (paths: string[]) => splitOf(paths, ".arrow");

/**
 * The split's files among repository-relative paths: Arrow when any `.arrow` file is there, else
 * Parquet (`data/train-*.parquet`, `train/*.parquet`, `<config>/train/*.parquet`). Names that are
 * not plain relative paths are never chosen, whoever listed them.
 */
export function chooseSplit(paths: string[]): { format: SplitFormat; files: string[] } | undefined {
  const safe = paths.filter(isSafeName);
  const arrows = pickSplit(safe);
  if (arrows.length) return { format: "arrow", files: arrows };
  const parquets = splitOf(safe, ".parquet");
  return parquets.length ? { format: "parquet", files: parquets } : undefined;
}

/** What chooseSplit looks for, for the line that says nothing was found. */
export const SPLIT_LAYOUTS = "the train split's .arrow files (train/*.arrow, as save_to_disk writes them) or .parquet files (data/train-*.parquet, train/*.parquet, <config>/train/*.parquet)";

/** The split's files below `dir` (or `dir` itself when it is a file of either format). */
export function splitFiles(dir: string): string[] {
  if (statSync(dir).isFile()) return [dir];
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 6) return;
    for (const e of readdirSync(d).sort()) {
      if (e.startsWith(".")) continue;
      const full = path.join(d, e);
      if (statSync(full).isDirectory()) walk(full, depth + 1);
      else if (e.endsWith(".arrow") || e.endsWith(".parquet")) found.push(path.relative(dir, full).split(path.sep).join("/"));
    }
  };
  walk(dir, 0);
  return (chooseSplit(found)?.files ?? []).map((f) => path.join(dir, ...f.split("/")));
}

/** Parquet files start (and end) with `PAR1`; anything else is taken for Arrow IPC. */
export function formatOf(file: string): SplitFormat {
  const head = Buffer.alloc(4);
  const fd = openSync(file, "r");
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return head.toString("latin1") === "PAR1" ? "parquet" : "arrow";
}

/** `wanted` matched to the file's own column names, case aside (`Intersection_exist` is spelt with a capital). */
function columnNames(names: string[], file: string): Map<GeditColumn, string> {
  const out = new Map<GeditColumn, string>();
  for (const c of GEDIT_COLUMNS) {
    const name = names.find((n) => n.toLowerCase() === c.toLowerCase());
    if (name !== undefined) out.set(c, name);
  }
  const missing = REQUIRED.filter((c) => !out.has(c));
  if (missing.length) throw new Error(`${file}: no ${missing.join(", ")} column (is it GEdit-Bench?)`);
  return out;
}

/** The whole file as one batch: `datasets` writes a split's Arrow files in shards of a few hundred MB. */
function* arrowBatches(file: string): Generator<RowBatch> {
  let table: Table;
  try {
    table = tableFromIPC(readFileSync(file));
  } catch (err) {
    throw new Error(`${file}: not an Arrow IPC file (${(err as Error).message}), nor a Parquet file`);
  }
  const names = columnNames(table.schema.fields.map((f) => f.name), file);
  const vectors = new Map([...names].map(([c, n]) => [c, table.getChild(n)!]));
  yield { first: 0, length: table.numRows, has: (c) => vectors.has(c), cell: (c, i) => vectors.get(c)?.get(i) };
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/**
 * One row group at a time, only the suite's columns. Byte arrays stay bytes (the images); a text
 * column written without its UTF8 annotation is decoded here instead.
 */
async function* parquetBatches(file: string): AsyncGenerator<RowBatch> {
  const fail = (err: unknown) => new Error(`${file}: cannot read this Parquet file (${(err as Error).message})`);
  let buffer, metadata;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    throw fail(err);
  }
  const names = columnNames(parquetSchema(metadata).children.map((c) => c.element.name), file);
  let first = 0;
  for (const group of metadata.row_groups) {
    const length = Number(group.num_rows);
    let rows: Array<Record<string, unknown>>;
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, columns: [...names.values()], rowStart: first, rowEnd: first + length, utf8: false });
    } catch (err) {
      throw fail(err);
    }
    const cell = (c: GeditColumn, i: number) => {
      const v = rows[i]?.[names.get(c)!];
      return TEXT.has(c) && v instanceof Uint8Array ? utf8.decode(v) : v;
    };
    yield { first, length, has: (c) => names.has(c), cell };
    first += length;
  }
}

/** The rows of one file of the split, in batches small enough to hold: a file (Arrow) or a row group (Parquet). */
export function rowBatches(file: string): AsyncIterable<RowBatch> | Iterable<RowBatch> {
  return formatOf(file) === "parquet" ? parquetBatches(file) : arrowBatches(file);
}
