/**
 * Job events (GET /v1/jobs/{id}/events, docs/progress.md): what a job's queue reports as it goes,
 * and the Server-Sent Events stream made of it.
 *
 * Event ids are fixed by the job's life, not by the connection: queued 0, started 1, progress at
 * step s 1 + s, the terminal event TERMINAL_ID. A stream only ever sends ids above the last it
 * sent (or the client's Last-Event-ID), so a reconnect continues without repeats and a step seen
 * twice (a live event and a snapshot) goes out once.
 *
 * A stream holds little for a client that does not read: once the socket pushes back, progress
 * events supersede each other and at most one preview waits (EventQueue), the stream ends after
 * its terminal event and its socket is destroyed when that does not drain in time, and each job
 * and each API key may hold only so many streams open (EventStreams).
 */
import type { Request, Response } from "express";
import { Counter, Gauge, type Registry } from "prom-client";
import type { ServerConfig } from "../config/server.js";
import { AppError } from "./errors.js";
import { type LiveProgress, TERMINAL_ID } from "./queue/live.js";
import { FINAL_STATES, type JobQueue, type JobView } from "./queue/types.js";

export { type LiveProgress, type LiveUpdate, TERMINAL_ID, liveProgress } from "./queue/live.js";

/** How often the stream re-reads the job, for transitions whose live event was missed (a Redis reconnect). */
const POLL_MS = 2000;
const KEEPALIVE_MS = 15_000;
/**
 * Bytes of events other than previews one stream may hold queued while its client does not read;
 * superseded progress is dropped first, so only a stream far behind on its few lifecycle events
 * reaches it, and is then closed (its client resumes with Last-Event-ID).
 */
export const SSE_QUEUE_BYTES = 64 * 1024;

type FrameKind = "preview" | "progress" | "other";
interface Frame {
  text: string;
  bytes: number;
  kind: FrameKind;
}

/**
 * One response's writes, with backpressure: written straight through while the socket takes
 * them; after a write is refused (res.write false), held here until "drain", where a newer
 * progress event replaces a held one and a newer preview replaces the held preview.
 */
class EventQueue {
  private held: Frame[] = [];
  private heldBytes = 0;
  private blocked = false;
  private ending = false;
  private closed = false;
  private grace?: NodeJS.Timeout;

  constructor(
    private readonly res: Response,
    private readonly o: { graceMs: number; onDrop: (f: Frame) => void },
  ) {
    res.on("drain", () => this.flush());
    res.on("close", () => {
      this.closed = true;
      this.held = [];
      this.heldBytes = 0;
      clearTimeout(this.grace);
    });
  }

  /** Bytes this stream keeps in memory: its held events and what the response still buffers. */
  get bytes(): number {
    return this.closed ? 0 : this.heldBytes + this.res.writableLength;
  }

  write(text: string, kind: FrameKind): void {
    if (this.closed || this.ending) return;
    if (!this.blocked) {
      this.blocked = !this.res.write(text);
      return;
    }
    // progress is skippable (the next one says more); a preview only gives way to a newer preview
    if (kind !== "other") this.drop((f) => f.kind === "progress" || (kind === "preview" && f.kind === "preview"));
    const bytes = Buffer.byteLength(text);
    this.held.push({ text, bytes, kind });
    this.heldBytes += bytes;
    const other = this.held.reduce((a, f) => a + (f.kind === "preview" ? 0 : f.bytes), 0);
    if (other > SSE_QUEUE_BYTES) this.res.destroy();
  }

  /** A comment line (keep-alive): pointless while the client is not reading. */
  comment(text: string): void {
    if (!this.closed && !this.ending && !this.blocked) this.blocked = !this.res.write(`: ${text}\n\n`);
  }

  /** Ends the response once the held events are out; destroys it when that takes longer than graceMs. */
  end(): void {
    if (this.ending || this.closed) return;
    this.ending = true;
    this.grace = setTimeout(() => this.res.destroy(), this.o.graceMs);
    this.grace.unref();
    this.res.once("finish", () => clearTimeout(this.grace));
    if (!this.held.length) this.res.end();
  }

  private drop(match: (f: Frame) => boolean): void {
    this.held = this.held.filter((f) => {
      if (!match(f)) return true;
      this.heldBytes -= f.bytes;
      this.o.onDrop(f);
      return false;
    });
  }

