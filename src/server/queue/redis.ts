/**
 * Jobs shared by every replica through Redis (REDIS_URL), with BullMQ: the standard job queue on
 * Node, whose Lua scripts make take-over atomic (a job is active on one worker at a time, behind
 * a lock that worker keeps renewing) and whose stalled-job check moves the jobs of a replica that
 * died back to the wait list for another (at-least-once; a job completes, and stores its result,
 * once). Any replica accepts, reports, serves and cancels any job.
 *
 * Each replica runs a BullMQ worker whose concurrency is its number of inference workers, so a
 * job leaves Redis only when a worker here is free. Cancelling reaches the replica running the job
 * over a pub/sub channel; a waiting job is cancelled by a flag the worker checks before starting.
 */
import { randomUUID } from "node:crypto";
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job as BullJob } from "bullmq";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { DrainingError, type Job, type JobPool, QueueFullError, StoreFullError } from "../jobs.js";
import type { EditJobOutput, EditJobRequest, WorkerError } from "../worker/protocol.js";
import { REPLICA_NAME } from "../replica.js";
import { RedisConfigError, redisOptions } from "./redis-options.js";
import { FINAL_STATES, type JobMeta, type JobQueue, type JobState, type JobView, type JobWebhooks, type WebhookDelivery } from "./types.js";
import { type LiveProgress, type LiveUpdate, liveProgress } from "./live.js";
import { DeliveryError, WEBHOOK_ATTEMPTS } from "../webhooks.js";

export interface RedisQueueOptions {
  url: string;
  /** Used when the URL carries no password (REDIS_PASSWORD, from a Secret). */
  password?: string;
  queueSize: number;
  jobTtlMs: number;
  /** How long a replica's claim on a job lasts without renewal: the take-over delay after a crash. */
  lockMs: number;
  /** Prefix of every key, so several deployments can share one Redis. */
  prefix?: string;
  logger: Logger;
}

interface StoredData {
  request: Omit<EditJobRequest, "image" | "editMask"> & { image: string; editMask?: string };
  meta: JobMeta;
}
type StoredCandidate = Omit<EditJobOutput["candidates"][number], "image" | "mask"> & { image: string; mask?: string };
type StoredOutput = Omit<EditJobOutput, "candidates"> & { candidates: StoredCandidate[] };

const QUEUE = "edits";
/** How long an upload is kept while its job waits (a finished job's blobs follow the job TTL). */
const BLOB_WAIT_MS = 24 * 3600_000;
/** How long a Redis memory refusal keeps this replica not-ready (a successful write clears it). */
const FULL_MS = 10_000;

/**
 * Admission in one step: the waiting count (BullMQ's wait list plus admissions still on their way
 * into it) is checked and a place reserved atomically, so replicas submitting at once cannot all
 * see room for the same place. The reservation is released once the job is in the list (or after
 * a few seconds, should its replica die in between).
 */
