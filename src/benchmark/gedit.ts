/**
 * GEdit-Bench (Step1X-Edit's benchmark) as a suite: its Arrow IPC files, as `datasets` saves a
 * split, read with the Apache Arrow project's own reader. Each row becomes a sample whose edit
 * input is `input_image_raw` at about 512 x 512 in area (its own aspect, sides multiples of 32)
 * and whose judged source is `input_image`, as the official evaluation does it.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type Table, tableFromIPC } from "apache-arrow";
import sharp from "sharp";
import { projectCacheDir } from "../paths.js";
import { GEDIT_AREA, type GeditInfo, type GeditLanguage, type GeditOptions, type GeditTask } from "./gedit-facts.js";
import type { Sample, Suite } from "./suites.js";

export { GEDIT_AREA, GEDIT_DATASET, GEDIT_LANGUAGES, GEDIT_PUBLISHED, GEDIT_TASKS, type GeditInfo, type GeditLanguage, type GeditOptions, type GeditTask } from "./gedit-facts.js";

/**
 * Sides for an image of aspect `ratio` (width / height) holding about `area` pixels, each rounded
 * to a multiple of 32: the edit input size of the official GEdit-Bench generation.
 */
export function geditDimensions(ratio: number, area = GEDIT_AREA): { width: number; height: number } {
  const w = Math.sqrt(area * ratio);
  const h = w / ratio;
  return { width: Math.max(32, Math.round(w / 32) * 32), height: Math.max(32, Math.round(h / 32) * 32) };
}

/**
 * The split's .arrow files below `dir` (or `dir` itself when it is one), in name order. When the
 * folder holds several splits, the `train` split: GEdit-Bench has only that one.
 */
export function arrowFiles(dir: string): string[] {
  if (statSync(dir).isFile()) return [dir];
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 6) return;
    for (const e of readdirSync(d).sort()) {
      if (e.startsWith(".")) continue;
      const full = path.join(d, e);
      if (statSync(full).isDirectory()) walk(full, depth + 1);
      else if (e.endsWith(".arrow")) found.push(full);
    }
  };
  walk(dir, 0);
  return pickSplit(found.map((f) => path.relative(dir, f))).map((f) => path.join(dir, f));
}

/** Of repository-relative .arrow paths, those of the train split (all of them when no split is named). */
export function pickSplit(paths: string[]): string[] {
  const arrows = paths.filter((p) => p.endsWith(".arrow")).sort();
  const train = arrows.filter((p) => p.split("/").some((seg) => seg === "train" || /^train[-_.]/.test(seg)));
  return train.length ? train : arrows;
}

/** The column `name` (case aside: `Intersection_exist` is spelt with a capital). */
function column(table: Table, name: string) {
  const field = table.schema.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
  return field ? table.getChild(field.name) : null;
}

function bytesOf(v: unknown): Buffer | undefined {
  if (v === null || v === undefined) return undefined;
  const b = (v as { bytes?: Uint8Array | null }).bytes ?? (v instanceof Uint8Array ? v : undefined);
  return b && b.length ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : undefined;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 120);

/** Written beside itself then renamed: a killed run never leaves half an image to be reused. */
function writeOnce(file: string, make: () => Promise<Buffer>): Promise<void> | undefined {
  if (existsSync(file)) return undefined;
  return make().then((b) => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, b);
    renameSync(`${file}.tmp`, file);
  });
}


/**
 * The GEdit-Bench rows of one language as samples. The images are prepared once per version of
 * the files (keyed by their names, sizes and times) in the project cache.
 */
export async function loadGedit(location: string, o: GeditOptions = {}): Promise<Suite> {
  if (!existsSync(location)) throw new Error(`${location} does not exist`);
  const language = o.language ?? "en";
  const files = arrowFiles(location);
  if (!files.length) throw new Error(`${location}: no .arrow files (GEdit-Bench is stored as Arrow IPC files, as datasets saves a split)`);
  const version = createHash("sha256");
  for (const f of files) {
    const st = statSync(f);
    version.update(`${path.basename(f)}:${st.size}:${st.mtimeMs}\n`);
  }
  const root = path.join(o.cacheDir ?? path.join(projectCacheDir(), "gedit-bench"), version.digest("hex").slice(0, 16), language);
  const samples: Sample[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    let table: Table;
    try {
      table = tableFromIPC(readFileSync(file));
    } catch (err) {
      throw new Error(`${file}: not an Arrow IPC file (${(err as Error).message})`);
    }
    const cols = Object.fromEntries(
      ["task_type", "key", "instruction", "instruction_language", "input_image", "input_image_raw", "Intersection_exist"].map((n) => [n, column(table, n)]),
    );
    const missing = ["task_type", "key", "instruction", "instruction_language", "input_image"].filter((n) => !cols[n]);
    if (missing.length) throw new Error(`${file}: no ${missing.join(", ")} column (is it GEdit-Bench?)`);
    const pending: Array<Promise<void>> = [];
    for (let i = 0; i < table.numRows; i++) {
      if (String(cols.instruction_language!.get(i)).trim().toLowerCase() !== language) continue;
      const intersection = cols.Intersection_exist ? Boolean(cols.Intersection_exist.get(i)) : false;
      if (o.intersection && !intersection) continue;
      const task = String(cols.task_type!.get(i));
      const key = String(cols.key!.get(i));
      const judged = bytesOf(cols.input_image!.get(i));
      // the official generation edits the raw image; input_image stands in where a row lacks it
      const raw = bytesOf(cols.input_image_raw?.get(i)) ?? judged;
      if (!judged || !raw) throw new Error(`${file}: row ${i} (${key}) has no image bytes`);
      const id = `gedit/${language}/${task}/${key}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const base = path.join(root, safe(task), safe(key));
      const image = `${base}.input.png`;
      const judgeImage = `${base}.source.png`;
      const a = writeOnce(image, async () => {
        const m = await sharp(raw).rotate().metadata();
        const swap = (m.orientation ?? 1) >= 5;
        const [w, h] = swap ? [m.height!, m.width!] : [m.width!, m.height!];
        const d = geditDimensions(w / h);
        return sharp(raw).rotate().resize(d.width, d.height, { fit: "fill", kernel: "lanczos3" }).png().toBuffer();
      });
      const b = writeOnce(judgeImage, () => sharp(judged).rotate().png().toBuffer());
      if (a) pending.push(a);
      if (b) pending.push(b);
      if (pending.length >= 16) await Promise.all(pending.splice(0));
      samples.push({
        id,
        image,
        judgeImage,
        instruction: String(cols.instruction!.get(i)),
        category: task as GeditTask,
        gedit: { task, language, intersection, key },
      });
    }
    await Promise.all(pending);
  }
  if (!samples.length) throw new Error(`${location}: no GEdit-Bench rows in language "${language}"${o.intersection ? " with Intersection_exist" : ""}`);
  return { name: "gedit-bench", samples };
}
