/** Messages between the server and its inference workers. */
import type { DetailMode, EditResult, Manifest, OutputFormat, Rewards, SchedulerName } from "../../../editor/index.js";

export interface EditJobRequest {
  image: Uint8Array;
  instruction: string;
  rewards?: Rewards;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
  seed: number;
  scheduler?: SchedulerName;
  format: OutputFormat;
  candidates: number;
  detail: DetailMode;
}

export interface Candidate {
  image: Uint8Array;
  seed: number;
  /** Share of the input's pixels kept exactly (null when detail is off). */
  keptFraction: number | null;
  /** The full-resolution blend mask as a PNG (detail "keep"). */
  mask?: Uint8Array;
}

export interface EditJobOutput {
  candidates: Candidate[];
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
  | { type: "progress"; jobId: string; step: number; steps: number }
  | { type: "done"; jobId: string; output: EditJobOutput }
  | { type: "failed"; jobId: string; error: WorkerError };

export interface WorkerInit {
  modelDir: string;
  providers: string[];
  ortThreads: number;
  /** Int32 flag the server sets to cancel the running job: checked after every step. */
  cancel: SharedArrayBuffer;
}
