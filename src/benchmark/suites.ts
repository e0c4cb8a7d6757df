/**
 * Benchmark suites, all turned into one list of samples:
 *   real-edit  a folder in the published Real-Edit format (real_edit_instruct.json + images)
 *   jsonl      one {id, image, instruction, category} per line
 *   synthetic  held-out generated scenes with exact ground truth (models/heldout-v2/scenes)
 *   sample     the bundled Real-Edit-format suite (src/benchmark/sample): photos + synthetic scenes
 *   gedit-bench  GEdit-Bench's Arrow files (./gedit.ts); its task types are its categories
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import path from "node:path";
import type { Palette, SyntheticCase } from "../../reward/index.js";
import { MAX_INSTRUCTION_LENGTH, textTooLong } from "../limits.js";
import { ROOT } from "../paths.js";
import { isInside, realInside, relativePathProblem } from "./contained-path.js";
import type { GeditInfo, GeditTask } from "./gedit-facts.js";
import { loadSyntheticSuite } from "./synthetic-suite.js";

export const CATEGORIES = ["local", "remove", "add", "texture", "background", "global", "style"] as const;
export type Category = (typeof CATEGORIES)[number] | "other" | GeditTask;

export interface Sample {
  /** Stable across runs: the resume and merge key. */
  id: string;
  image: string;
  instruction: string;
  category: Category;
  synthetic?: { case: SyntheticCase; palette: Palette };
  /** The image the edit is judged against, when it is not the edit's input (GEdit-Bench). */
  judgeImage?: string;
  gedit?: GeditInfo;
  /** A mask in OpenAI's convention (transparent = edit there), where the suite has one: remote editors send it. */
  mask?: string;
}

export interface Suite {
  name: string;
  samples: Sample[];
}

export const SAMPLE_SUITE = path.join(ROOT, "src", "benchmark", "sample");
export const SYNTHETIC_SUITE = path.join(ROOT, "models", "heldout-v2", "scenes");

const SYNONYMS: Record<string, Category> = {
  local: "local", "local edit": "local", change: "local", color: "local", colour: "local",
  remove: "remove", removal: "remove", delete: "remove",
  add: "add", addition: "add",
  texture: "texture", material: "texture",
  background: "background",
  global: "global",
  style: "style", "style transfer": "style",
};

export function normaliseCategory(raw: string): Category {
  return SYNONYMS[raw.trim().toLowerCase()] ?? "other";
}

/** "<n>. <category>: <instruction>", tolerant of the variations in published files. */
export function parseRealEditEntry(entry: string): { category: Category; instruction: string } {
  const m = /^\s*(?:\d+\s*[.)\]:-]?\s*)?([A-Za-z][A-Za-z ]{0,30}?)\s*[:：-]\s*(.+?)\s*$/s.exec(entry);
  if (m && normaliseCategory(m[1]) !== "other") return { category: normaliseCategory(m[1]), instruction: m[2] };
  return { category: "other", instruction: entry.replace(/^\s*\d+\s*[.)]\s*/, "").trim() };
}

const KIND_TO_CATEGORY: Record<string, Category> = { recolour: "local", background: "background", remove: "remove", add: "add", grayscale: "global", brighter: "global" };

/**
 * The folders an index's images may really lie in: the images folder, and when that is in a Hub
 * snapshot (<repo>/snapshots/<commit>/...), the repository's blobs, which each snapshot file links
 * to as huggingface_hub lays the cache out. The blobs count only where, links followed, they are
 * still the sibling of the folder holding the images' snapshot: a folder merely named so in an
 * extracted archive cannot widen the roots to anywhere else.
 */
function imageRoots(images: string): string[] {
  for (let d = path.resolve(images); path.dirname(d) !== d; d = path.dirname(d)) {
    if (path.basename(path.dirname(d)) !== "snapshots" || !/^[0-9a-f]{40}$/.test(path.basename(d))) continue;
    const repo = path.dirname(path.dirname(d));
    try {
      const realRepo = realpathSync(repo);
      const realBlobs = realpathSync(path.join(repo, "blobs"));
      if (realBlobs === path.join(realRepo, "blobs") && isInside(path.join(realRepo, "snapshots"), realpathSync(images))) return [images, realBlobs];
    } catch {
      /* no blobs folder: not a Hub cache */
    }
    break;
  }
  return [images];
}

/** The 1-based line of the index that first spells `name` as JSON does, for messages (0 when none does). */
function lineOf(text: string, name: string): number {
  const quoted = JSON.stringify(name);
  return text.split("\n").findIndex((l) => l.includes(quoted)) + 1;
}

/**
 * `images`: where the index's names resolve, when not beside it (a Hub snapshot's own layout).
 * Every name must be a relative path of plain segments, and the file it names, links followed,
 * must lie inside `images`: an index cannot make any other readable file a sample.
 */
