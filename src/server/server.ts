/** startServer / stopServer: boot (config validated, workers ready) and graceful drain. */
import type { Express } from "express";
import { type Server, createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { ConfigError, type ServerConfig, serverConfigFrom } from "../config/server.js";
import { workerLayout } from "../config/workers.js";
import { loadPresets } from "../presets/index.js";
import { resolveModel } from "../pull/resolve.js";
import { isHubSpec } from "../pull/spec.js";
import { createApp, judgeFromEnv } from "./app.js";
import { JobPool } from "./jobs.js";
import { MemoryQueue } from "./queue/memory.js";
import { RedisQueue } from "./queue/redis.js";
import { redisOptions } from "./queue/redis-options.js";
import type { JobQueue } from "./queue/types.js";
import { createMetrics } from "./metrics.js";
import { SignerSetupError, setupProvenance } from "../provenance/index.js";

export interface RunningServer {
  url: string;
  port: number;
  config: ServerConfig;
  pool: JobPool;
  queue: JobQueue;
  http: Server;
  /** The express application (its routing table is what the route tests read). */
  app: Express;
  /** Stop accepting, finish in-flight work (up to drainTimeoutMs), then close. */
  stop(): Promise<void>;
}

export async function startServer(logger: Logger, overrides: Partial<ServerConfig> = {}, env = process.env): Promise<RunningServer> {
  const given = serverConfigFrom(env, overrides);
  // hub:REPO[/SUBFOLDER][@REV]: pulled (or found in the cache) and converted before anything starts
  const config = isHubSpec(given.modelDir) ? { ...given, modelDir: (await resolveModel(given.modelDir, { log: (line) => logger.info(line), dtype: given.hubDtype, compute: given.hubCompute })).dir } : given;
  if (config.redisUrl) redisOptions(config.redisUrl); // a malformed REDIS_URL fails before anything starts
  const presets = config.presetsFile ? loadPresets(config.presetsFile) : loadPresets();
  // a certificate that cannot sign stops start-up here, in one line, before any worker loads
  const provenance = await setupProvenance(config, (line) => logger.warn(line)).catch((err) => {
    throw err instanceof SignerSetupError ? new ConfigError(err.message) : err;
  });
  const metrics = createMetrics();
  const layout = workerLayout(config.workers, config.ortThreads, config.modelDir);
  logger.info(layout, "inference layout");
  const pool = new JobPool({
    modelDir: config.modelDir,
    workers: layout.workers,
    queueSize: config.queueSize,
    jobTtlMs: config.jobTtlMs,
    providers: config.providers,
    ortThreads: layout.ortThreads,
    encodeCacheMb: config.encodeCacheMb,
    vaeTiling: config.vaeTiling,
    ortCacheDir: config.ortCacheDir,
    pixelBudget: config.pixelBudget,
    retainedBytes: config.retainedBytes,
    provenance,
  });
  pool.on("worker-error", (err) => logger.error({ err }, "inference worker failed"));
  pool.on("finished", (job) => {
    if (job.startedAt) metrics.editDuration.observe({ outcome: job.state }, (job.finishedAt - job.startedAt) / 1000);
    for (const ms of job.output?.timings.stepMs ?? []) metrics.stepDuration.observe(ms / 1000);
  });
  await pool.start();
  let queue: JobQueue;
  if (config.redisUrl) {
    try {
      queue = await RedisQueue.connect(pool, { url: config.redisUrl, password: config.redisPassword || undefined, queueSize: config.queueSize, jobTtlMs: config.jobTtlMs, lockMs: config.jobLockMs, logger });
    } catch (err) {
      await pool.close();
      throw err;
    }
  } else queue = new MemoryQueue(pool);
  const app = createApp({ config, queue, presets, metrics, logger, judge: judgeFromEnv(metrics), provenance });
  // Node's own defaults hold a trickled upload open for 300 s and check only every 30 s
  const http = createHttpServer(
    { requestTimeout: config.uploadTimeoutMs, headersTimeout: config.uploadTimeoutMs, connectionsCheckingInterval: Math.min(1_000, config.uploadTimeoutMs) },
    app,
  );
  http.listen(config.port, config.host);
  try {
    await new Promise<void>((resolve, reject) => {
      http.once("listening", resolve);
      http.once("error", reject);
    });
  } catch (err) {
    // a port in use (or not ours to bind): the workers already started would keep the process alive, serving nothing
    await queue.close().catch(() => {});
    throw err;
  }
  const port = (http.address() as AddressInfo).port;
  const host = config.host === "0.0.0.0" ? "127.0.0.1" : config.host;
  logger.info({ port, model: pool.model?.name, workers: layout.workers, ortThreads: layout.ortThreads }, "reward-edit serving");
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info("draining: no new work accepted");
      const closed = new Promise<void>((r) => http.close(() => r()));
      const drained = await queue.drain(config.drainTimeoutMs);
      if (!drained) logger.warn("drain timeout: exiting with work in flight");
      http.closeIdleConnections();
      await closed;
      await queue.close();
      logger.info("stopped");
    })());
  return { url: `http://${host}:${port}`, port, config, pool, queue, http, app, stop };
}
