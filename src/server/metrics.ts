/** Prometheus metrics of the service. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    editDuration: new Histogram({
      name: "reward_edit_edit_duration_seconds",
      help: "Wall time of an edit job from start to result, by outcome; per replica (jobs this process ran)",
      labelNames: ["outcome"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    stepDuration: new Histogram({
      name: "reward_edit_step_duration_seconds",
      help: "Wall time of one denoising step (batched UNet call plus scheduler)",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    queueDepth: new Gauge({ name: "reward_edit_queue_depth", help: "Jobs waiting for a worker: in this process, or in Redis for every replica when REDIS_URL is set", registers: [registry] }),
    inFlight: new Gauge({ name: "reward_edit_in_flight", help: "Jobs running on workers: in this process, or on every replica when REDIS_URL is set", registers: [registry] }),
    rejections: new Counter({ name: "reward_edit_rejections_total", help: "Requests refused, by HTTP status and code", labelNames: ["status", "code"], registers: [registry] }),
    errors: new Counter({ name: "reward_edit_errors_total", help: "Server-side failures, by code", labelNames: ["code"], registers: [registry] }),
    judgeLatency: new Histogram({
      name: "reward_edit_judge_request_seconds",
      help: "Latency of judge requests",
      labelNames: ["outcome"],
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