export async function loadRealEdit(dir: string, name = "real-edit", images = dir): Promise<Suite> {
  const index = path.join(dir, "real_edit_instruct.json");
  if (!existsSync(index)) throw new Error(`${dir}: no real_edit_instruct.json (the Real-Edit format)`);
  const text = readFileSync(index, "utf8");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${index}: not JSON (${(err as Error).message})`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new Error(`${index}: not an object of image name -> instructions (the Real-Edit format)`);
  const synthFile = path.join(dir, "synthetic.json");
  const synthIds: Record<string, string> = existsSync(synthFile) ? JSON.parse(readFileSync(synthFile, "utf8")) : {};
  const synthetic = Object.keys(synthIds).some((k) => !k.startsWith("_")) ? await loadSyntheticSuite(SYNTHETIC_SUITE) : undefined;
  const roots = imageRoots(images);
  const samples: Sample[] = [];
  for (const [file, entries] of Object.entries(raw as Record<string, unknown>)) {
    const stem = file.replace(/\.[^.]+$/, "").replace(/[^A-Za-z0-9_-]+/g, "_");
    const line = lineOf(text, file);
    const where = `${index}${line ? `:${line}` : ""}: ${JSON.stringify(file)} (sample ${stem}#1)`;
    const problem = relativePathProblem(file);
    if (problem) throw new Error(`${where}: the image name is refused: ${problem}; names are relative paths inside ${images}`);
    const list = Array.isArray(entries) ? entries : [entries];
    if (!list.length || list.some((e) => typeof e !== "string")) throw new Error(`${where}: the instructions must be a string or a list of strings`);
    const beside = path.resolve(images, file);
    const image = existsSync(beside) || images === dir ? beside : path.resolve(images, path.basename(file));
    if (existsSync(image) && !realInside(image, roots)) throw new Error(`${where}: the image resolves outside ${images} (through a symbolic link)`);
    (list as string[]).forEach((entry, i) => {
      const { category, instruction } = parseRealEditEntry(entry);
      const rec = synthIds[file] ? synthetic?.cases.find((c) => c.record.id === synthIds[file]) : undefined;
      samples.push({
        id: `${stem}#${i + 1}`,
        image,
        instruction,
        category,
        synthetic: rec && synthetic ? { case: rec, palette: synthetic.palette } : undefined,
      });
    });
  }
  return { name, samples };
}

export function loadJsonl(file: string): Suite {
  const dir = path.dirname(file);
  const samples = readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l, n) => {
      const r = JSON.parse(l) as { id?: string; image: string; instruction: string; category?: string; mask?: string };
      if (!r.image || !r.instruction) throw new Error(`${file}:${n + 1}: image and instruction are required`);
      return { id: r.id ?? `line-${n + 1}`, image: path.resolve(dir, r.image), instruction: r.instruction, category: normaliseCategory(r.category ?? "other"), ...(r.mask ? { mask: path.resolve(dir, r.mask) } : {}) };
    });
  return { name: path.basename(file), samples };
}

export async function loadSynthetic(dir = SYNTHETIC_SUITE): Promise<Suite> {
  const s = await loadSyntheticSuite(dir);
  return {
    name: "synthetic",
    samples: s.cases.map((c) => ({
      id: c.record.id,
      image: path.join(dir, `${c.record.id}-source.png`),
      instruction: c.record.instruction,
      category: KIND_TO_CATEGORY[c.record.kind] ?? "other",
      synthetic: { case: c, palette: s.palette },
    })),
  };
}

/**
 * A data set's instructions go to the editor as a request's would, so they share its cap; a
 * longer one stops the run before any edit, naming the sample (gedit-bench loaders can call this too).
 */
export function checkInstructionLengths(suite: Suite): Suite {
  for (const s of suite.samples) {
    const tooLong = textTooLong("instruction", s.instruction, MAX_INSTRUCTION_LENGTH);
    if (tooLong) throw new Error(`${suite.name}: sample ${s.id}: ${tooLong}`);
  }
  return suite;
}

export async function loadSuite(kind: string, location?: string): Promise<Suite> {
  return checkInstructionLengths(await loadSuiteUnchecked(kind, location));
}

async function loadSuiteUnchecked(kind: string, location?: string): Promise<Suite> {
  switch (kind) {
    case "sample":
      return loadRealEdit(location ?? SAMPLE_SUITE, "sample");
    case "real-edit":
      if (!location) throw new Error("--suite real-edit needs --suite-path DIR (the Real-Edit folder)");
      return loadRealEdit(location);
    case "jsonl":
      if (!location) throw new Error("--suite jsonl needs --suite-path FILE");
      return loadJsonl(location);
    case "synthetic":
      return loadSynthetic(location ?? SYNTHETIC_SUITE);
    default:
      throw new Error(`unknown suite "${kind}"; valid: sample, real-edit, jsonl, synthetic (gedit-bench: ./gedit.ts)`);
  }
}
