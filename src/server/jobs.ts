/**
 * Edit jobs over a pool of inference workers: a bounded FIFO queue, progress, cancellation,
 * results kept for a while, crash recovery and draining for rolling updates.
 */
import type { JobPreview } from "./queue/live.js";
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { Worker } from "node:worker_threads";
import type { ProvenanceSetup } from "../provenance/index.js";
import type { EditJobOutput, EditJobRequest, FromWorker, WorkerError, WorkerInit } from "./worker/protocol.js";

import type { JobState, ModelInfo } from "./queue/types.js";

export type { JobState };

export interface Job {
  id: string;
  state: JobState;
  request: EditJobRequest;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  progress: { step: number; steps: number };
  /** The latest live preview of the forming image (job events, docs/progress.md). */
  preview?: JobPreview;
  output?: EditJobOutput;
  error?: WorkerError;
  /** The result was dropped before its time-to-live to keep retained bytes under the cap (410). */
  evicted?: boolean;
  /** Resolves when the job reaches a final state. */
  done: Promise<Job>;
}

export type { JobPreview } from "./queue/live.js";

/** The job store refused the write (Redis at its memory limit): nothing was queued. */
export class StoreFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("the job store is full");
  }
}

export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super("the edit queue is full");
  }
}

export class DrainingError extends Error {
  constructor() {
    super("the server is shutting down");
  }
}

interface Slot {
  worker: Worker;
  cancel: Int32Array;
  job?: Job;
  ready: boolean;
}

export interface PoolOptions {
  modelDir: string;
  workers: number;
  queueSize: number;
  jobTtlMs: number;
  providers: string[];
  ortThreads: number;
  /** MiB of each worker's encode cache (editor/pipeline/encode-cache.ts). */
  encodeCacheMb?: number;
  /** Folder of ONNX Runtime's optimised graphs (SessionOptions.optimizedCacheDir). */
  ortCacheDir?: string;
  /** Default VAE tiling of the workers' edits. */
  vaeTiling?: "auto" | "on" | "off";
  /** Most bytes finished jobs may keep (uploads and results); the oldest are dropped first (0: no limit). */
  retainedBytes?: number;
  /** Most decoded source pixels the running jobs may hold together (0: no limit). */
  pixelBudget?: number;
  /** How the workers mark results (setupProvenance); absent or null: not at all. */
  provenance?: ProvenanceSetup;
}


const FINAL: JobState[] = ["succeeded", "failed", "cancelled"];

export class JobPool extends EventEmitter {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly jobs = new Map<string, Job>();
  private readonly resolvers = new Map<string, (j: Job) => void>();
  private draining = false;
  private closed = false;
  private sweeper?: NodeJS.Timeout;
  model?: ModelInfo;
  /** Bytes held by finished jobs (uploads and results), for the retention cap. */
  private retainedBytes = 0;
  /** Recent edit durations, for Retry-After estimates. */
  private recentMs: number[] = [];

  constructor(private readonly o: PoolOptions) {
    super();
  }

