/**
 * GEdit-Bench (Step1X-Edit's benchmark) as a suite: its split's Arrow IPC files (as `datasets`
 * saves a split) or Parquet files (as `push_to_hub` and the Hub's conversion store it), read
 * through one row interface (./gedit-rows.ts). Each row becomes a sample whose edit
 * input is `input_image_raw` at about 512 x 512 in area (its own aspect, sides multiples of 32)
 * and whose judged source is `input_image`, as the official evaluation does it.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { projectCacheDir } from "../paths.js";
import { containedPath, segmentProblem } from "./contained-path.js";
import { GEDIT_AREA, type GeditInfo, type GeditLanguage, type GeditOptions, type GeditTask } from "./gedit-facts.js";
import { SPLIT_LAYOUTS, rowBatches, splitFiles } from "./gedit-rows.js";
import type { Sample, Suite } from "./suites.js";

export { chooseSplit, pickSplit, splitFiles } from "./gedit-rows.js";

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

function bytesOf(v: unknown): Buffer | undefined {
  if (v === null || v === undefined) return undefined;
  const b = (v as { bytes?: Uint8Array | null }).bytes ?? (v instanceof Uint8Array ? v : undefined);
  return b && b.length ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : undefined;
}

/** A file name for `s`; names it had to change carry a hash of the original, so two never meet. */
const safe = (s: string) => {
  const plain = s.replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 120);
  return plain === s ? s : `${plain}-${createHash("sha256").update(s).digest("hex").slice(0, 8)}`;
};

/** A cell as a message shows it: text quoted, anything else as JavaScript prints it. */
const shown = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : String(v));

const BOOLEANS = new Map<unknown, boolean>([
  [true, true], [false, false], ["True", true], ["False", false], ["true", true], ["false", false], ["1", true], ["0", false],
]);

/**
 * A boolean cell read strictly: Arrow booleans, and the spellings Python and CSV exports use.
 * Anything else (the string "False" above all, which Boolean() would call true) is undefined.
 */
export function strictBoolean(v: unknown): boolean | undefined {
  return BOOLEANS.get(v);
}

/** A text cell: strings as they are, whole numbers as digits, anything else (null above all) undefined. */
function textCell(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if ((typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint") return String(v);
  return undefined;
}

/** Written beside itself then renamed: a killed run never leaves half an image to be reused. */
function writeOnce(file: string, make: () => Promise<Buffer>): Promise<void> | undefined {
  if (existsSync(file)) return undefined;
  return make().then((b) => {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, b);
    renameSync(`${file}.tmp`, file);
  });
}


/** The edit input: the raw image upright, at the official generation's size. */
async function prepareInput(raw: Buffer): Promise<Buffer> {
  const m = await sharp(raw).rotate().metadata();
  if (!m.width || !m.height) throw new Error("no width or height");
  const swap = (m.orientation ?? 1) >= 5;
  const [w, h] = swap ? [m.height, m.width] : [m.width, m.height];
  const d = geditDimensions(w / h);
  return sharp(raw).rotate().resize(d.width, d.height, { fit: "fill", kernel: "lanczos3" }).png().toBuffer();
}

/**
 * The GEdit-Bench rows of one language as samples. The images are prepared once per version of
 * the files (keyed by their names, sizes and times) in the project cache.
 */
export async function loadGedit(location: string, o: GeditOptions = {}): Promise<Suite> {
  if (!existsSync(location)) throw new Error(`${location} does not exist`);
  const language = o.language ?? "en";
  const files = splitFiles(location);
  if (!files.length) throw new Error(`${location}: no GEdit-Bench files: looked for ${SPLIT_LAYOUTS}`);
  const version = createHash("sha256");
  for (const f of files) {
    const st = statSync(f);
    version.update(`${path.basename(f)}:${st.size}:${st.mtimeMs}\n`);
  }
  const root = path.join(o.cacheDir ?? path.join(projectCacheDir(), "gedit-bench"), version.digest("hex").slice(0, 16), language);
  const samples: Sample[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    for await (const batch of rowBatches(file)) {
      const pending: Array<Promise<void>> = [];
      for (let j = 0; j < batch.length; j++) {
        const cell = (c: Parameters<typeof batch.cell>[0]) => batch.cell(c, j);
        const i = batch.first + j;
        if (String(cell("instruction_language")).trim().toLowerCase() !== language) continue;
        const task = textCell(cell("task_type"));
        const key = textCell(cell("key"));
        const row = `${file}: row ${i} (key ${shown(key ?? null)}, task ${shown(task ?? null)})`;
        if (task === undefined || key === undefined) throw new Error(`${row}: task_type and key must be text`);
        // both become file names below the prepared folder: one plain segment each, never a way out of it
        for (const [field, v] of [["task_type", task], ["key", key]] as const) {
          const problem = segmentProblem(v);
          if (problem) throw new Error(`${row}: ${field} is refused (${problem}); it must be one plain file name`);
        }
        let intersection = false;
        if (batch.has("Intersection_exist")) {
          const v = cell("Intersection_exist");
          const b = strictBoolean(v);
          if (b === undefined) throw new Error(`${row}: Intersection_exist is ${shown(v)}; expected true or false ("True", "False", "1" or "0" as text)`);
          intersection = b;
        }
        if (o.intersection && !intersection) continue;
        const judged = bytesOf(cell("input_image"));
        const rawBytes = bytesOf(cell("input_image_raw"));
        // the official generation edits the raw image; input_image stands in where a row lacks it
        const raw = rawBytes ?? judged;
        if (!judged || !raw) throw new Error(`${row}: has no image bytes`);
        const id = `gedit/${language}/${task}/${key}`;
        if (seen.has(id)) continue;
        seen.add(id);
        const base = containedPath(root, `${safe(task)}/${safe(key)}`);
        const image = `${base}.input.png`;
        const judgeImage = `${base}.source.png`;
        const decodeError = (column: string) => (err: Error) => {
          throw new Error(`${row}: ${column} is not a decodable image (${err.message})`);
        };
        const a = writeOnce(image, () => prepareInput(raw).catch(decodeError(rawBytes ? "input_image_raw" : "input_image")));
        const b = writeOnce(judgeImage, () => sharp(judged).rotate().png().toBuffer().catch(decodeError("input_image")));
        // a failure surfaces through Promise.all below; this keeps one from going unhandled meanwhile,
        // when a later row is refused before the batch is awaited
        for (const p of [a, b]) {
          if (!p) continue;
          p.catch(() => {});
          pending.push(p);
        }
        if (pending.length >= 16) await Promise.all(pending.splice(0));
        samples.push({
          id,
          image,
          judgeImage,
          instruction: String(cell("instruction")),
          category: task as GeditTask,
          gedit: { task, language, intersection, key },
        });
      }
      // the batch's images are written before the next batch is read: memory holds one batch
      await Promise.all(pending);
    }
  }
  if (!samples.length) throw new Error(`${location}: no GEdit-Bench rows in language "${language}"${o.intersection ? " with Intersection_exist" : ""}`);
  return { name: "gedit-bench", samples };
}
