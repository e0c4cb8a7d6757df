/**
 * GEdit-Bench from the Hub: only its split's Arrow files (and the small json files `datasets`
 * writes beside them) fetched into the shared Hugging Face cache, as Real-Edit is.
 */
import path from "node:path";
import { type HubEnv, type PullProgress, type Selector, hubEnv, snapshot } from "../hub/index.js";
import { GEDIT_DATASET, pickSplit } from "./gedit.js";

const SIDECARS = new Set(["dataset_info.json", "state.json", "dataset_dict.json"]);

export const geditSelector: Selector = (listing) => {
  const arrows = pickSplit(listing.map((f) => f.path));
  if (!arrows.length) return { files: [], problems: ["no .arrow files (GEdit-Bench is stored as Arrow IPC files)"] };
  const dirs = new Set(arrows.map((p) => path.posix.dirname(p)));
  const sidecars = listing.map((f) => f.path).filter((p) => SIDECARS.has(path.posix.basename(p)) && (dirs.has(path.posix.dirname(p)) || !p.includes("/")));
  return { files: [...arrows, ...sidecars], problems: [] };
};

export interface PulledGedit {
  /** The snapshot folder: the Arrow files lie below it at their repository paths. */
  dir: string;
  files: string[];
  commit: string;
}

export async function pullGedit(o: { dataset?: string; revision?: string; env?: HubEnv; progress?: PullProgress } = {}): Promise<PulledGedit> {
  const snap = await snapshot({ repo: { type: "dataset", name: o.dataset ?? GEDIT_DATASET }, revision: o.revision, env: o.env ?? hubEnv(), progress: o.progress, select: geditSelector });
  return { dir: snap.dir, files: snap.files, commit: snap.commit };
}