const ADMIT = `
local waiting = redis.call('LLEN', KEYS[1]) + tonumber(redis.call('GET', KEYS[2]) or '0')
if waiting >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1`;
const RELEASE = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n`;
const CANCELLED = "cancelled";
/**
 * The job's small state (what a status poll reads) holds no image: the upload, its mask and the
 * results live in a hash of their own (`blobs:<id>`), read only for a result or for running the job.
 */
const stateOf = (r: EditJobRequest): StoredData["request"] => ({ ...r, image: "", editMask: r.editMask ? "" : undefined });

/** The output without its images (they go to the blobs hash). */
function outputState(o: EditJobOutput): StoredOutput {
  return { ...o, candidates: o.candidates.map((c) => ({ ...c, image: "", mask: c.mask ? "" : undefined })) };
}

const EMPTY = new Uint8Array(0);

/** A failure as stored in BullMQ's failedReason: JSON of the worker error, or the cancel marker. */
function decodeFailure(reason: string | undefined): { state: JobState; error: WorkerError } {
  if (reason === CANCELLED) return { state: "cancelled", error: { name: "AbortError", message: "cancelled" } };
  try {
    const e = JSON.parse(reason ?? "") as WorkerError;
    if (e && typeof e.message === "string") return { state: "failed", error: e };
  } catch {
    // a failure BullMQ itself recorded (a job stalled too often, say)
  }
  return { state: "failed", error: { name: "Error", message: reason ?? "the edit failed" } };
}

export class RedisQueue implements JobQueue {
  readonly kind = "redis";
  private readonly conn: Redis;
  private readonly sub: Redis;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private worker?: Worker;
  private hooks?: { queue: Queue; worker: Worker };
  private sweeper?: NodeJS.Timeout;
  private isDraining = false;
  private connected = false;
  private readonly prefix: string;

  /** Checks Redis is reachable (one clear error if not), then connects and starts taking jobs. */
  static async connect(pool: JobPool, o: RedisQueueOptions): Promise<RedisQueue> {
    const { host, port, options } = redisOptions(o.url, o.password);
    const probe = new Redis({ ...options, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1, connectTimeout: 5000 });
    let cause: Error | undefined;
    probe.on("error", (e: Error) => (cause ??= e));
    try {
      await probe.connect();
      await probe.ping();
    } catch (err) {
      throw new RedisConfigError(`cannot reach Redis at ${host}:${port} (REDIS_URL): ${(cause ?? (err as Error)).message}`);
    } finally {
      probe.disconnect();
    }
    const q = new RedisQueue(pool, o);
    await q.start();
    return q;
  }

  private constructor(
    private readonly pool: JobPool,
    private readonly o: RedisQueueOptions,
  ) {
    const { options } = redisOptions(o.url, o.password);
    this.prefix = o.prefix ?? "reward-edit";
    this.conn = new Redis(options);
    this.sub = new Redis(options);
    this.conn.on("ready", () => (this.connected = true));
    this.conn.on("close", () => (this.connected = false));
    this.conn.on("error", (err) => o.logger.warn({ err: err.message }, "redis connection"));
    this.sub.on("error", () => {});
    const bull = { connection: this.conn, prefix: this.prefix };
    this.queue = new Queue(QUEUE, bull);
    this.queue.on("error", (err) => o.logger.warn({ err: err.message }, "redis queue"));
    this.events = new QueueEvents(QUEUE, { connection: this.conn.duplicate(), prefix: this.prefix });
    this.events.on("error", (err) => o.logger.warn({ err: err.message }, "redis queue events"));
    // every event stream listens here: many listeners are expected, not a leak
    this.events.setMaxListeners(0);
  }

  /**
   * Webhook calls as BullMQ jobs of their own queue, retried with backoff and taken over from a
   * replica that dies. Every replica that sees a job end queues its call under one id (the
   * webhook-id), so BullMQ keeps one delivery however many replicas saw the end, and a call is
   * still owed when the replica that ran the job died right after.
   */
  enableWebhooks(sender: JobWebhooks): void {
    const bull = { connection: this.conn, prefix: this.prefix };
    const queue = new Queue("webhooks", bull);
    queue.on("error", (err) => this.o.logger.warn({ err: err.message }, "redis webhook queue"));
    const worker = new Worker(
      "webhooks",
      async (job) => {
        try {
          await sender.attempt(job.data as WebhookDelivery);
        } catch (err) {
          if (err instanceof DeliveryError && err.permanent) throw new UnrecoverableError(err.message);
          throw err;
        }
      },
      {
        connection: this.conn.duplicate(),
        prefix: this.prefix,
        name: REPLICA_NAME,
        concurrency: 8,
        lockDuration: this.o.lockMs,
        stalledInterval: Math.max(500, Math.floor(this.o.lockMs / 2)),
        settings: { backoffStrategy: (attemptsMade: number) => sender.delayAfter(attemptsMade) },
      },
    );
    worker.on("error", (err) => this.o.logger.warn({ err: err.message }, "redis webhook worker"));
    worker.on("failed", (job, err) => this.o.logger.warn({ webhook: job?.id, attempt: job?.attemptsMade, err: err.message }, "webhook attempt failed"));
    this.hooks = { queue, worker };
    const ttl = Math.ceil(this.o.jobTtlMs / 1000);
    const owed = async (e: { jobId: string }) => {
      const view = await this.get(e.jobId, { blobs: false });
      const d = view && FINAL_STATES.includes(view.state) ? sender.deliveryFor(view) : null;
      if (!d) return;
      await queue.add("deliver", d, { jobId: d.id, attempts: WEBHOOK_ATTEMPTS, backoff: { type: "custom" }, removeOnComplete: { age: ttl }, removeOnFail: { age: ttl } });
    };
    const onEnd = (e: { jobId: string }) => void owed(e).catch((err) => this.o.logger.warn({ err: (err as Error).message, job: e.jobId }, "webhook not queued"));
    this.events.on("completed", onEnd).on("failed", onEnd);
  }

  /** BullMQ's own queue events (a Redis stream every replica reads) carry the job's life to any replica. */
  watch(id: string, on: (u: LiveUpdate) => void): () => void {
    const active = (e: { jobId: string }) => e.jobId === id && on({ kind: "started" });
    const progress = (e: { jobId: string; data: unknown }) => {
      const p = e.data as LiveProgress;
      if (e.jobId === id && p && typeof p === "object" && typeof p.step === "number") on({ kind: "progress", progress: p });
    };
    const final = (e: { jobId: string }) => e.jobId === id && on({ kind: "final" });
    this.events.on("active", active).on("progress", progress).on("completed", final).on("failed", final);
    return () => void this.events.off("active", active).off("progress", progress).off("completed", final).off("failed", final);
  }

  /** The connection and key prefix, for what every replica must share besides jobs (Idempotency-Keys: ../idempotency.ts). */
  shared(): { conn: Redis; prefix: string } {
    return { conn: this.conn, prefix: this.prefix };
  }

  private fullUntil = 0;
  private cancelKey = (id: string) => `${this.prefix}:cancel:${id}`;
  private blobKey = (id: string) => `${this.prefix}:blobs:${id}`;
  private ownerKey = (owner: string) => `${this.prefix}:owner:${owner}`;
  private get channel() {
    return `${this.prefix}:cancel`;
  }

  private async start(): Promise<void> {
    await this.sub.subscribe(this.channel);
    this.sub.on("message", (_ch, id: string) => this.worker?.cancelJob(id, CANCELLED));
    await this.events.waitUntilReady();
    // BullMQ's removeOnComplete age only acts when a later job completes: sweep on a timer too,
    // so an idle service still forgets results after the TTL
    this.sweeper = setInterval(() => {
      for (const type of ["completed", "failed"] as const) this.queue.clean(this.o.jobTtlMs, 1000, type).catch(() => {});
    }, Math.min(this.o.jobTtlMs, 30_000)).unref();
    this.worker = new Worker(QUEUE, (job, _token, signal) => this.process(job, signal), {
      connection: this.conn.duplicate(),
      prefix: this.prefix,
      // BullMQ records the worker's name on each job it takes (processedBy)
      name: REPLICA_NAME,
      concurrency: Math.max(1, this.pool.capacity),
      lockDuration: this.o.lockMs,
      stalledInterval: Math.max(500, Math.floor(this.o.lockMs / 2)),
      // a job whose replica died more than this often is given up as failed
      maxStalledCount: 3,
    });
    this.worker.on("error", (err) => this.o.logger.warn({ err: err.message }, "redis worker"));
    await this.worker.waitUntilReady();
  }

  /** Runs one job on this replica's inference workers. */
  private async process(bj: BullJob, signal?: AbortSignal): Promise<StoredOutput> {
    const data = bj.data as StoredData;
    if (await this.conn.exists(this.cancelKey(bj.id!))) throw new UnrecoverableError(CANCELLED);
    const [image, mask] = await this.conn.hmgetBuffer(this.blobKey(bj.id!), "image", "mask");
    if (!image) throw new UnrecoverableError(JSON.stringify({ name: "Error", message: "the job's image is gone from the store (expired)" }));
    const job: Job = this.pool.submit({ ...data.request, image: new Uint8Array(image), editMask: mask ? new Uint8Array(mask) : undefined }, { admitted: true });
    const onAbort = () => this.pool.cancel(job);
    signal?.addEventListener("abort", onAbort);
    // progress is written at most every 250 ms: every step of a small model would flood Redis
    let last = 0;
    const onProgress = (j: Job) => {
      // the first and last steps always go out, so a listener sees the job move and finish stepping
      const edge = j.progress.step === 1 || j.progress.step === j.progress.steps;
      if (j !== job || (!edge && Date.now() - last < 250)) return;
      last = Date.now();
      // what listeners on any replica get (events.ts), preview included; status polls read step and steps
      bj.updateProgress({ ...liveProgress(j.progress, j.startedAt, j.preview) }).catch(() => {});
    };
    this.pool.on("progress", onProgress);
    try {
      const done = await job.done;
      if (done.state === "succeeded") {
        const out = done.output!;
        const fields: Record<string, Buffer> = {};
        out.candidates.forEach((c, k) => {
          fields[`out:${k}`] = Buffer.from(c.image);
          if (c.mask) fields[`outmask:${k}`] = Buffer.from(c.mask);
        });
        // kept as long as BullMQ keeps the finished job
        await this.conn.multi().hset(this.blobKey(bj.id!), fields).pexpire(this.blobKey(bj.id!), this.o.jobTtlMs).exec();
        return outputState(out);
      }
      if (done.state === "cancelled") throw new UnrecoverableError(CANCELLED);
      throw new UnrecoverableError(JSON.stringify(done.error ?? { name: "Error", message: "the edit failed" }));
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.pool.off("progress", onProgress);
    }
  }

  async submit(request: EditJobRequest, meta: JobMeta): Promise<JobView> {
    if (this.isDraining) throw new DrainingError();
    // the limit is global: jobs waiting in Redis, whichever replica accepted them, checked and
    // reserved in one script
    const reserve = `${this.prefix}:admitting`;
    const admitted = await this.conn.eval(ADMIT, 2, this.queue.toKey("wait"), reserve, this.o.queueSize, 10_000).catch((e) => this.storeError(e));
    if (admitted !== 1) throw new QueueFullError(this.pool.retryAfterSeconds());
    const ttl = Math.ceil(this.o.jobTtlMs / 1000);
    const data: StoredData = { request: stateOf(request), meta };
    const jobId = randomUUID();
    let bj;
    try {
      // the upload first, with room to wait in the queue; its result shortens this to the job TTL
      const blobs: Record<string, Buffer> = { image: Buffer.from(request.image), ...(request.editMask ? { mask: Buffer.from(request.editMask) } : {}) };
      // two plain commands, not MULTI: an OOM refusal then arrives as itself, not as EXECABORT
      await this.conn.hset(this.blobKey(jobId), blobs).catch((e) => this.storeError(e));
      await this.conn.pexpire(this.blobKey(jobId), Math.max(this.o.jobTtlMs, BLOB_WAIT_MS)).catch((e) => this.storeError(e));
      bj = await this.queue.add("edit", data, { jobId, attempts: 1, removeOnComplete: { age: ttl }, removeOnFail: { age: ttl } }).catch((e) => this.storeError(e));
      this.fullUntil = 0;
    } finally {
      await this.conn.eval(RELEASE, 1, reserve).catch(() => {});
    }
    if (meta.owner) {
      const key = this.ownerKey(meta.owner);
      await this.conn.multi().sadd(key, bj.id!).pexpire(key, this.o.jobTtlMs).exec();
    }
    return (await this.view(bj.id!, false))!;
  }

  /** `blobs`: also read the upload and the results (a status poll needs neither). */
  private async view(id: string, blobs = true): Promise<JobView | undefined> {
    // the state first, then the job's fields: a job seen as finished then has its result or reason
    const bstate = await this.queue.getJobState(id);
    if (bstate === "unknown") return undefined;
    const bj = await this.queue.getJob(id);
    if (!bj) return undefined;
    // past its time-to-live a finished job is gone, whether or not a sweep has removed it yet
    if ((bstate === "completed" || bstate === "failed") && bj.finishedOn && Date.now() - bj.finishedOn > this.o.jobTtlMs) return undefined;
    const data = bj.data as StoredData;
    let state: JobState;
    let error: WorkerError | undefined;
    let output: EditJobOutput | undefined;
    if (bstate === "completed") {
      state = "succeeded";
      const stored = bj.returnvalue as StoredOutput;
      output = { ...stored, candidates: stored.candidates.map((c) => ({ ...c, image: EMPTY, mask: c.mask !== undefined ? EMPTY : undefined })) };
    } else if (bstate === "failed") ({ state, error } = decodeFailure(bj.failedReason));
    else if (bstate === "active") state = "running";
    else state = (await this.conn.exists(this.cancelKey(bj.id!))) ? "cancelled" : "queued";
    if (state === "cancelled") error = { name: "AbortError", message: "cancelled" };
    const stored = (typeof bj.progress === "object" && bj.progress) as { step?: number; steps?: number } | false;
    // only the counts: the stored progress also carries the live preview
    const progress = stored ? { step: stored.step ?? 0, steps: stored.steps ?? 0 } : { step: 0, steps: 0 };
    const view: JobView = {
      id: bj.id!,
      state,
      createdAt: bj.timestamp,
      progress: progress as JobView["progress"],
      position: state === "queued" ? await this.position(bj.id!) : null,
      request: { ...data.request, image: EMPTY, editMask: data.request.editMask !== undefined ? EMPTY : undefined },
      meta: data.meta,
      output,
      error,
      replica: state === "queued" ? undefined : bj.processedBy,
    };
    if (blobs) await this.fillBlobs(view);
    return view;
  }

  /** Reads a job's images into its view; a result whose images are gone answers as evicted (410). */
  private async fillBlobs(view: JobView): Promise<void> {
    const key = this.blobKey(view.id);
    const n = view.output?.candidates.length ?? 0;
    const names = ["image", "mask", ...Array.from({ length: n }, (_, k) => [`out:${k}`, `outmask:${k}`]).flat()];
    const values = await this.conn.hmgetBuffer(key, ...names);
    const get = (name: string) => values[names.indexOf(name)];
    view.request.image = new Uint8Array(get("image") ?? EMPTY);
    if (view.request.editMask !== undefined) view.request.editMask = get("mask") ? new Uint8Array(get("mask")!) : undefined;
    if (view.output) {
      if (view.output.candidates.some((_, k) => !get(`out:${k}`))) {
        view.output = undefined;
        view.evicted = true;
        return;
      }
      view.output.candidates = view.output.candidates.map((c, k) => ({ ...c, image: new Uint8Array(get(`out:${k}`)!), mask: get(`outmask:${k}`) ? new Uint8Array(get(`outmask:${k}`)!) : undefined }));
    }
  }

  /**
   * FIFO position among the waiting jobs of every replica. BullMQ pushes new jobs on the left of
   * its wait list and takes from the right, so the distance from the right end is the position;
   * reading ids only (not the jobs, whose data carry whole images).
   */
  private async position(id: string): Promise<number | null> {
    const ids = await this.conn.lrange(this.queue.keys.wait, 0, -1);
    const i = ids.lastIndexOf(id);
    return i < 0 ? null : ids.length - 1 - i;
  }

  async get(id: string, o: { blobs?: boolean } = {}): Promise<JobView | undefined> {
    return this.view(id, o.blobs ?? true);
  }

  async cancel(id: string): Promise<JobView | undefined> {
    const before = await this.get(id, { blobs: false });
    if (!before || FINAL_STATES.includes(before.state)) return before;
    // the flag stops a waiting job before it starts; the message aborts a running one wherever it runs
    await this.conn.set(this.cancelKey(id), "1", "PX", this.o.jobTtlMs);
    await this.conn.publish(this.channel, id);
    return this.get(id, { blobs: false });
  }

  async remove(id: string): Promise<boolean> {
    const state = await this.queue.getJobState(id);
    if (state !== "completed" && state !== "failed") return false;
    const bj = await this.queue.getJob(id);
    if (!bj) return false;
    await bj.remove();
    await this.conn.del(this.cancelKey(id), this.blobKey(id));
    return true;
  }

  /** The owner's job ids live in a set; ids whose jobs finished or expired are dropped as they are counted. */
  async activeFor(owner: string): Promise<number> {
    const key = this.ownerKey(owner);
    let n = 0;
    for (const id of await this.conn.smembers(key)) {
      const state = await this.queue.getJobState(id);
      if (state === "completed" || state === "failed" || state === "unknown") await this.conn.srem(key, id);
      else n++;
    }
    return n;
  }

  async waitFor(id: string): Promise<JobView> {
    // events answer at once; a poll covers events missed while Redis restarted
    for (;;) {
      const j = await this.get(id, { blobs: false });
      if (!j) throw new Error(`no job ${id}`);
      if (FINAL_STATES.includes(j.state)) return (await this.get(id)) ?? j;
      await new Promise<void>((resolve) => {
        const done = (e: { jobId: string }) => {
          if (e.jobId === id) finish();
        };
        const finish = () => {
          clearTimeout(t);
          this.events.off("completed", done);
          this.events.off("failed", done);
          resolve();
        };
        const t = setTimeout(finish, 1000);
        this.events.on("completed", done);
        this.events.on("failed", done);
      });
    }
  }

  async counts() {
    const c = await this.queue.getJobCounts("waiting", "active", "prioritized", "delayed");
    return { queued: (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0), running: c.active ?? 0 };
  }

  get ready() {
    return this.connected && this.pool.workersReady > 0 && !this.isDraining && !this.full;
  }

  /** Redis refused a write for memory within the last FULL_MS: not ready, so a balancer sends work elsewhere. */
  get full(): boolean {
    return Date.now() < this.fullUntil;
  }

  /** Redis's OOM answer (maxmemory with noeviction) becomes a 503 with Retry-After, and not-ready for a while. */
  private storeError(e: unknown): never {
    if (/\bOOM\b/.test((e as Error)?.message ?? "")) {
      this.fullUntil = Date.now() + FULL_MS;
      throw new StoreFullError(Math.ceil(FULL_MS / 1000));
    }
    // ioredis attaches the command and its arguments (the photo's bytes) to its errors: log the message only
    throw new Error(`redis: ${(e as Error)?.message ?? String(e)}`);
  }
  get draining() {
    return this.isDraining;
  }
  get model() {
    return this.pool.model;
  }
  get workersReady() {
    return this.pool.workersReady;
  }

  /** Takes no new job; waits for the ones running here. Waiting jobs stay in Redis for the others. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.isDraining = true;
    const closed = this.worker?.close().then(() => true) ?? Promise.resolve(true);
    return Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    await this.worker?.close(true).catch(() => {});
    await this.hooks?.worker.close(true).catch(() => {});
    await this.hooks?.queue.close().catch(() => {});
    await Promise.all([this.queue.close(), this.events.close()]).catch(() => {});
    this.sub.disconnect();
    this.conn.disconnect();
    await this.pool.close();
  }
}
