/**
 * The express application: routes validate, call the job pool or the reward module, and map
 * results to statuses; one error middleware turns every failure into JSON naming its field.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import cors from "cors";
import helmet from "helmet";
import { pinoHttp } from "pino-http";
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import multer from "multer";
import type { Logger } from "pino";
import { JudgeScorer, LocalScorer, PERSPECTIVES, type ScoreResult, type Scorer, judgeConfigFrom } from "../../reward/index.js";
import type { ServerConfig } from "../config/server.js";
import { ROOT } from "../paths.js";
import type { Preset } from "../presets/index.js";
import { bearerAuth } from "./auth.js";
import { AppError, errorHandler } from "./errors.js";
import { editSubmission, failureOf } from "./edit-submission.js";
import type { JobQueue, JobView, ModelInfo } from "./queue/types.js";
import type { Metrics } from "./metrics.js";
import { decodableFormats } from "./formats.js";
import { openApiDocument } from "./openapi.js";
import { openAiErrorHandler, openAiImagesRouter } from "./routes/openai-images.js";
import { type EditForm, checkImage, checkImageSize, checkMask, editSchema, parseForm, scoreSchema } from "./validation.js";
import type { EditJobOutput } from "./worker/protocol.js";

export interface AppDeps {
  config: ServerConfig;
  queue: JobQueue;
  presets: Record<string, Preset>;
  metrics: Metrics;
  logger: Logger;
  /** null when no judge is configured: the local scorer is used. */
  judge: JudgeScorer | null;
}

const MIME = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" } as const;

/** JSON safe for an HTTP header: non-ASCII (an instruction in any language) as \u escapes. */
const headerJson = (v: unknown) => JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

type Handler = (req: Request, res: Response) => Promise<void>;
const route = (h: Handler) => (req: Request, res: Response, next: NextFunction) => h(req, res).catch(next);

/** Every round of a refined job, with its image, for the JSON response. */
function refineView(out: EditJobOutput, best: number) {
  const r = out.refine!;
  return {
    scorer: r.scorer,
    stopped: r.stopped,
    chosen_round: best + 1,
    rounds: r.rounds.map((x, i) => ({
      round: x.round,
      seed: x.seed,
      rewards: x.rewards,
      text_guidance: x.textGuidance,
      image_guidance: x.imageGuidance,
      from: x.from,
      feedback: x.feedback,
      changes: x.changes,
      met: x.met,
      merit: x.merit,
      scores: x.scores,
      image: Buffer.from(out.candidates[i].image).toString("base64"),
    })),
  };
}

/** Mean of the perspectives a scorer could judge: the best-of-N criterion. */
export function overall(s: ScoreResult): number | null {
  const v = PERSPECTIVES.map((p) => s.perspectives[p]).filter((x) => x.status === "scored" && x.score !== undefined);
  return v.length ? v.reduce((a, x) => a + x.score!, 0) / v.length : null;
}

/**
 * A photo sent to a model that has only seen small synthetic scenes is edited anyway (it may be
 * what the user wants to see), but the response says why the result will disappoint.
 */
export function domainWarnings(m: ModelInfo | undefined, width: number, height: number): string[] {
  const dom = m?.manifest.domain;
  if (dom?.kind !== "synthetic" || Math.max(width, height) <= 2 * dom.working_size) return [];
  return [
    `model ${m!.name} was trained only on ${dom.working_size} px synthetic scenes; a ${width}x${height} photo is edited at ${dom.working_size} px and the result will be blurred and often wrong (README: "Use a real model")`,
  ];
}

const PROBES = new Set(["/healthz", "/readyz", "/metrics"]);
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * One info line per request (probes and scrapes excepted), with a request id: the caller's
 * x-request-id when it is a plain token, else the trace id of a W3C traceparent, else a new UUID;
 * it is returned as x-request-id. Client errors are info lines like any other answer; server
 * errors are also logged, with their cause, by the error handler.
 */
