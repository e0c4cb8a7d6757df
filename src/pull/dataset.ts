/**
 * Real-Edit from the Hub: the dataset repository's snapshot in the shared cache, its archives (if
 * that is how the photos are stored) extracted once per commit into the project's cache, and the
 * benchmark's index found wherever it sits, with the image folder beside it.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type HubEnv, type PullProgress, containedPath, hubEnv, isSafeName, snapshot } from "../hub/index.js";
import { archiveLimits, extractArchive } from "./archive.js";
import { projectCacheDir } from "../paths.js";

export const REAL_EDIT_DATASET = "Gstar666/RewardEdit";
export const REAL_EDIT_INDEX = "real_edit_instruct.json";

const ARCHIVE = /\.(zip|tar|tar\.gz|tgz)$/i;

export interface LocatedSuite {
  /** The folder holding real_edit_instruct.json. */
  dir: string;
  /** The folder the index's image names resolve in. */
  images: string;
  commit: string;
}

/**
 * Each archive of the snapshot, extracted once into the project cache (a marker says it is whole).
 * The work folder beside the destination goes on every failure; only a whole extraction is moved in.
 */
async function extractArchives(name: string, snapshotDir: string, files: string[], into: string): Promise<string[]> {
  const roots: string[] = [];
  const limits = archiveLimits();
  for (const f of files.filter((x) => ARCHIVE.test(x))) {
    const dest = containedPath(into, f.replace(ARCHIVE, ""), { owner: `dataset ${name}`, what: "archive" });
    const done = path.join(dest, ".reward-edit-extracted");
    roots.push(dest);
    if (existsSync(done)) continue;
    const work = `${dest}.partial-${process.pid}`;
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      await extractArchive(path.join(snapshotDir, f), work, `dataset ${name}: archive ${f}`, limits);
      writeFileSync(path.join(work, ".reward-edit-extracted"), `${f}\n`);
      rmSync(dest, { recursive: true, force: true });
      renameSync(work, dest);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return roots;
}

function walk(dir: string, found: (file: string) => void, depth = 0): void {
  if (depth > 8) return;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries.sort()) {
    if (e.startsWith(".")) continue;
    const full = path.join(dir, e);
    try {
      if (statSync(full).isDirectory()) walk(full, found, depth + 1);
      else found(full);
    } catch {
      /* a dangling link: not a file we have */
    }
  }
}

/**
 * Where the index's image names resolve: beside the index as written, else the first folder near
 * it (its own subfolders, its parent's, the extracted archives) that holds the first few names.
 */
export function locateImages(indexFile: string, roots: string[]): string | undefined {
  // the index's keys are names from the dataset: only those that stay below a folder are looked for
  const names = Object.keys(JSON.parse(readFileSync(indexFile, "utf8")) as Record<string, unknown>).filter(isSafeName).slice(0, 5);
  if (names.length === 0) return undefined;
  const holds = (dir: string) => names.every((n) => existsSync(path.join(dir, n)));
  const dir = path.dirname(indexFile);
  if (holds(dir)) return dir;
  const candidates: string[] = [];
  for (const root of [dir, path.dirname(dir), ...roots]) {
    candidates.push(root);
    walk(root, (f) => {
      const d = path.dirname(f);
      if (!candidates.includes(d)) candidates.push(d);
    });
  }
  // names may carry a folder ("images/a.jpg") or not ("a.jpg"): try the bare names too
  const bare = names.map((n) => path.basename(n));
  return candidates.find(holds) ?? candidates.find((d) => bare.every((n) => existsSync(path.join(d, n))));
}

export async function pullRealEdit(o: { dataset?: string; revision?: string; env?: HubEnv; progress?: PullProgress; fetch?: typeof fetch } = {}): Promise<LocatedSuite> {
  const env = o.env ?? hubEnv();
  const name = o.dataset ?? REAL_EDIT_DATASET;
  const snap = await snapshot({
    repo: { type: "dataset", name },
    revision: o.revision,
    env,
    progress: o.progress,
    fetch: o.fetch,
    // the repository's own git files are no part of the benchmark
    select: (listing) => ({ files: listing.map((f) => f.path).filter((p) => !/(^|\/)\.git/.test(p)), problems: [] }),
  });
  const extracted = await extractArchives(name, snap.dir, snap.files, path.join(projectCacheDir(), "datasets", `datasets--${name.split("/").join("--")}`, snap.commit));
  const indexes: string[] = [];
  for (const root of [snap.dir, ...extracted]) walk(root, (f) => path.basename(f) === REAL_EDIT_INDEX && indexes.push(f));
  if (indexes.length === 0) throw new Error(`dataset ${name}@${snap.commit.slice(0, 12)} has no ${REAL_EDIT_INDEX} (nor an archive holding one): is it a Real-Edit repository?`);
  const index = indexes[0];
  const images = locateImages(index, extracted);
  if (!images) throw new Error(`dataset ${name}@${snap.commit.slice(0, 12)}: found ${path.relative(snap.dir, index)} but no folder holding its images`);
  return { dir: path.dirname(index), images, commit: snap.commit };
}
