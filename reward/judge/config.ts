/**
 * Judge settings from the environment or a JSON config file. OPENAI_BASE_URL and OPENAI_API_KEY
 * are the openai client's own variables; REWARD_EDIT_JUDGE_* are ours.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";

export const PROTOCOLS = ["mrc", "multi-round", "viescore", "pairwise"] as const;
/** The protocols that score one edit (pairwise ranks several). */
export const SCORING_PROTOCOLS = ["mrc", "multi-round", "viescore"] as const;
export type ScoringProtocol = (typeof SCORING_PROTOCOLS)[number];
export type Protocol = (typeof PROTOCOLS)[number];

export const JudgeConfigSchema = z.strictObject({
  baseURL: z.string().url().optional(),
  apiKey: z.string().optional(),
  model: z.string().min(1),
  protocol: z.enum(SCORING_PROTOCOLS).default("mrc"),
  timeoutMs: z.number().int().positive().default(60_000),
  concurrency: z.number().int().min(1).max(64).default(4),
  passes: z.number().int().min(1).max(10).default(1),
  maxRetries: z.number().int().min(0).max(10).default(3),
  temperature: z.number().min(0).max(2).default(0),
  /** Sent as `seed` when set: endpoints that honour it answer more repeatably. */
  seed: z.number().int().min(0).max(2 ** 53 - 1).optional(),
  /** Sent as `max_tokens` when set. */
  maxTokens: z.number().int().positive().optional(),
  /** Dollars per million prompt and completion tokens, for the cost estimate: [in, out] or "IN,OUT". */
  price: z.preprocess((v) => (typeof v === "string" ? v.split(",").map((x) => (x.trim() === "" ? Number.NaN : Number(x))) : v), z.tuple([z.number().min(0), z.number().min(0)])).optional(),
  /** Images are sent as JPEG fitted to this long side (Real-Edit judges at 512). */
  imageSide: z.number().int().min(64).max(2048).default(512),
  cacheDir: z.string().optional(),
});
export type JudgeConfig = z.infer<typeof JudgeConfigSchema>;

const num = (v: string | undefined) => (v === undefined || v === "" ? undefined : Number(v));

/**
 * The judge configuration, or null when none is configured (then the local scorer is the default).
 * A config file (REWARD_EDIT_JUDGE_CONFIG or `file`) is read first; environment variables override it.
 */
export function judgeConfigFrom(env: NodeJS.ProcessEnv = process.env, file = env.REWARD_EDIT_JUDGE_CONFIG): JudgeConfig | null {
  const fromFile = file ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
  const raw: Record<string, unknown> = {
    ...fromFile,
    ...Object.fromEntries(
      Object.entries({
        baseURL: env.OPENAI_BASE_URL,
        apiKey: env.OPENAI_API_KEY,
        model: env.REWARD_EDIT_JUDGE_MODEL,
        protocol: env.REWARD_EDIT_JUDGE_PROTOCOL,
        timeoutMs: num(env.REWARD_EDIT_JUDGE_TIMEOUT_MS),
        concurrency: num(env.REWARD_EDIT_JUDGE_CONCURRENCY),
        passes: num(env.REWARD_EDIT_JUDGE_PASSES),
        maxRetries: num(env.REWARD_EDIT_JUDGE_MAX_RETRIES),
        temperature: num(env.REWARD_EDIT_JUDGE_TEMPERATURE),
        seed: num(env.REWARD_EDIT_JUDGE_SEED),
        maxTokens: num(env.REWARD_EDIT_JUDGE_MAX_TOKENS),
        price: env.REWARD_EDIT_JUDGE_PRICE,
        cacheDir: env.REWARD_EDIT_JUDGE_CACHE,
      }).filter(([, v]) => v !== undefined && v !== ""),
    ),
  };
  if (raw.model === undefined) return null;
  const r = JudgeConfigSchema.safeParse(raw);
  if (!r.success) {
    throw new Error(`judge configuration: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  return r.data;
}

/** `--price IN,OUT`: dollars per million prompt and completion tokens. */
export function parsePrice(s: string): [number, number] {
  const xs = s.split(",").map((x) => (x.trim() === "" ? Number.NaN : Number(x)));
  if (xs.length !== 2 || xs.some((x) => !Number.isFinite(x) || x < 0)) throw new Error(`--price must be IN,OUT (dollars per million prompt and completion tokens), got "${s}"`);
  return [xs[0], xs[1]];
}

/** For logs and results: everything but the key. */
export function redacted(c: JudgeConfig): Omit<JudgeConfig, "apiKey"> & { apiKey?: string } {
  return { ...c, apiKey: c.apiKey ? "[redacted]" : undefined };
}
