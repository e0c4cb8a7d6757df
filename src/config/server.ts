/**
 * Server configuration: every key with its environment variable, default and meaning, validated
 * once at boot. README's configuration table is generated from this list (`npm run config-table`).
 */
import { z } from "zod";
import { MAX_INSTRUCTION_LENGTH } from "../limits.js";
import { defaultModelDir } from "../paths.js";
import { MAX_ROUNDS } from "../refine/index.js";

const csv = z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** A duration written with its unit ("24h", "90s", "500ms"), to milliseconds within [min, max]. */
const duration = (minMs: number, maxMs: number) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?(ms|s|m|h|d)$/, "must be a number with its unit: ms, s, m, h or d (24h, 90s)")
    .transform((v) => Math.round(parseFloat(v) * UNIT_MS[/(ms|s|m|h|d)$/.exec(v)![1] as keyof typeof UNIT_MS]))
    .refine((ms) => ms >= minMs && ms <= maxMs, `must be between ${minMs / 1000} s and ${maxMs / 86_400_000} days`);

export const SERVER_SETTINGS = {
  port: { env: "PORT", doc: "TCP port to listen on", schema: int(0, 65535), default: "8080" },
  host: { env: "HOST", doc: "interface to bind", schema: z.string().min(1), default: "0.0.0.0" },
  modelDir: { env: "REWARD_EDIT_MODEL", doc: "model folder to serve, or hub:REPO[/SUBFOLDER][@REV] (pulled and converted on first use; empty: the bundled editor)", schema: z.string(), default: "" },
  workers: {
    env: "REWARD_EDIT_WORKERS",
    doc: "inference worker threads, each with its own sessions; auto = one per core for a model under 256 MB, else one",
    schema: z.union([z.literal("auto"), int(1, 64)]),
    default: "auto",
  },
  ortThreads: { env: "ORT_THREADS", doc: "ONNX Runtime intra-op threads per worker (0 = cores / workers)", schema: int(0, 256), default: "0" },
  hubDtype: { env: "REWARD_EDIT_HUB_DTYPE", doc: "weights a hub: model is converted to: float32, float16 (half the files, not the memory) or int8 (UNets and text encoder: a full-size editor resident in 1.8 instead of 4.4 GiB, 3.7 GiB peak tiled)", schema: z.enum(["float32", "float16", "int8"]), default: "float32" },
  hubCompute: {
    env: "REWARD_EDIT_HUB_COMPUTE",
    doc: "arithmetic of a hub: model converted with REWARD_EDIT_HUB_DTYPE=int8: float32 (int8 weights only) or int8 (the UNets and VAE decoder compute in int8, calibrated on edits of the bundled sample photos and scenes at conversion: a longer first start; docs/performance.md); int8 needs REWARD_EDIT_HUB_DTYPE=int8",
    schema: z.enum(["float32", "int8"]),
    default: "float32",
  },
  vaeTiling: { env: "REWARD_EDIT_VAE_TILING", doc: "VAE on overlapping tiles for edits that do not say (vae_tiling): auto = above a 512 px working size, on = every image larger than a 256 px tile (a full-size model's peak memory 8.0 -> 6.0 GB), off", schema: z.enum(["auto", "on", "off"]), default: "auto" },
  ortCacheDir: { env: "REWARD_EDIT_ORT_CACHE", doc: "folder for ONNX Runtime's optimised graphs: written on the first start, loaded on later ones (a full-size UNet's session 9.7 -> 0.85 s; empty: optimise on every start)", schema: z.string(), default: "" },
  encodeCacheMb: { env: "REWARD_EDIT_ENCODE_CACHE_MB", doc: "MiB per worker for source latents and text embeddings reused by edits of the same photo or instruction (0 = off)", schema: int(0, 65_536), default: "64" },
  providers: { env: "REWARD_EDIT_PROVIDERS", doc: "execution providers in order, CPU is the fallback", schema: csv, default: "cpu" },
  queueSize: { env: "REWARD_EDIT_QUEUE_SIZE", doc: "jobs waiting beyond those running; more are answered 429", schema: int(0, 10_000), default: "16" },
  requestTimeoutMs: { env: "REWARD_EDIT_REQUEST_TIMEOUT_MS", doc: "a synchronous edit taking longer is cancelled (504)", schema: int(1_000, 3_600_000), default: "120000" },
  uploadTimeoutMs: { env: "REWARD_EDIT_UPLOAD_TIMEOUT_MS", doc: "a request whose headers and body have not all arrived by then is answered 408 (slow or stalled uploads)", schema: int(1_000, 600_000), default: "60000" },
  jobTtlMs: { env: "REWARD_EDIT_JOB_TTL_MS", doc: "how long a finished job's result stays retrievable", schema: int(1_000, 86_400_000), default: "600000" },
  maxUploadBytes: { env: "REWARD_EDIT_MAX_UPLOAD_BYTES", doc: "largest accepted image file", schema: int(1_024, 200_000_000), default: "15000000" },
  maxPixels: { env: "REWARD_EDIT_MAX_PIXELS", doc: "largest accepted image area (decompression-bomb guard)", schema: int(1_024, 500_000_000), default: "40000000" },
  maxInstructionLength: { env: "REWARD_EDIT_MAX_INSTRUCTION", doc: "longest instruction, in characters", schema: int(1, 10_000), default: String(MAX_INSTRUCTION_LENGTH) },
  maxSteps: { env: "REWARD_EDIT_MAX_STEPS", doc: "most denoising steps a request may ask for", schema: int(1, 1000), default: "100" },
  retainedBytes: {
    env: "REWARD_EDIT_RETAINED_BYTES",
    doc: "without Redis: most bytes finished jobs keep (uploads and results); past it the oldest results are dropped and answer 410 (0 = no cap)",
    schema: int(0, Number.MAX_SAFE_INTEGER),
    default: "536870912",
  },
  pixelBudget: {
    env: "REWARD_EDIT_PIXEL_BUDGET",
    doc: "most decoded photo pixels the running edits of this process may hold together; an edit that would pass it waits for a running one to finish (0 = no limit)",
    schema: int(0, 2_000_000_000),
    default: "60000000",
  },
  maxJobsPerKey: {
    env: "REWARD_EDIT_MAX_JOBS_PER_KEY",
    doc: "with API keys: most jobs one key may have waiting or running (429 beyond); 0 = no per-key limit",
    schema: int(0, 10_000),
    default: "8",
  },
  maxCandidates: { env: "REWARD_EDIT_MAX_CANDIDATES", doc: "most candidates for best-of-N", schema: int(1, 16), default: "4" },
  maxRefineRounds: { env: "REWARD_EDIT_MAX_REFINE_ROUNDS", doc: "most refinement rounds per edit", schema: int(1, MAX_ROUNDS), default: "4" },
  apiKeys: { env: "REWARD_EDIT_API_KEYS", doc: "comma-separated Bearer keys; empty = no authentication", schema: csv, default: "" },
  corsOrigins: { env: "REWARD_EDIT_CORS_ORIGINS", doc: "comma-separated allowed origins, or * ; empty = no CORS headers", schema: csv, default: "" },
  presetsFile: { env: "REWARD_EDIT_PRESETS", doc: "presets JSON (a ConfigMap mount); default: the bundled presets", schema: z.string(), default: "" },
  drainTimeoutMs: { env: "REWARD_EDIT_DRAIN_TIMEOUT_MS", doc: "on SIGTERM, longest wait for in-flight work", schema: int(0, 3_600_000), default: "60000" },
  redisPassword: { env: "REDIS_PASSWORD", doc: "Redis password when REDIS_URL carries none (from a Secret, so the URL can sit in a ConfigMap)", schema: z.string(), default: "" },
  redisUrl: { env: "REDIS_URL", doc: "redis://host:port shared by every replica: jobs, progress and results go through it (empty: jobs stay in this process)", schema: z.string(), default: "" },
  c2pa: {
    env: "REWARD_EDIT_C2PA",
    doc: "on: every result carries a signed C2PA manifest and XMP saying it was edited by AI (docs/provenance.md); off: results carry no provenance at all",
    schema: z.enum(["on", "off"]),
    default: "on",
  },
  c2paCert: {
    env: "REWARD_EDIT_C2PA_CERT",
    doc: "PEM file: the signing certificate, then its issuers (ES256 or PS256); empty: this installation's self-signed certificate in the cache folder",
    schema: z.string(),
    default: "",
  },
  c2paKey: { env: "REWARD_EDIT_C2PA_KEY", doc: "PEM file: the private key of REWARD_EDIT_C2PA_CERT (EC P-256 or RSA)", schema: z.string(), default: "" },
  c2paTrustAnchors: {
    env: "REWARD_EDIT_C2PA_TRUST_ANCHORS",
    doc: "PEM file of CA certificates whose signatures /v1/scores, score and inspect report as trusted",
    schema: z.string(),
    default: "",
  },
  provenanceParameters: {
    env: "REWARD_EDIT_PROVENANCE_PARAMETERS",
    doc: "on: results record the instruction with the other edit parameters; off: the instruction (and feedback) are left out, the AI mark stays",
    schema: z.enum(["on", "off"]),
    default: "on",
  },
  ssePerJob: { env: "REWARD_EDIT_SSE_PER_JOB", doc: "most event streams (GET /v1/jobs/{id}/events) one job may have open on this replica; more are answered 429 (0 = no limit)", schema: int(0, 100_000), default: "64" },
  ssePerKey: {
    env: "REWARD_EDIT_SSE_PER_KEY",
    doc: "most event streams one API key may have open on this replica, over all its jobs (without API keys: all clients together); more are answered 429 (0 = no limit)",
    schema: int(0, 100_000),
    default: "128",
  },
  sseEndGraceMs: { env: "REWARD_EDIT_SSE_END_GRACE_MS", doc: "how long an event stream's last bytes (its terminal event) may wait for a client that does not read before its connection is closed", schema: int(100, 600_000), default: "5000" },
  jobLockMs: { env: "REWARD_EDIT_JOB_LOCK_MS", doc: "with Redis: how long a replica's claim on a running job lasts unrenewed, i.e. how soon another replica takes over the jobs of one that died", schema: int(1_000, 600_000), default: "30000" },
  webhookSecret: {
    env: "REWARD_EDIT_WEBHOOK_SECRET",
    doc: "whsec_<base64>: signs webhook calls (Standard Webhooks; docs/progress.md); empty: webhook_url is refused",
    schema: z.string().regex(/^(whsec_[A-Za-z0-9+/]+={0,2})?$/, "must be whsec_ followed by base64"),
    default: "",
  },
  webhookAllow: {
    env: "REWARD_EDIT_WEBHOOK_ALLOW",
    doc: "comma-separated hosts webhooks may call although they resolve to loopback, link-local or private addresses (refused by default)",
    schema: csv,
    default: "",
  },
  webhookTimeoutMs: { env: "REWARD_EDIT_WEBHOOK_TIMEOUT_MS", doc: "how long one webhook call may take before it counts as failed", schema: int(100, 120_000), default: "10000" },
  webhookRetryMs: {
    env: "REWARD_EDIT_WEBHOOK_RETRY_MS",
    doc: "delay before a failed webhook call's first retry; each next one waits 4x longer, 5 attempts in all (5 s, 20 s, 80 s, 320 s)",
    schema: int(1, 3_600_000),
    default: "5000",
  },
  idempotencyTtl: {
    env: "REWARD_EDIT_IDEMPOTENCY_TTL",
    doc: "how long an Idempotency-Key is remembered (a retry with it gets the first request's job or answer; docs/api.md): a number with ms, s, m, h or d, 1s..30d",
    schema: duration(1_000, 30 * 86_400_000),
    default: "24h",
  },
  idempotencyMaxBody: {
    env: "REWARD_EDIT_IDEMPOTENCY_MAX_BODY",
    doc: "largest synchronous answer (/v1/edits, /v1/images/edits) kept with its Idempotency-Key to be replayed byte for byte; a larger one is remembered by its job only (0 = keep no answers)",
    schema: int(0, 200_000_000),
    default: "16777216",
  },
} as const;