  /** Starts the workers and waits until each has loaded the model. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.o.workers }, () => this.spawn()));
    this.sweeper = setInterval(() => this.sweep(), Math.min(this.o.jobTtlMs, 30_000)).unref();
  }

  private spawn(): Promise<void> {
    const cancel = new SharedArrayBuffer(4);
    const init: WorkerInit = { modelDir: this.o.modelDir, providers: this.o.providers, ortThreads: this.o.ortThreads, cancel, provenance: this.o.provenance ?? null, encodeCacheMb: this.o.encodeCacheMb, vaeTiling: this.o.vaeTiling, ortCacheDir: this.o.ortCacheDir };
    const worker = new Worker(new URL("./worker/edit-worker.js", import.meta.url), { workerData: init });
    const slot: Slot = { worker, cancel: new Int32Array(cancel), ready: false };
    this.slots.push(slot);
    return new Promise((resolve, reject) => {
      worker.on("message", (m: FromWorker) => {
        if (m.type === "ready") {
          slot.ready = true;
          this.model = m.model;
          resolve();
          this.pump();
        } else if (m.type === "init-failed") reject(new Error(m.error.message));
        else this.onWorkerMessage(slot, m);
      });
      worker.on("error", (err) => {
        reject(err);
        this.emit("worker-error", err);
      });
      worker.on("exit", () => {
        const idx = this.slots.indexOf(slot);
        if (idx >= 0) this.slots.splice(idx, 1);
        if (slot.job) this.finish(slot.job, "failed", undefined, { name: "WorkerCrash", message: "the inference worker stopped unexpectedly" });
        // replace a crashed worker so capacity is kept
        if (!this.closed) this.spawn().catch((e) => this.emit("worker-error", e));
      });
    });
  }

  private onWorkerMessage(slot: Slot, m: FromWorker): void {
    const job = slot.job;
    if (!job || !("jobId" in m) || m.jobId !== job.id) return;
    if (m.type === "progress") {
      // a step's preview may finish encoding after the next step's plain progress: the preview is
      // kept for the next progress event, the step count only goes up
      if (m.preview) job.preview = { step: m.step, steps: m.steps, ...m.preview };
      if (m.step < job.progress.step) return;
      job.progress = { step: m.step, steps: m.steps };
      this.emit("progress", job);
      return;
    }
    slot.job = undefined;
    if (m.type === "done") this.finish(job, "succeeded", m.output);
    else if (m.type === "failed") this.finish(job, m.error.name === "AbortError" ? "cancelled" : "failed", undefined, m.error);
    this.pump();
  }

  private finish(job: Job, state: JobState, output?: EditJobOutput, error?: WorkerError): void {
    if (FINAL.includes(job.state)) return;
    job.state = state;
    job.finishedAt = Date.now();
    job.output = output;
    job.error = error;
    if (state === "succeeded" && job.startedAt) {
      this.recentMs.push(job.finishedAt - job.startedAt);
      if (this.recentMs.length > 20) this.recentMs.shift();
    }
    this.emit("finished", job);
    this.resolvers.get(job.id)?.(job);
    this.resolvers.delete(job.id);
    this.retain(job);
    if (this.draining && this.idle()) this.emit("drained");
  }

  /** Bytes a finished job keeps alive: its upload, mask and results. */
  private static bytesOf(job: Job): number {
    const out = job.output?.candidates.reduce((a, c) => a + c.image.length + (c.mask?.length ?? 0), 0) ?? 0;
    return job.request.image.length + (job.request.editMask?.length ?? 0) + out;
  }

  /**
   * Counts a finished job's bytes and, past the cap, drops the oldest finished jobs' images
   * (never the one that just finished: its caller is about to read it). Their state stays
   * queryable; their result answers 410.
   */
  private retain(job: Job): void {
    const cap = this.o.retainedBytes ?? 0;
    this.retainedBytes += JobPool.bytesOf(job);
    if (cap <= 0) return;
    for (const old of this.jobs.values()) {
      if (this.retainedBytes <= cap) break;
      if (old === job || !FINAL.includes(old.state) || old.evicted) continue;
      this.dropImages(old);
    }
  }

  private dropImages(job: Job): void {
    this.retainedBytes -= JobPool.bytesOf(job);
    job.evicted = true;
    job.output = undefined;
    job.request = { ...job.request, image: new Uint8Array(0), editMask: undefined };
  }

