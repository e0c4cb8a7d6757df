/** /v1/jobs: an edit queued (202 + id), its state and progress, its result, and DELETE. */
import express, { type Response } from "express";
import type { Logger } from "pino";
import { type editSubmission, failureOf } from "../edit-submission.js";
import { AppError } from "../errors.js";
import { EventStreams } from "../events.js";
import type { Metrics } from "../metrics.js";
import type { ServerConfig } from "../../config/server.js";
import type { JobQueue, JobView } from "../queue/types.js";
import type { editResults } from "../results.js";
import type { Upload } from "../upload.js";
import type { ResponseBody } from "../responses.js";
import { route } from "./route.js";
import type { WebhookSender } from "../webhooks.js";

export function jobsRouter(d: {
  queue: JobQueue;
  submission: ReturnType<typeof editSubmission>;
  results: ReturnType<typeof editResults>;
  upload: Upload;
  logger: Logger;
  webhooks: WebhookSender;
  config: Pick<ServerConfig, "ssePerJob" | "ssePerKey" | "sseEndGraceMs">;
  metrics: Metrics;
}): express.Router {
  const { queue, submission, results, upload, logger, webhooks } = d;
  // the caps on open event streams and what they hold for slow clients (events.ts)
  const streams = new EventStreams(d.config);
  streams.register(d.metrics.registry);
  const { finalize, sendResult, jobView, findJob, notFound } = results;
  const r = express.Router();
  const accepted = (job: JobView, res: Response) => res.status(202).location(`/v1/jobs/${job.id}`).json(jobView(job));
  // a retry with the Idempotency-Key of a job already queued gets that job, as it is now (idempotency.ts)
  const idempotent = submission.idempotency.guard("POST /v1/jobs", "job", accepted);
  r.post("/", upload(["image", "mask", "like"]), idempotent, route(async (req, res) => {
    // checked before anything is queued: a refused webhook_url is never called
    const body = (req.body ?? {}) as Record<string, unknown>;
    const webhookUrl = await webhooks.check(body.webhook_url);
    delete body.webhook_url;
    const { job } = await submission.submitRequest(req, res, webhookUrl ? { webhookUrl } : {});
    await submission.idempotency.submitted(res, job);
    // scoring starts as soon as the edit is done, so the result is ready when asked for
    queue
      .waitFor(job.id)
      .then((j) => (j.state === "succeeded" ? finalize(j) : undefined))
      .catch((e) => logger.warn({ err: e }, "scoring failed"));
    accepted(job, res);
  }));
  r.get("/:id", route(async (req, res) => {
    res.json(jobView(await findJob(req, res, { blobs: false })));
  }));
  // Server-Sent Events of the job's life (events.ts); another key's job is a 404 like any other
  r.get("/:id/events", route(async (req, res) => {
    const job = await findJob(req, res, { blobs: false });
    streams.stream(req, res, { queue, job, status: jobView });
  }));
  r.get("/:id/result", route(async (req, res) => {
    const job = await findJob(req, res);
    if (job.state === "queued" || job.state === "running") throw new AppError(409, "not_ready", `job is ${job.state}`, "id");
    if (job.state !== "succeeded") throw failureOf(job);
    if (job.evicted || !job.output) {
      throw new AppError(410, "result_evicted", "the result was dropped before its time-to-live to keep the server's retained results under REWARD_EDIT_RETAINED_BYTES; edit again", "id");
    }
    // ?format= wins; without it, the response_format the job was submitted with
    const asked = req.query.format ?? job.meta.responseFormat;
    if (asked !== "image" && asked !== "json") throw new AppError(400, "invalid_field", 'format must be "image" or "json"', "format");
    const k = req.query.candidate;
    let candidate: number | undefined;
    if (k !== undefined) {
      candidate = Number(k);
      if (!Number.isInteger(candidate) || candidate < 0 || candidate >= job.output!.candidates.length) {
        throw new AppError(400, "invalid_field", `candidate must be an integer in 0..${job.output!.candidates.length - 1}`, "candidate");
      }
    }
    await sendResult(job, res, asked, candidate);
  }));
  // DELETE cancels a job still waiting or running (202), and deletes a finished one with its result (200)
  r.delete("/:id", route(async (req, res) => {
    const job = await findJob(req, res, { blobs: false });
    if (job.state === "queued" || job.state === "running") {
      res.status(202).json(jobView((await queue.cancel(job.id)) ?? job));
      return;
    }
    if (!(await queue.remove(job.id))) throw notFound();
    results.forget(job.id);
    res.status(200).json({ id: job.id, state: job.state, deleted: true } satisfies ResponseBody<"JobDeleted">);
  }));

  return r;
}