  private flush(): void {
    this.blocked = false;
    while (this.held.length && !this.blocked && !this.closed) {
      const f = this.held.shift()!;
      this.heldBytes -= f.bytes;
      this.blocked = !this.res.write(f.text);
    }
    if (this.ending && !this.held.length && !this.closed) this.res.end();
  }
}

/**
 * Last-Event-ID (header) or last_event_id (query): a decimal event id, digits only; absent or
 * empty is a fresh stream. Anything else (0x10, 1e1, -1, " 16") is a 400 naming the field, not
 * a guess: Number() would read "0x10" as 16 and resume in the wrong place.
 */
export function parseLastEventId(req: Request): number | null {
  const header = req.get("last-event-id");
  const [field, raw] = header !== undefined && header !== "" ? ["last-event-id", header] : ["last_event_id", req.query.last_event_id];
  if (raw === undefined || raw === "") return null;
  if (typeof raw !== "string" || !/^[0-9]{1,15}$/.test(raw)) {
    throw new AppError(400, "invalid_field", `${field} must be an event id this stream sent: decimal digits only`, field);
  }
  return Number(raw);
}

type StreamLimits = Pick<ServerConfig, "ssePerJob" | "ssePerKey" | "sseEndGraceMs">;

/**
 * The event streams one server has open: the per-job and per-key caps, and what the streams hold
 * in memory for slow clients (queuedBytes, also the reward_edit_sse_queued_bytes gauge).
 */
export class EventStreams {
  private readonly open = new Set<EventQueue>();
  private readonly perJob = new Map<string, number>();
  private readonly perKey = new Map<string, number>();
  /** Previews and progress events dropped for clients that did not keep up. */
  dropped = 0;

  constructor(private readonly limits: StreamLimits) {}

  get count(): number {
    return this.open.size;
  }

  /** Bytes held for the open streams now: events waiting for a slow client plus the responses' own buffers. */
  queuedBytes(): number {
    let n = 0;
    for (const q of this.open) n += q.bytes;
    return n;
  }

  /** Gauges and a counter of these streams on the server's registry (GET /metrics). */
  register(registry: Registry): void {
    const streams = this;
    for (const name of ["reward_edit_sse_streams", "reward_edit_sse_queued_bytes", "reward_edit_sse_dropped_total"]) registry.removeSingleMetric(name);
    new Gauge({ name: "reward_edit_sse_streams", help: "Job event streams open on this replica", registers: [registry], collect() { this.set(streams.count); } });
    new Gauge({ name: "reward_edit_sse_queued_bytes", help: "Bytes this replica holds for job event streams whose clients have not read them yet", registers: [registry], collect() { this.set(streams.queuedBytes()); } });
    let seen = 0;
    new Counter({
      name: "reward_edit_sse_dropped_total",
      help: "Progress events and previews left out of job event streams whose clients did not keep up",
      registers: [registry],
      collect() {
        this.inc(streams.dropped - seen);
        seen = streams.dropped;
      },
    });
  }

  /**
   * Streams a job's events until its terminal one. `job` has been found and its owner checked;
   * `status` renders the terminal event's data (the job's status, as GET /v1/jobs/{id} answers).
   * Throws (before anything is written) a 400 for a malformed Last-Event-ID and a 429 past a cap.
   */
  stream(req: Request, res: Response, d: { queue: JobQueue; job: JobView; status: (j: JobView) => unknown }): void {
    const id = d.job.id;
    const resume = parseLastEventId(req);
    // an id at or past the terminal one (a client that saw the end, or made one up) gets the
    // terminal event again, never an empty stream its EventSource would reopen forever
    const last = resume === null ? -1 : Math.min(resume, TERMINAL_ID - 1);
    // without API keys every client is the one anonymous owner: the key cap is then a total
    const key = String(res.locals.owner ?? "");
    const { ssePerJob, ssePerKey } = this.limits;
    if (ssePerJob > 0 && (this.perJob.get(id) ?? 0) >= ssePerJob) {
      throw new AppError(429, "too_many_streams", `job ${id} already has ${ssePerJob} event streams open here (REWARD_EDIT_SSE_PER_JOB); close one first`, undefined, { "retry-after": "5" });
    }
    if (ssePerKey > 0 && (this.perKey.get(key) ?? 0) >= ssePerKey) {
      throw new AppError(429, "too_many_streams", `this API key already has ${ssePerKey} event streams open here (REWARD_EDIT_SSE_PER_KEY); close one first`, undefined, { "retry-after": "5" });
    }
    const out = new EventQueue(res, { graceMs: this.limits.sseEndGraceMs, onDrop: () => this.dropped++ });
    const bump = (m: Map<string, number>, k: string, by: number) => {
      const n = (m.get(k) ?? 0) + by;
      if (n > 0) m.set(k, n);
      else m.delete(k);
    };
    this.open.add(out);
    bump(this.perJob, id, 1);
    bump(this.perKey, key, 1);
    res.once("close", () => {
      this.open.delete(out);
      bump(this.perJob, id, -1);
      bump(this.perKey, key, -1);
    });
    jobEvents(req, res, out, { ...d, last });
  }
}

