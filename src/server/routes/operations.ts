/** Liveness, readiness, metrics and the API description: no auth (probes, scrapers, tools). */
import express from "express";
import type { ServerConfig } from "../../config/server.js";
import { decodableFormats } from "../formats.js";
import type { Metrics } from "../metrics.js";
import { openApiDocument } from "../openapi.js";
import type { JobQueue } from "../queue/types.js";
import type { ResponseBody } from "../responses.js";
import { route } from "./route.js";

export function operationsRouter(d: { config: ServerConfig; queue: JobQueue; metrics: Metrics }): express.Router {
  const { config, queue, metrics } = d;
  const r = express.Router();
  r.get("/healthz", (_req, res) => {
    res.json({ status: "ok" } satisfies ResponseBody<"Health">);
  });
  r.get("/readyz", (_req, res) => {
    const ready = queue.ready;
    res.status(ready ? 200 : 503).json({ ready, model: queue.model?.name ?? null, workers: queue.workersReady, draining: queue.draining, store: queue.kind } satisfies ResponseBody<"Ready">);
  });
  r.get(
    "/metrics",
    route(async (_req, res) => {
      const c = await queue.counts().catch(() => null);
      if (c) {
        metrics.queueDepth.set(c.queued);
        metrics.inFlight.set(c.running);
      }
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    }),
  );
  r.get(
    "/openapi.json",
    route(async (_req, res) => {
      res.json(openApiDocument(config, (await decodableFormats()).names));
    }),
  );
  return r;
}