  /** Decoded source pixels of the jobs running now (what their full-resolution buffers scale with). */
  private get runningPixels(): number {
    return this.slots.reduce((a, s) => a + (s.job ? (s.job.request.pixels ?? 0) : 0), 0);
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.job) continue;
      const head = this.queue[0];
      if (!head) return;
      // memory admission: a job starts only while the running ones leave room for its pixels (a
      // small file of a huge image decodes to hundreds of MB); alone it always may
      const budget = this.o.pixelBudget ?? 0;
      if (budget > 0 && this.running > 0 && this.runningPixels + (head.request.pixels ?? 0) > budget) return;
      const job = this.queue.shift()!;
      slot.job = job;
      job.state = "running";
      job.startedAt = Date.now();
      Atomics.store(slot.cancel, 0, 0);
      // a copy, so the request's bytes stay available to the scorer after the transfer
      slot.worker.postMessage({ type: "edit", jobId: job.id, request: job.request });
      this.emit("started", job);
    }
  }

  get capacity(): number {
    return this.slots.length;
  }
  get queued(): number {
    return this.queue.length;
  }
  get running(): number {
    return this.slots.filter((s) => s.job).length;
  }
  get workersReady(): number {
    return this.slots.filter((s) => s.ready).length;
  }
  get isDraining(): boolean {
    return this.draining;
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.slots.every((s) => !s.job);
  }

  /** Seconds until a queue slot is likely to free up. */
  retryAfterSeconds(): number {
    const avg = this.recentMs.length ? this.recentMs.reduce((a, b) => a + b, 0) / this.recentMs.length : 2000;
    return Math.max(1, Math.ceil(((this.queue.length + 1) * avg) / Math.max(1, this.slots.length) / 1000));
  }

  /**
   * `admitted`: the caller (the Redis queue) has already admitted the job against a global limit
   * and only hands over as many as there are workers.
   */
  submit(request: EditJobRequest, o: { admitted?: boolean } = {}): Job {
    if (this.draining && !o.admitted) throw new DrainingError();
    const free = this.slots.some((s) => s.ready && !s.job);
    if (!o.admitted && !free && this.queue.length >= this.o.queueSize) throw new QueueFullError(this.retryAfterSeconds());
    let resolve!: (j: Job) => void;
    const done = new Promise<Job>((r) => (resolve = r));
    const job: Job = { id: randomUUID(), state: "queued", request, createdAt: Date.now(), progress: { step: 0, steps: 0 }, done };
    this.resolvers.set(job.id, resolve);
    this.jobs.set(job.id, job);
    this.queue.push(job);
    this.pump();
    return job;
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  /** 0-based position among waiting jobs, or null when not waiting. */
  position(job: Job): number | null {
    const i = this.queue.indexOf(job);
    return i < 0 ? null : i;
  }

  cancel(job: Job): void {
    if (job.state === "queued") {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.finish(job, "cancelled", undefined, { name: "AbortError", message: "cancelled before it started" });
    } else if (job.state === "running") {
      const slot = this.slots.find((s) => s.job === job);
      if (slot) Atomics.store(slot.cancel, 0, 1);
    }
  }

  /** Forgets a finished job now (DELETE of a finished job); false when it is unknown or not finished. */
  forget(id: string): boolean {
    const j = this.jobs.get(id);
    if (!j || !FINAL.includes(j.state)) return false;
    if (!j.evicted) this.retainedBytes -= JobPool.bytesOf(j);
    this.jobs.delete(id);
    this.emit("forgotten", id);
    return true;
  }

  /** Jobs not yet finished whose request satisfies `match`. */
  countActive(match: (j: Job) => boolean): number {
    let n = 0;
    for (const j of this.jobs.values()) if (!FINAL.includes(j.state) && match(j)) n++;
    return n;
  }

  /** Finished jobs are forgotten once their time-to-live has passed. */
  private sweep(): void {
    const now = Date.now();
    for (const [id, j] of this.jobs) {
      if (j.finishedAt && now - j.finishedAt > this.o.jobTtlMs) {
        if (!j.evicted) this.retainedBytes -= JobPool.bytesOf(j);
        this.jobs.delete(id);
        this.emit("forgotten", id);
      }
    }
  }

  /** Stops accepting work and resolves when queued and running jobs have finished (or the timeout passes). */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    if (this.idle()) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.once("drained", () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
