/**
 * GEdit-Bench from the Hub: only its split's files fetched into the shared Hugging Face cache, as
 * Real-Edit is. The split may be stored as Arrow (`save_to_disk`, with the small json files
 * `datasets` writes beside them) or as Parquet (`push_to_hub`); when the revision holds neither,
 * the Hub's own Parquet conversion of the dataset (`refs/convert/parquet`) is tried.
 */
import path from "node:path";
import { HubError, type HubEnv, type PullProgress, type Selector, hubEnv, snapshot } from "../hub/index.js";
import { GEDIT_DATASET } from "./gedit.js";
import { SPLIT_LAYOUTS, chooseSplit } from "./gedit-rows.js";

const SIDECARS = new Set(["dataset_info.json", "state.json", "dataset_dict.json"]);

/** The revision where the Hub keeps a Parquet copy of every dataset its viewer can read. */
export const CONVERTED_REVISION = "refs/convert/parquet";

/** The problem a selector reports when the listing holds no file of the split in either format. */
export const NO_SPLIT = `no GEdit-Bench files: looked for ${SPLIT_LAYOUTS}`;

export const geditSelector: Selector = (listing) => {
  const split = chooseSplit(listing.map((f) => f.path));
  if (!split) return { files: [], problems: [NO_SPLIT] };
  if (split.format === "parquet") return { files: split.files, problems: [] };
  const dirs = new Set(split.files.map((p) => path.posix.dirname(p)));
  const sidecars = listing.map((f) => f.path).filter((p) => SIDECARS.has(path.posix.basename(p)) && (dirs.has(path.posix.dirname(p)) || !p.includes("/")));
  return { files: [...split.files, ...sidecars], problems: [] };
};

export interface PulledGedit {
  /** The snapshot folder: the split's files lie below it at their repository paths. */
  dir: string;
  files: string[];
  commit: string;
  /** The revision the files came from: the one asked for, or refs/convert/parquet. */
  revision: string;
}

interface PullOptions {
  dataset?: string;
  revision?: string;
  env?: HubEnv;
  progress?: PullProgress;
  /** Where the line saying that the Parquet conversion is tried goes (default: stderr). */
  log?: (line: string) => void;
}

/**
 * The snapshot of `revision`, or null when it was listed and holds no file of the split (the one
 * case where another revision is worth a try; every other failure is thrown as it came).
 */
async function trySnapshot(name: string, revision: string, o: PullOptions): Promise<PulledGedit | null> {
  let empty = false;
  const select: Selector = (listing) => {
    const chosen = geditSelector(listing);
    empty = chosen.files.length === 0;
    return chosen;
  };
  try {
    const snap = await snapshot({ repo: { type: "dataset", name }, revision, env: o.env ?? hubEnv(), progress: o.progress, select });
    return { dir: snap.dir, files: snap.files, commit: snap.commit, revision };
  } catch (err) {
    if (empty) return null;
    throw err;
  }
}

export async function pullGedit(o: PullOptions = {}): Promise<PulledGedit> {
  const name = o.dataset ?? GEDIT_DATASET;
  const revision = o.revision ?? "main";
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const env = o.env ?? hubEnv();
  let first: PulledGedit | null;
  try {
    first = await trySnapshot(name, revision, { ...o, env });
  } catch (err) {
    // offline, a revision never pulled whole may be one that held no split: its conversion may be cached
    if (!(err instanceof HubError && err.kind === "offline-missing") || revision === CONVERTED_REVISION) throw err;
    const converted = await trySnapshot(name, CONVERTED_REVISION, { ...o, env }).catch(() => null);
    if (!converted) throw err;
    log(`dataset ${name}@${revision} is not in the cache; using the cached Parquet conversion, ${name}@${CONVERTED_REVISION}`);
    return converted;
  }
  if (first) return first;
  if (revision === CONVERTED_REVISION) throw new Error(`dataset ${name}@${revision}: ${NO_SPLIT}`);
  log(`dataset ${name}@${revision} holds no GEdit-Bench split as .arrow or .parquet files; trying the Hub's Parquet conversion, ${name}@${CONVERTED_REVISION}`);
  let why = "it holds no <config>/train/*.parquet file";
  try {
    const converted = await trySnapshot(name, CONVERTED_REVISION, { ...o, env });
    if (converted) return converted;
  } catch (err) {
    if (!(err instanceof HubError)) throw err;
    why = err.message;
  }
  throw new Error(`dataset ${name}: no GEdit-Bench files at ${revision} nor at ${CONVERTED_REVISION} (${why}); looked for ${SPLIT_LAYOUTS}`);
}