type Settings = typeof SERVER_SETTINGS;
export type ServerConfig = { [K in keyof Settings]: z.output<Settings[K]["schema"]> };

export class ConfigError extends Error {}

function parseSettings<K extends keyof Settings>(keys: readonly K[], env: NodeJS.ProcessEnv): Pick<ServerConfig, K> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const key of keys) {
    const s = SERVER_SETTINGS[key];
    const raw = env[s.env] ?? s.default;
    const r = (s.schema as z.ZodType).safeParse(raw);
    if (r.success) out[key] = r.data;
    else problems.push(`${s.env}=${JSON.stringify(raw)}: ${r.error.issues[0].message}`);
  }
  if (problems.length) throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  return out as Pick<ServerConfig, K>;
}

export function serverConfigFrom(env: NodeJS.ProcessEnv = process.env, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const config = { ...parseSettings(Object.keys(SERVER_SETTINGS) as Array<keyof Settings>, env), ...overrides };
  // int8 arithmetic runs on int8 weights (src/pull/compute.ts): refused at boot, not at the first pull
  if (config.hubCompute === "int8" && config.hubDtype !== "int8") {
    throw new ConfigError(`invalid configuration: REWARD_EDIT_HUB_COMPUTE=int8 needs REWARD_EDIT_HUB_DTYPE=int8 (int8 arithmetic runs on int8 weights); got REWARD_EDIT_HUB_DTYPE=${config.hubDtype}`);
  }
  if (!config.modelDir) config.modelDir = defaultModelDir();
  return config;
}

export const PROVENANCE_KEYS = ["c2pa", "c2paCert", "c2paKey", "c2paTrustAnchors", "provenanceParameters"] as const;
export type ProvenanceConfig = Pick<ServerConfig, (typeof PROVENANCE_KEYS)[number]>;

/** The provenance settings alone, for the commands that write or read results without serving. */
export function provenanceConfigFrom(env: NodeJS.ProcessEnv = process.env): ProvenanceConfig {
  return parseSettings(PROVENANCE_KEYS, env);
}

export function configTable(): string {
  const rows = Object.values(SERVER_SETTINGS).map((s) => `| \`${s.env}\` | ${s.default === "" ? "(empty)" : `\`${s.default}\``} | ${s.doc} |`);
  return ["| variable | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}
