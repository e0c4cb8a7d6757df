/**
 * The express application: middleware (access log, security headers, CORS, auth) and the routers,
 * one per resource (routes/); one error middleware turns every failure into JSON naming its field.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import cors from "cors";
import express from "express";
import helmet from "helmet";
import type { Logger } from "pino";
import { pinoHttp } from "pino-http";
import { JudgeScorer, LocalScorer, judgeConfigFrom } from "../../reward/index.js";
import type { ServerConfig } from "../config/server.js";
import { ROOT } from "../paths.js";
import type { Preset } from "../presets/index.js";
import { type ProvenanceSetup, createMarker } from "../provenance/index.js";
import { bearerAuth } from "./auth.js";
import { editSubmission } from "./edit-submission.js";
import { AppError, errorHandler } from "./errors.js";
import type { Metrics } from "./metrics.js";
import type { JobQueue } from "./queue/types.js";
import { editResults } from "./results.js";
import { catalogRouter } from "./routes/catalog.js";
import { editsRouter } from "./routes/edits.js";
import { jobsRouter } from "./routes/jobs.js";
import { openAiErrorBody, openAiImagesRouter } from "./routes/openai-images.js";
import { WebhookSender } from "./webhooks.js";
import { operationsRouter } from "./routes/operations.js";
import { scoresRouter } from "./routes/scores.js";
import { uploadParser } from "./upload.js";

export interface AppDeps {
  config: ServerConfig;
  queue: JobQueue;
  presets: Record<string, Preset>;
  metrics: Metrics;
  logger: Logger;
  /** null when no judge is configured: the local scorer is used. */
  judge: JudgeScorer | null;
  /** How results are marked (setupProvenance); null or absent: not at all. */
  provenance?: ProvenanceSetup;
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
export const ALLOWED_METHODS: Array<[string, string[]]> = [
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
  ["/v1/jobs/:id/events", ["GET", "HEAD"]],
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
  const upload = uploadParser(config);
  const submission = editSubmission(d);
  const results = editResults({ config, queue, scorer: d.judge ?? new LocalScorer() });
  // each finished job with a webhook_url is called back, signed (webhooks.ts)
  const webhooks = new WebhookSender(config, logger, (j) => JSON.stringify({ type: `job.${j.state}`, timestamp: new Date().toISOString(), data: results.jobView(j) }));
  if (config.webhookSecret) queue.enableWebhooks(webhooks);

  // no auth: probes, scrapers, the page itself
  app.use(operationsRouter({ config, queue, metrics }));
  app.use("/", express.static(path.join(ROOT, "src", "web"), { index: "index.html" }));

  app.use("/v1", bearerAuth(config.apiKeys));
  app.use("/v1", catalogRouter({ queue, presets: d.presets }));
  app.use("/v1/edits", editsRouter({ submission, results, upload }));
  app.use("/v1/jobs", jobsRouter({ queue, submission, results, upload, logger, webhooks, config, metrics }));
  app.use("/v1/scores", scoresRouter({ config, judge: d.judge, upload, trustAnchors: d.provenance?.trustAnchors }));
  app.use("/v1/images", openAiImagesRouter({ config, submission, upload, marker: createMarker(d.provenance ?? null), queue }));

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
  app.use("/v1/images", errorHandler(onError, openAiErrorBody));
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
