/** The embedded queue: jobs live in this process (JobPool), as before REDIS_URL existed. */
import type { Job, JobPool } from "../jobs.js";
import { REPLICA_NAME } from "../replica.js";
import type { EditJobRequest } from "../worker/protocol.js";
import type { JobMeta, JobQueue, JobView, JobWebhooks } from "./types.js";
import { type LiveUpdate, liveProgress } from "./live.js";

export class MemoryQueue implements JobQueue {
  readonly kind = "memory";
  private readonly meta = new Map<string, JobMeta>();

  constructor(private readonly pool: JobPool) {
    // meta goes when the pool forgets the job
    pool.on("forgotten", (id: string) => this.meta.delete(id));
    // every event stream listens on the pool: many listeners are expected, not a leak
    pool.setMaxListeners(0);
  }

  enableWebhooks(sender: JobWebhooks): void {
    this.pool.on("finished", (j: Job) => {
      const d = sender.deliveryFor(this.view(j));
      if (d) sender.deliverInProcess(d);
    });
  }

  watch(id: string, on: (u: LiveUpdate) => void): () => void {
    const started = (j: Job) => j.id === id && on({ kind: "started" });
    const progress = (j: Job) => j.id === id && on({ kind: "progress", progress: liveProgress(j.progress, j.startedAt, j.preview) });
    const finished = (j: Job) => j.id === id && on({ kind: "final" });
    this.pool.on("started", started).on("progress", progress).on("finished", finished);
    return () => void this.pool.off("started", started).off("progress", progress).off("finished", finished);
  }

  private view(job: Job): JobView {
    return {
      id: job.id,
      state: job.state,
      createdAt: job.createdAt,
      progress: job.progress,
      position: this.pool.position(job),
      request: job.request,
      meta: this.meta.get(job.id) ?? { preset: null, responseFormat: "image" },
      output: job.output,
      error: job.error,
      evicted: job.evicted,
      replica: job.startedAt === undefined ? undefined : REPLICA_NAME,
    };
  }

  async submit(request: EditJobRequest, meta: JobMeta): Promise<JobView> {
    const job = this.pool.submit(request);
    this.meta.set(job.id, meta);
    return this.view(job);
  }

  async get(id: string): Promise<JobView | undefined> {
    const job = this.pool.get(id);
    return job && this.view(job);
  }

  async cancel(id: string): Promise<JobView | undefined> {
    const job = this.pool.get(id);
    if (!job) return undefined;
    this.pool.cancel(job);
    return this.view(job);
  }

  async remove(id: string): Promise<boolean> {
    return this.pool.forget(id);
  }

  async activeFor(owner: string): Promise<number> {
    return this.pool.countActive((j) => this.meta.get(j.id)?.owner === owner);
  }

  async waitFor(id: string): Promise<JobView> {
    const job = this.pool.get(id);
    if (!job) throw new Error(`no job ${id}`);
    return this.view(await job.done);
  }

  async counts() {
    return { queued: this.pool.queued, running: this.pool.running };
  }

  get ready() {
    return this.pool.workersReady > 0 && !this.pool.isDraining;
  }
  get draining() {
    return this.pool.isDraining;
  }
  get model() {
    return this.pool.model;
  }
  get workersReady() {
    return this.pool.workersReady;
  }

  drain(timeoutMs: number) {
    return this.pool.drain(timeoutMs);
  }

  close() {
    return this.pool.close();
  }
}
