/**
 * The job store the HTTP layer talks to: the embedded in-memory queue, or a Redis-backed one that
 * every replica shares (REDIS_URL). Both run edits on this process's inference workers (JobPool);
 * they differ in where jobs wait, where state and results live, and who may take a job.
 */
import type { Manifest } from "../../../editor/index.js";
import type { EditJobOutput, EditJobRequest, WorkerError } from "../worker/protocol.js";
import type { LiveUpdate } from "./live.js";

/** The model the inference workers serve, as they report it when ready. */
export interface ModelInfo {
  name: string;
  takesRewards: boolean;
  dir: string;
  provider: string;
  manifest: Manifest;
}

export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const FINAL_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled"];

/** What the HTTP layer keeps with a job besides the edit request. */
export interface JobMeta {
  preset: string | null;
  responseFormat: "image" | "json";
  /** Who submitted it: a digest of the API key (null without keys). Another key sees no such job. */
  owner?: string | null;
  /** Called once the job ends (webhooks.ts); checked at submission. */
  webhookUrl?: string;
}

/** A snapshot of one job. */
export interface JobView {
  id: string;
  state: JobState;
  createdAt: number;
  progress: { step: number; steps: number };
  /** 0-based position among waiting jobs (global with Redis), null when not waiting. */
  position: number | null;
  request: EditJobRequest;
  meta: JobMeta;
  output?: EditJobOutput;
  error?: WorkerError;
  /** The replica that runs or ran it (REPLICA_NAME); undefined until one takes it. */
  replica?: string;
  /** Succeeded, but its result was dropped early to keep the retained bytes under their cap. */
  evicted?: boolean;
}

export interface JobQueue {
  readonly kind: "memory" | "redis";
  /** Throws QueueFullError (429) or DrainingError (503). */
  submit(request: EditJobRequest, meta: JobMeta): Promise<JobView>;
  /** `blobs: false`: state only, without the upload and result images (what a status poll needs). */
  get(id: string, o?: { blobs?: boolean }): Promise<JobView | undefined>;
  /** Cancels a waiting or running job wherever it runs; undefined when unknown. */
  cancel(id: string): Promise<JobView | undefined>;
  /** Deletes a finished job and its result; false when unknown or not finished. */
  remove(id: string): Promise<boolean>;
  /** Jobs of this owner waiting or running (every replica's with Redis). */
  activeFor(owner: string): Promise<number>;
  /** Resolves with the job once it is final. */
  waitFor(id: string): Promise<JobView>;
  /**
   * Calls `on` as the job starts, steps and ends, wherever it runs (events.ts); returns the
   * unsubscribe. Best effort: a listener also re-reads the job for what it may have missed.
   */
  watch(id: string, on: (u: LiveUpdate) => void): () => void;
  /** Calls the webhooks of jobs that end from now on (with Redis, every replica's jobs, delivered by BullMQ). */
  enableWebhooks(sender: JobWebhooks): void;
  /** Jobs waiting and running: this process's, or every replica's with Redis. */
  counts(): Promise<{ queued: number; running: number }>;
  /** Ready to take work: inference workers up, and the store reachable. */
  readonly ready: boolean;
  readonly draining: boolean;
  readonly model: ModelInfo | undefined;
  readonly workersReady: number;
  /** Stops taking work; resolves true when this process's running jobs have finished. */
  drain(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** One webhook delivery: the same id (and body) on every attempt (../webhooks.ts). */
export interface WebhookDelivery {
  id: string;
  url: string;
  payload: string;
}

/** What a queue needs of the webhook sender (../webhooks.ts), named here so these types import nothing back. */
export interface JobWebhooks {
  deliveryFor(job: JobView): WebhookDelivery | null;
  deliverInProcess(d: WebhookDelivery): void;
  attempt(d: WebhookDelivery): Promise<void>;
  delayAfter(attempt: number): number;
}
