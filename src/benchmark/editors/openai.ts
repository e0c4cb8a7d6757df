/**
 * Any endpoint speaking OpenAI's `POST /v1/images/edits` as an editor (gpt-image-1, vLLM-Omni,
 * gateways, this project's own server), called through the official openai client.
 *
 * Retries are ours, not the client's (it is built with maxRetries 0): the client would honour
 * Retry-After too, but it also retries 408/409, waits for as long as any Retry-After says, and
 * hides how many requests an edit took; here 429 and 5xx (and a lost connection) are retried with
 * a capped wait that honours Retry-After / retry-after-ms, and the row records the attempts.
 * A content-policy refusal is an answer, not a fault: it is recorded as `refused`, never retried.
 */
import { existsSync, readFileSync } from "node:fs";
import OpenAI, { APIConnectionError, APIError, toFile } from "openai";
import sharp from "sharp";
import { z } from "zod";
import type { EditOutcome, EditTask, Editor } from "./types.js";

export const EDITOR_KEY_ENV = "REWARD_EDIT_EDITOR_API_KEY";
const OPENAI_BASE = "https://api.openai.com/v1";

export const OpenAiEditorSchema = z.strictObject({
  model: z.string().min(1),
  baseURL: z.string().url().optional(),
  apiKey: z.string().optional(),
  /** How reports name it (default: the model). */
  label: z.string().min(1).optional(),
  concurrency: z.number().int().min(1).max(64).default(4),
  maxRetries: z.number().int().min(0).max(10).default(4),
  /** The longest wait a Retry-After may ask for before we give up on the edit. */
  maxWaitMs: z.number().int().min(0).default(60_000),
  timeoutMs: z.number().int().positive().default(300_000),
  size: z.string().optional(),
  quality: z.string().optional(),
  input_fidelity: z.string().optional(),
  /** Sent as they are beside OpenAI's own fields. */
  extraBody: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  /** The endpoint is this project's server: reward levels, seed and steps go as its extra fields. */
  rewardEdit: z.boolean().default(false),
});
export type OpenAiEditorConfig = z.infer<typeof OpenAiEditorSchema>;

export const isOpenAiSpec = (spec: string) => spec.startsWith("openai:");

/**
 * `openai:MODEL[@BASE_URL]` or a JSON config file (the fields of OpenAiEditorSchema). The key comes
 * from the file or REWARD_EDIT_EDITOR_API_KEY, never the judge's OPENAI_API_KEY, and the base URL
 * never from OPENAI_BASE_URL (the judge's): an editor and its judge are different services.
 */
