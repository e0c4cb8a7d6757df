/** Messages between the server and its inference workers. */
import type { DetailMode, EditResult, Manifest, MaskMode, OutputFormat, Rewards } from "../../../editor/index.js";
import type { ScoreResult } from "../../../reward/index.js";
import type { SamplingOptions } from "../../edit-params.js";
import type { ProvenanceSetup } from "../../provenance/index.js";

export interface EditJobRequest {
  image: Uint8Array;
  instruction: string;
  rewards?: Rewards;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
  seed: number;
  /** Scheduler and the fast-path options (guidance interval, adaptive guidance, DeepCache). */
  sampling?: SamplingOptions;
  format: OutputFormat;
  candidates: number;
  /** Refinement rounds (1 = none): the worker scores each round and edits again from the verdict. */
  refineRounds?: number;
  detail: DetailMode;
  /** Where the edit may happen: a greyscale PNG, white = may change (already checked and normalised). */
  editMask?: Uint8Array;
  maskMode?: MaskMode;
  /** The photo's decoded size in pixels (width x height), for the pool's memory admission. */
  pixels?: number;
  /** The preset the settings came from, recorded in the result's provenance. */
  preset?: string | null;
}

/** One refinement round as the API reports it (the image is the candidate at the same index). */
export interface RoundReport {
  round: number;
  seed: number;
  rewards: Rewards;
  textGuidance: number;
  imageGuidance: number;
  from: "source" | "last";
  feedback: string | null;
  changes: string[];
  scores: ScoreResult;
  merit: number;
  met: boolean;
}

export interface Candidate {
  image: Uint8Array;
  seed: number;
  /** Share of the input's pixels kept exactly (null when detail is off). */
  keptFraction: number | null;
  /** The full-resolution blend mask as a PNG (detail "keep"). */
  mask?: Uint8Array;
  /** With auto_mask: the relevance map (grey PNG at the working size, white = where the instruction acts). */
  relevance?: Uint8Array;
}

export interface EditJobOutput {
  candidates: Candidate[];
  /** Present when the job refined: one report per round, and the round the scorer chose. */
  refine?: { rounds: RoundReport[]; best: number; stopped: "met" | "rounds"; scorer: string };
  width: number;
  height: number;
  parameters: EditResult["parameters"];
  timings: { totalMs: number; ortMs: number; stepMs: number[] };
}

export interface WorkerError {
  name: string;
  message: string;
  field?: string;
}

export type ToWorker = { type: "edit"; jobId: string; request: EditJobRequest };

export type FromWorker =
  | { type: "ready"; model: { name: string; takesRewards: boolean; dir: string; provider: string; manifest: Manifest } }
  | { type: "init-failed"; error: WorkerError }
  /** `preview`: the forming image at this step (editor/pipeline/preview.ts), a small PNG. */
  | { type: "progress"; jobId: string; step: number; steps: number; preview?: { png: Uint8Array; width: number; height: number } }
  | { type: "done"; jobId: string; output: EditJobOutput }
  | { type: "failed"; jobId: string; error: WorkerError };

export interface WorkerInit {
  modelDir: string;
  providers: string[];
  ortThreads: number;
  /** Bound of the worker's encode cache (REWARD_EDIT_ENCODE_CACHE_MB); absent: the library's default. */
  encodeCacheMb?: number;
  /** REWARD_EDIT_ORT_CACHE: where optimised graphs are kept between starts; absent or empty: nowhere. */
  ortCacheDir?: string;
  /** Tiling of edits that name none (REWARD_EDIT_VAE_TILING); absent: auto. */
  vaeTiling?: "auto" | "on" | "off";
  /** Int32 flag the server sets to cancel the running job: checked after every step. */
  cancel: SharedArrayBuffer;
  /** How results are marked (C2PA, XMP); null: not at all. */
  provenance: ProvenanceSetup;
}