/** The events themselves, written to `out` from `last` on. */
function jobEvents(req: Request, res: Response, out: EventQueue, d: { queue: JobQueue; job: JobView; status: (j: JobView) => unknown; last: number }): void {
  const { queue, status } = d;
  const id = d.job.id;
  const previews = req.query.previews === "1" || req.query.previews === "true";
  let last = d.last;
  let ended = false;

  res.status(200).set({
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    // nginx and similar proxies would otherwise hold events back in a buffer
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
  // the browser's EventSource retries on its own; a short delay keeps a resumed stream close behind
  out.write("retry: 1000\n\n", "other");

  const send = (eid: number, event: string, data: unknown, kind: FrameKind = "other") => {
    if (ended || eid <= last) return;
    last = eid;
    out.write(`id: ${eid}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`, kind);
  };
  const started = (j: JobView) => send(1, "started", { id: j.id, replica: j.replica ?? null });
  // each preview goes out once, with the first progress event after it was made
  let previewStep = 0;
  const progress = (p: LiveProgress) => {
    const { preview, ...rest } = p;
    const fresh = previews && preview && preview.step > previewStep;
    if (fresh && 1 + p.step > last) previewStep = preview.step;
    if (fresh) send(1 + p.step, "progress", { ...rest, preview: preview.url, preview_width: preview.width, preview_height: preview.height, preview_step: preview.step }, "preview");
    else send(1 + p.step, "progress", rest, "progress");
  };
  const end = () => {
    if (ended) return;
    ended = true;
    unwatch();
    clearInterval(poll);
    clearInterval(keepalive);
    out.end();
  };

  /** Sends what a snapshot of the job says that has not gone out yet. */
  const fromView = (j: JobView | undefined) => {
    if (!j) return end(); // deleted or expired meanwhile
    if (j.state === "queued") send(0, "queued", { id: j.id, position: j.position });
    if (FINAL_STATES.includes(j.state)) {
      send(TERMINAL_ID, j.state, status(j));
      return end();
    }
    if (j.state === "running") {
      started(j);
      if (j.progress.step > 0) send(1 + j.progress.step, "progress", { step: j.progress.step, steps: j.progress.steps, elapsed_ms: null, eta_ms: null }, "progress");
    }
  };

  // updates are handled one at a time, in order: some need a fresh look at the job first
  let chain = Promise.resolve();
  const later = (f: () => Promise<void> | void) => {
    chain = chain.then(f).catch(() => end());
  };
  const look = () => later(async () => fromView(await queue.get(id, { blobs: false })));
  // subscribe before the first look, so nothing between the two is missed
  const unwatch = queue.watch(id, (u) => {
    if (u.kind === "progress") {
      later(async () => {
        if (last < 1) started((await queue.get(id, { blobs: false })) ?? d.job);
        progress(u.progress);
      });
    } else look();
  });
  const poll = setInterval(() => {
    // a draining replica on Redis lets its streams go, so it can stop; the client resumes with
    // Last-Event-ID at another (in memory mode the drain finishes every job, terminal events included)
    if (queue.draining && queue.kind === "redis") end();
    else look();
  }, POLL_MS);
  const keepalive = setInterval(() => out.comment("keepalive"), KEEPALIVE_MS);
  // the response's close: the client went away, the stream ended, or its grace ran out
  res.on("close", end);
  look();
}
