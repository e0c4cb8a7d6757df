/**
 * Job events (GET /v1/jobs/{id}/events, docs/progress.md): what a job's queue reports as it goes,
 * and the Server-Sent Events stream made of it.
 *
 * Event ids are fixed by the job's life, not by the connection: queued 0, started 1, progress at
 * step s 1 + s, the terminal event TERMINAL_ID. A stream only ever sends ids above the last it
 * sent (or the client's Last-Event-ID), so a reconnect continues without repeats and a step seen
 * twice (a live event and a snapshot) goes out once.
 */
import type { Request, Response } from "express";
import { type LiveProgress, type LiveUpdate, TERMINAL_ID } from "./queue/live.js";
import { FINAL_STATES, type JobQueue, type JobView } from "./queue/types.js";

export { type LiveProgress, type LiveUpdate, TERMINAL_ID, liveProgress } from "./queue/live.js";

/** How often the stream re-reads the job, for transitions whose live event was missed (a Redis reconnect). */
const POLL_MS = 2000;
const KEEPALIVE_MS = 15_000;

/**
 * Streams a job's events until its terminal one. `job` has been found and its owner checked;
 * `status` renders the terminal event's data (the job's status, as GET /v1/jobs/{id} answers).
 */
export function streamJobEvents(
  req: Request,
  res: Response,
  d: { queue: JobQueue; job: JobView; status: (j: JobView) => unknown },
): void {
  const { queue, status } = d;
  const id = d.job.id;
  const previews = req.query.previews === "1" || req.query.previews === "true";
  const resume = Number(req.get("last-event-id") ?? req.query.last_event_id);
  let last = Number.isInteger(resume) ? resume : -1;
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
  res.write("retry: 1000\n\n");

  const send = (eid: number, event: string, data: unknown) => {
    if (ended || eid <= last) return;
    last = eid;
    res.write(`id: ${eid}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const started = (j: JobView) => send(1, "started", { id: j.id, replica: j.replica ?? null });
  // each preview goes out once, with the first progress event after it was made
  let previewStep = 0;
  const progress = (p: LiveProgress) => {
    const { preview, ...rest } = p;
    const fresh = previews && preview && preview.step > previewStep;
    if (fresh && 1 + p.step > last) previewStep = preview.step;
    send(1 + p.step, "progress", fresh ? { ...rest, preview: preview.url, preview_width: preview.width, preview_height: preview.height, preview_step: preview.step } : rest);
  };
  const end = () => {
    if (ended) return;
    ended = true;
    unwatch();
    clearInterval(poll);
    clearInterval(keepalive);
    res.end();
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
      if (j.progress.step > 0) send(1 + j.progress.step, "progress", { step: j.progress.step, steps: j.progress.steps, elapsed_ms: null, eta_ms: null });
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
  const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
  // the response's close: the client went away (or the stream ended)
  res.on("close", end);
  look();
}