export function openAiEditorConfig(spec: string, env: NodeJS.ProcessEnv = process.env): OpenAiEditorConfig {
  let raw: Record<string, unknown>;
  if (isOpenAiSpec(spec)) {
    const rest = spec.slice("openai:".length);
    const at = rest.indexOf("@");
    raw = at < 0 ? { model: rest } : { model: rest.slice(0, at), baseURL: rest.slice(at + 1) };
  } else {
    if (!existsSync(spec)) throw new Error(`--editor ${spec}: no such file (give openai:MODEL[@BASE_URL], a JSON config file or a model folder)`);
    try {
      raw = JSON.parse(readFileSync(spec, "utf8")) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${spec}: not JSON (${(e as Error).message})`);
    }
  }
  if (raw.apiKey === undefined && env[EDITOR_KEY_ENV]) raw.apiKey = env[EDITOR_KEY_ENV];
  const r = OpenAiEditorSchema.safeParse(raw);
  if (!r.success) throw new Error(`editor configuration: ${r.error.issues.map((i) => `${i.path.join(".") || "model"}: ${i.message}`).join("; ")}`);
  if (!r.data.apiKey && !r.data.baseURL) throw new Error(`the openai editor needs an API key: set ${EDITOR_KEY_ENV} (the judge's OPENAI_API_KEY is not used for it)`);
  return r.data;
}

/** A content-policy refusal, as OpenAI and the servers that copy it answer one: the provider's message. */
export function refusalOf(e: unknown): string | null {
  if (!(e instanceof APIError) || e.status !== 400) return null;
  const body = (e.error ?? {}) as { message?: string; code?: string };
  const message = body.message ?? e.message;
  if (e.code === "content_policy_violation" || e.code === "moderation_blocked" || /content[ _-]?policy|safety system|moderation/i.test(message)) return message;
  return null;
}

const retryable = (e: unknown) => e instanceof APIConnectionError || (e instanceof APIError && (e.status === 429 || (e.status !== undefined && e.status >= 500)));

/** Retry-After (seconds or an HTTP date) or retry-after-ms; else exponential backoff from 0.5 s, at most 8 s. */
export function retryWaitMs(e: unknown, attempt: number): number {
  const h = e instanceof APIError ? e.headers : undefined;
  const ms = Number.parseFloat(h?.get("retry-after-ms") ?? "");
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const after = h?.get("retry-after");
  if (after) {
    const s = Number.parseFloat(after);
    if (Number.isFinite(s)) return Math.max(0, s * 1000);
    const date = Date.parse(after);
    if (Number.isFinite(date)) return Math.max(0, date - Date.now());
  }
  return Math.min(500 * 2 ** (attempt - 1), 8000) * (1 - Math.random() * 0.25);
}

const MIME: Record<string, string> = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" };

export class OpenAiEditor implements Editor {
  readonly kind = "openai" as const;
  readonly label: string;
  readonly name: string;
  readonly takesRewards: boolean;
  readonly concurrency: number;
  private readonly client: OpenAI;

  constructor(private readonly c: OpenAiEditorConfig) {
    this.label = c.label ?? c.model;
    this.name = `${c.model}@${c.baseURL ?? OPENAI_BASE}`;
    this.takesRewards = c.rewardEdit;
    this.concurrency = c.concurrency;
    // baseURL and apiKey always explicit: the client would otherwise read the judge's OPENAI_* variables
    this.client = new OpenAI({ baseURL: c.baseURL ?? OPENAI_BASE, apiKey: c.apiKey ?? "none", maxRetries: 0, timeout: c.timeoutMs });
  }

  async edit(t: EditTask): Promise<EditOutcome> {
    const t0 = performance.now();
    const elapsed = () => performance.now() - t0;
    let params: OpenAI.ImageEditParamsNonStreaming;
    try {
      params = await this.params(t);
    } catch (e) {
      return { status: "edit_failed", error: (e as Error).message, latencyMs: elapsed(), attempts: 0 };
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.client.images.edit(params);
        const image = await this.imageOf(r);
        return { status: "ok", image, latencyMs: elapsed(), attempts: attempt, ...(r.usage ? { usage: r.usage as unknown as Record<string, unknown> } : {}) };
      } catch (e) {
        const refused = refusalOf(e);
        if (refused !== null) return { status: "refused", error: refused, latencyMs: elapsed(), attempts: attempt };
        const wait = retryable(e) ? retryWaitMs(e, attempt) : Number.POSITIVE_INFINITY;
        if (attempt > this.c.maxRetries || wait > this.c.maxWaitMs) {
          const why = attempt > 1 ? ` (after ${attempt} attempts)` : "";
          return { status: "edit_failed", error: `${(e as Error).message}${why}`, latencyMs: elapsed(), attempts: attempt };
        }
        await new Promise((res) => setTimeout(res, wait));
        // a file's body is read once: each attempt sends a fresh one
        params = await this.params(t);
      }
    }
  }

  private async params(t: EditTask): Promise<OpenAI.ImageEditParamsNonStreaming> {
    const format = (await sharp(t.source).metadata()).format ?? "";
    // the endpoint takes PNG, JPEG or WebP: anything else is sent as PNG
    const [bytes, type] = MIME[format] ? [t.source, MIME[format]] : [await sharp(t.source).png().toBuffer(), MIME.png];
    const c = this.c;
    const ours = c.rewardEdit
      ? { ...(t.preset.rewards ? { rewards: t.preset.rewards.join(",") } : {}), seed: String(t.seed), ...(t.preset.steps ? { steps: String(t.preset.steps) } : {}) }
      : {};
    return {
      model: c.model,
      image: await toFile(bytes, `source.${format === "jpeg" ? "jpg" : MIME[format] ? format : "png"}`, { type }),
      prompt: t.sample.instruction,
      ...(t.sample.mask ? { mask: await toFile(readFileSync(t.sample.mask), "mask.png", { type: "image/png" }) } : {}),
      ...(c.size ? { size: c.size } : {}),
      ...(c.quality ? { quality: c.quality } : {}),
      ...(c.input_fidelity ? { input_fidelity: c.input_fidelity } : {}),
      ...c.extraBody,
      ...ours,
    } as OpenAI.ImageEditParamsNonStreaming;
  }

  /** The first image of the answer: b64_json, or a url fetched (with the key only when it is the endpoint's own). */
  private async imageOf(r: OpenAI.ImagesResponse): Promise<Buffer> {
    const d = r.data?.[0];
    if (d?.b64_json) return Buffer.from(d.b64_json, "base64");
    if (d?.url) {
      const same = new URL(d.url).origin === new URL(this.c.baseURL ?? OPENAI_BASE).origin;
      const got = await fetch(d.url, { headers: same && this.c.apiKey ? { authorization: `Bearer ${this.c.apiKey}` } : {} });
      if (!got.ok) throw new Error(`fetching the edit at ${d.url}: HTTP ${got.status}`);
      return Buffer.from(await got.arrayBuffer());
    }
    throw new Error("the answer held no image (neither b64_json nor url)");
  }

  async dispose(): Promise<void> {}
}