function accessLog(logger: Logger) {
  return pinoHttp({
    logger,
    genReqId: (req: IncomingMessage, res: ServerResponse) => {
      const given = req.headers["x-request-id"];
      const trace = TRACEPARENT.exec(String(req.headers.traceparent ?? ""))?.[1];
      const id = typeof given === "string" && /^[\w.:-]{1,128}$/.test(given) ? given : (trace ?? randomUUID());
      res.setHeader("x-request-id", id);
      return id;
    },
    autoLogging: { ignore: (req) => PROBES.has((req.url ?? "").split("?")[0]) },
    customLogLevel: () => "info",
    // method, path and status only: no headers (API keys) and no bodies (photos)
    serializers: {
      req: (req: { id: unknown; method: string; url: string }) => ({ id: req.id, method: req.method, url: req.url }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}

/** Every route and its methods (GET routes answer HEAD too), for the 405 answers. */
const ALLOWED_METHODS: Array<[string, string[]]> = [
  ["/healthz", ["GET", "HEAD"]],
  ["/readyz", ["GET", "HEAD"]],
  ["/metrics", ["GET", "HEAD"]],
  ["/openapi.json", ["GET", "HEAD"]],
  ["/v1/presets", ["GET", "HEAD"]],
  ["/v1/models", ["GET", "HEAD"]],
  ["/v1/models/examples/:file", ["GET", "HEAD"]],
  ["/v1/edits", ["POST"]],
  ["/v1/jobs", ["POST"]],
  ["/v1/jobs/:id", ["GET", "HEAD", "DELETE"]],
  ["/v1/jobs/:id/result", ["GET", "HEAD"]],
  ["/v1/scores", ["POST"]],
  ["/v1/images/edits", ["POST"]],
];

export function createApp(d: AppDeps): express.Express {
  const { config, queue, metrics, logger } = d;
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", false);
  app.use(accessLog(logger));
  // the page loads only its own script, style and the API; images may be data: or blob: URLs
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          imgSrc: ["'self'", "data:", "blob:"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'none'"],
          frameAncestors: ["'none'"],
        },
      },
      // the page may be served on plain http on a private network: no HSTS from the app itself
      strictTransportSecurity: false,
      crossOriginResourcePolicy: false,
      frameguard: { action: "deny" },
    }),
  );
  if (config.corsOrigins.length) {
    const allow = cors({ origin: config.corsOrigins.includes("*") ? "*" : config.corsOrigins });
    // the metrics are for the scraper, never for a browser page of another origin
    app.use((req, res, next) => (req.path === "/metrics" ? next() : allow(req, res, next)));
  }
  const scorer: Scorer = d.judge ?? new LocalScorer();
  const upload = (fields: string[]): RequestHandler => {
    const parse = multer({ storage: multer.memoryStorage(), limits: { fileSize: config.maxUploadBytes, files: fields.length + 1, fields: 16, fieldSize: 8192, parts: 32 } }).fields(
      fields.map((name) => ({ name, maxCount: 1 })),
    );
    return (req, res, next) => {
      // multer passes anything else through untouched; the fields would then look merely missing
      if (!req.is("multipart/form-data")) {
        return next(new AppError(415, "unsupported_media_type", `send multipart/form-data (got ${req.get("content-type") ?? "no content type"})`, "body"));
      }
      parse(req, res, (err?: unknown) => {
        // busboy's own parse errors (no boundary, a cut-off body, a bad part header) are the client's
        if (err && !(err instanceof multer.MulterError) && !(err instanceof AppError)) {
          return next(new AppError(400, "malformed_multipart", `the multipart body cannot be read: ${(err as Error).message}`, "body"));
        }
        next(err);
      });
    };
  };
  const files = (req: Request) => (req.files ?? {}) as Record<string, Express.Multer.File[]>;
  const auth = bearerAuth(config.apiKeys);

  // ---- health, readiness, metrics, docs (no auth: probes and scrapers) ----
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", (_req, res) => {
    const ready = queue.ready;
    res.status(ready ? 200 : 503).json({ ready, model: queue.model?.name ?? null, workers: queue.workersReady, draining: queue.draining, store: queue.kind });
  });
  app.get("/metrics", route(async (_req, res) => {
    const c = await queue.counts().catch(() => null);
    if (c) {
      metrics.queueDepth.set(c.queued);
      metrics.inFlight.set(c.running);
    }
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  }));
  app.get("/openapi.json", route(async (_req, res) => {
    res.json(openApiDocument(config, (await decodableFormats()).names));
  }));
  app.use("/", express.static(path.join(ROOT, "src", "web"), { index: "index.html" }));

  // ---- API ----
  app.use("/v1", auth);
  app.get("/v1/presets", (_req, res) => {
    res.json({ presets: Object.values(d.presets) });
  });
  app.get("/v1/models", (_req, res) => {
    const m = queue.model;
    res.json({
      models: m
        ? [{ name: m.name, dir: path.basename(m.dir), takes_rewards: m.takesRewards, provider: m.provider, domain: m.manifest.domain ?? null, manifest: m.manifest }]
        : [],
    });
  });
  // the model's one-click example images: only files its manifest lists, so no path reaches outside
  app.get("/v1/models/examples/:file", (req, res, next) => {
    const m = queue.model;
    const image = `examples/${req.params.file}`;
    if (!m?.manifest.domain?.examples.some((e) => e.image === image)) return next(new AppError(404, "not_found", "no such example", "file"));
    res.sendFile(path.join(path.resolve(m.dir), image));
  });

  const submission = editSubmission(d);
  const { submitForm, awaitEdit } = submission;
  const submit = async (req: Request, res: Response): Promise<{ job: JobView; form: EditForm }> => {
    const form = parseForm(editSchema(config), req.body);
    const { image, pixels } = await checkImageSize(files(req).image?.[0], "image", config.maxPixels);
    const mask = await checkMask(files(req).mask?.[0], "luminance", config.maxPixels);
    return { job: await submitForm(form, { image, pixels, mask }, { responseFormat: form.response_format, owner: res.locals.owner ?? null }), form };
  };

  /**
   * Scores the candidates once per job on this replica (best-of-N), kept as long as results are;
   * the promise is cached, so concurrent requests for one result score it once.
   */
  type Final = Awaited<ReturnType<typeof computeFinal>>;
  const finals = new Map<string, { final: Promise<Final>; at: number }>();
  const finalize = (job: JobView): Promise<Final> => {
    const now = Date.now();
    for (const [id, f] of finals) if (now - f.at > config.jobTtlMs) finals.delete(id);
    let f = finals.get(job.id);
    if (!f) {
      f = { final: computeFinal(job), at: now };
      f.final.catch(() => finals.delete(job.id));
      finals.set(job.id, f);
    }
    return f.final;
  };
  const computeFinal = async (job: JobView) => {
    const out = job.output!;
    // a refined job was scored round by round in the worker: its verdicts are the scores
    if (out.refine) return { best: out.refine.best, scores: out.refine.rounds.map((r) => r.scores) };
    const source = Buffer.from(job.request.image);
    const scores = await Promise.all(
      out.candidates.map((c) =>
        scorer.score({ source, edited: Buffer.from(c.image), instruction: job.request.instruction, mask: job.request.editMask ? Buffer.from(job.request.editMask) : undefined }).catch(() => null),
      ),
    );
    const merit = scores.map((s) => (s ? overall(s) : null) ?? -Infinity);
    const best = merit.indexOf(Math.max(...merit));
    return { best, scores };
  };

  const sendResult = async (job: JobView, res: Response, as: "image" | "json", candidate?: number) => {
    const final = await finalize(job);
    const { scores } = final;
    const out = job.output!;
    // ?candidate=k asks for one candidate by position (how the OpenAI endpoint's urls name the n images)
    const best = candidate ?? final.best;
    const chosen = out.candidates[best];
    const format = job.request.format;
    const params = { ...out.parameters, seed: chosen.seed, preset: job.meta.preset };
    const warnings = domainWarnings(queue.model, out.width, out.height);
    if (as === "json") {
      res.json({
        id: job.id,
        image: Buffer.from(chosen.image).toString("base64"),
        format,
        width: out.width,
        height: out.height,
        parameters: params,
        scores: scores[best],
        candidates: out.candidates.map((c, i) => ({ seed: c.seed, overall: scores[i] ? overall(scores[i]!) : null, chosen: i === best })),
        ...(out.refine ? { refine: refineView(out, best) } : {}),
        detail: { mode: params.detail, kept_fraction: chosen.keptFraction, mask: chosen.mask ? Buffer.from(chosen.mask).toString("base64") : null },
        timings: { total_ms: out.timings.totalMs, ort_ms: out.timings.ortMs },
        warnings,
      });
      return;
    }
    if (warnings.length) res.set("x-reward-edit-warning", headerJson(warnings));
    res.set({
      "x-reward-edit-seed": String(chosen.seed),
      ...(chosen.keptFraction !== null ? { "x-reward-edit-kept-fraction": chosen.keptFraction.toFixed(4) } : {}),
      "x-reward-edit-rewards-applied": String(params.rewardsApplied),
      "x-reward-edit-parameters": headerJson(params),
      "x-reward-edit-scores": headerJson(
        Object.fromEntries(PERSPECTIVES.map((p) => [p, scores[best]?.perspectives[p].score ?? null])),
      ),
    });
    res.type(MIME[format]).send(Buffer.from(chosen.image));
  };

  app.post("/v1/edits", upload(["image", "mask"]), route(async (req, res) => {
    const { job: submitted, form } = await submit(req, res);
    const job = await awaitEdit(submitted, res);
    await sendResult(job, res, form.response_format);
  }));

  const errorView = (e: AppError) => ({ code: e.code, message: e.message, field: e.field });
  const jobView = (job: JobView) => ({
    id: job.id,
    state: job.state,
    progress: job.state === "succeeded" ? 100 : job.progress.steps ? Math.round((100 * job.progress.step) / job.progress.steps) : 0,
    step: job.progress.step,
    steps: job.progress.steps,
    queue_position: job.position,
    created_at: new Date(job.createdAt).toISOString(),
    error: job.state === "failed" || job.state === "cancelled" ? errorView(failureOf(job)) : undefined,
    result: job.state === "succeeded" && !job.evicted ? `/v1/jobs/${job.id}/result` : undefined,
    ...(job.evicted ? { evicted: true } : {}),
  });
  const notFound = () => new AppError(404, "not_found", "no such job (unknown or expired)", "id");
  /** A job of another key is as unknown as one that never was. */
  const findJob = async (req: Request, res: Response) => {
    const job = await queue.get(String(req.params.id));
    if (!job || (job.meta.owner ?? null) !== (res.locals.owner ?? null)) throw notFound();
    return job;
  };

  app.post("/v1/jobs", upload(["image", "mask"]), route(async (req, res) => {
    const { job } = await submit(req, res);
    // scoring starts as soon as the edit is done, so the result is ready when asked for
    queue
      .waitFor(job.id)
      .then((j) => (j.state === "succeeded" ? finalize(j) : undefined))
      .catch((e) => logger.warn({ err: e }, "scoring failed"));
    res.status(202).location(`/v1/jobs/${job.id}`).json(jobView(job));
  }));
  app.get("/v1/jobs/:id", route(async (req, res) => {
    res.json(jobView(await findJob(req, res)));
  }));
  app.get("/v1/jobs/:id/result", route(async (req, res) => {
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
  app.delete("/v1/jobs/:id", route(async (req, res) => {
    const job = await findJob(req, res);
    if (job.state === "queued" || job.state === "running") {
      res.status(202).json(jobView((await queue.cancel(job.id)) ?? job));
      return;
    }
    if (!(await queue.remove(job.id))) throw notFound();
    finals.delete(job.id);
    res.status(200).json({ id: job.id, state: job.state, deleted: true });
  }));

  app.use("/v1/images", openAiImagesRouter({ config, submission, upload }));

  app.post("/v1/scores", upload(["source", "edited", "mask"]), route(async (req, res) => {
    const form = parseForm(scoreSchema, req.body);
    const source = await checkImage(files(req).source?.[0], "source", config.maxPixels);
    const edited = await checkImage(files(req).edited?.[0], "edited", config.maxPixels);
    const backend = form.backend ?? (d.judge ? "judge" : "local");
    if (backend === "judge" && !d.judge) throw new AppError(400, "invalid_field", "no judge is configured on this server", "backend");
    const s = backend === "judge" ? d.judge! : new LocalScorer();
    const mask = await checkMask(files(req).mask?.[0], "luminance", config.maxPixels);
    res.json(await s.score({ source, edited, instruction: form.instruction, mask }));
  }));

  // a known path asked with another method: 405 naming the methods it takes
  for (const [p, methods] of ALLOWED_METHODS) {
    app.all(p, (_req, _res, next) => next(new AppError(405, "method_not_allowed", `this endpoint takes ${methods.join(", ")}`, undefined, { allow: methods.join(", ") })));
  }
  app.use("/v1", (_req, _res, next) => next(new AppError(404, "not_found", "no such endpoint")));
  const onError = (e: AppError, cause: unknown) => {
    if (e.status >= 500) {
      metrics.errors.inc({ code: e.code });
      logger.error({ err: cause, code: e.code }, e.message);
    } else metrics.rejections.inc({ status: String(e.status), code: e.code });
  };
  // OpenAI's clients read OpenAI's error shape: everything under /v1/images answers in it
  app.use("/v1/images", openAiErrorHandler(onError));
  app.use(errorHandler(onError));
  return app;
}

export function judgeFromEnv(metrics: Metrics): JudgeScorer | null {
  const c = judgeConfigFrom();
  if (!c) return null;
  const j = new JudgeScorer(c);
  j.onRequest = (ms, outcome) => metrics.judgeLatency.observe({ outcome }, ms / 1000);
  return j;
}
