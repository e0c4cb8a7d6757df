/**
 * Idempotency-Key on the POSTs that start work (/v1/edits, /v1/jobs, /v1/images/edits), with
 * Stripe's semantics and the IETF draft's header: a retry with the key of a request already made
 * gets that request's job or answer (marked Idempotent-Replayed: true) and never edits again.
 *
 * A key belongs to the API key that sent it and is remembered with a fingerprint of the request
 * (endpoint, fields, sha256 of each file). The first request claims the key atomically (one Redis
 * script, so replicas agree), records its job as soon as it is queued, and when it ends either
 * keeps what it made (the job; a synchronous answer's bytes, up to a bound) for
 * REWARD_EDIT_IDEMPOTENCY_TTL or frees the key: a request refused before queueing, or a
 * synchronous edit that failed, was cancelled or timed out, edited nothing, so its retry runs.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Request, RequestHandler, Response } from "express";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { ServerConfig } from "../config/server.js";
import { AppError } from "./errors.js";
import type { JobQueue, JobView } from "./queue/types.js";
import type { RedisQueue } from "./queue/redis.js";
import { uploadedFiles } from "./upload.js";

export const IDEMPOTENCY_HEADER = "Idempotency-Key";
export const REPLAYED_HEADER = "Idempotent-Replayed";

/** pending: claimed, nothing queued yet; submitted: its job runs (synchronous routes); done: kept for the TTL. */
type Phase = "pending" | "submitted" | "done";

export interface IdempotencyRecord {
  fingerprint: string;
  phase: Phase;
  jobId?: string;
  /** The kept answer's status and headers (synchronous routes); its bytes travel beside the record. */
  status?: number;
  headers?: Record<string, string>;
  /** Set when the answer was not kept (too large, or not completed): its size in bytes. */
  notKeptBytes?: number;
}

export interface HeldKey {
  record: IdempotencyRecord;
  body?: Buffer;
}

export interface IdempotencyStore {
  /** Takes `key` for `token` unless another holds it: null when taken now, else what it holds. */
  claim(key: string, token: string, record: IdempotencyRecord, leaseMs: number): Promise<HeldKey | null>;
  /** Rewrites the record (and answer bytes) while `token` still holds the key; false when it no longer does. */
  update(key: string, token: string, record: IdempotencyRecord, ttlMs: number, body?: Buffer): Promise<boolean>;
  /** Frees the key if `token` still holds it. */
  release(key: string, token: string): Promise<void>;
}

interface Entry extends HeldKey {
  token: string;
  expiresAt: number;
}

/**
 * Keys in this process (no REDIS_URL). The kept answers' bytes together stay under `maxBytes`
 * (REWARD_EDIT_RETAINED_BYTES, the bound on finished jobs' bytes): past it the oldest answers are
 * dropped and their keys remember the job only.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private bodyBytes = 0;
  private sweptAt = 0;

  constructor(private readonly maxBytes: number) {}

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (e?.body) this.bodyBytes -= e.body.length;
    this.entries.delete(key);
  }

  /** At most once a second: every expired key goes (a lease a crashed request left behind included). */
  private sweep(now: number): void {
    if (now - this.sweptAt < 1000) return;
    this.sweptAt = now;
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.drop(k);
  }

  async claim(key: string, token: string, record: IdempotencyRecord, leaseMs: number): Promise<HeldKey | null> {
    const now = Date.now();
    this.sweep(now);
    const e = this.entries.get(key);
    if (e && e.expiresAt > now) return { record: e.record, body: e.body };
    this.drop(key);
    this.entries.set(key, { token, record, expiresAt: now + leaseMs });
    return null;
  }

  async update(key: string, token: string, record: IdempotencyRecord, ttlMs: number, body?: Buffer): Promise<boolean> {
    const e = this.entries.get(key);
    if (!e || e.token !== token || e.expiresAt <= Date.now()) return false;
    if (e.body) this.bodyBytes -= e.body.length;
    // re-inserted, so the map's order stays the order answers were kept in (oldest dropped first)
    this.entries.delete(key);
    this.entries.set(key, { token, record, body, expiresAt: Date.now() + ttlMs });
    if (body) this.bodyBytes += body.length;
    if (this.maxBytes > 0) {
      for (const [k, old] of this.entries) {
        if (this.bodyBytes <= this.maxBytes) break;
        if (!old.body || k === key) continue;
        this.bodyBytes -= old.body.length;
        old.record = { ...old.record, notKeptBytes: old.body.length };
        old.body = undefined;
      }
    }
    return true;
  }

  async release(key: string, token: string): Promise<void> {
    if (this.entries.get(key)?.token === token) this.drop(key);
  }
}

/** One hash per key: its holder's token, the record (JSON) and the kept answer's bytes. */
const CLAIM = `
local m = redis.call('HGET', KEYS[1], 'meta')
if m then return {m, redis.call('HGET', KEYS[1], 'body')} end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'meta', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return false`;
const UPDATE = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[2])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'body', ARGV[5]) else redis.call('HDEL', KEYS[1], 'body') end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;
const RELEASE = `
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Keys every replica sees (REDIS_URL): a retry that reaches another replica finds the first request's job. */
export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly conn: Redis,
    private readonly prefix: string,
  ) {}

  private k = (key: string) => `${this.prefix}:idem:${key}`;

  async claim(key: string, token: string, record: IdempotencyRecord, leaseMs: number): Promise<HeldKey | null> {
    const got = (await this.conn.callBuffer("EVAL", CLAIM, 1, this.k(key), token, JSON.stringify(record), leaseMs)) as [Buffer, Buffer | null] | null;
    if (!got) return null;
    return { record: JSON.parse(got[0].toString("utf8")) as IdempotencyRecord, body: got[1] ?? undefined };
  }

  async update(key: string, token: string, record: IdempotencyRecord, ttlMs: number, body?: Buffer): Promise<boolean> {
    const done = await this.conn.eval(UPDATE, 1, this.k(key), token, JSON.stringify(record), ttlMs, body ? "1" : "0", body ?? "");
    return done === 1;
  }

  async release(key: string, token: string): Promise<void> {
    await this.conn.eval(RELEASE, 1, this.k(key), token);
  }
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const byName = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * The request's canonical form: endpoint, fields sorted by name, and for each file field the
 * sha256 of each file's bytes (the file names and declared types are not the request's content).
 */
export function requestFingerprint(scope: string, req: Request): string {
  const fields = Object.entries((req.body ?? {}) as Record<string, unknown>).sort(byName);
  const files = Object.entries(uploadedFiles(req))
    .sort(byName)
    .map(([name, list]) => [name, list.map((f) => sha256(f.buffer))]);
  return sha256(JSON.stringify({ scope, fields, files }));
}

/**
 * The header's value: 1 to 255 printable ASCII characters. The IETF draft writes it as a quoted
 * string ("abc"); that and the bare abc (Stripe's form) are the same key.
 */
export function idempotencyKeyOf(req: Request): string | undefined {
  const raw = req.get(IDEMPOTENCY_HEADER);
  if (raw === undefined) return undefined;
  const v = /^"(.*)"$/.exec(raw)?.[1] ?? raw;
  if (!/^[\x20-\x7e]{1,255}$/.test(v)) throw new AppError(400, "invalid_header", `${IDEMPOTENCY_HEADER}: must be 1 to 255 printable ASCII characters`, IDEMPOTENCY_HEADER);
  return v;
}

/** The answer being written, copied as it goes out, up to `max` bytes. */
interface Capture {
  chunks: Buffer[];
  bytes: number;
  over: boolean;
  ended: boolean;
}

/**
 * Copies the answer as it is written. `beforeEnd` runs before the last bytes go out, so a client
 * never holds a complete answer its retry could miss (the retry would otherwise race the keeping).
 */
function capture(res: Response, max: number, beforeEnd: (c: Capture) => Promise<unknown>): Capture {
  const c: Capture = { chunks: [], bytes: 0, over: false, ended: false };
  const take = (chunk: unknown, encoding: unknown) => {
    if (chunk === undefined || chunk === null || typeof chunk === "function") return;
    const b = Buffer.isBuffer(chunk) ? chunk : typeof chunk === "string" ? Buffer.from(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8") : Buffer.from(chunk as Uint8Array);
    c.bytes += b.length;
    if (c.over || c.bytes > max) {
      c.over = true;
      c.chunks = [];
    } else c.chunks.push(b);
  };
  const write = res.write.bind(res) as (...a: unknown[]) => boolean;
  const end = res.end.bind(res) as (...a: unknown[]) => Response;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    take(chunk, rest[0]);
    return write(chunk, ...rest);
  }) as Response["write"];
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (c.ended) return end(chunk, ...rest);
    take(chunk, rest[0]);
    c.ended = true;
    void beforeEnd(c).finally(() => end(chunk, ...rest));
    return res;
  }) as Response["end"];
  return c;
}

/** The headers that are part of an answer (not of one exchange, as x-request-id is). */
function answerHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(res.getHeaders())) {
    if (v === undefined) continue;
    if (name === "content-type" || name === "cache-control" || name === "x-accel-buffering" || name.startsWith("x-reward-edit-")) out[name] = String(v);
  }
  return out;
}

/** How a route answers: synchronous (the edit's answer is kept and replayed) or a queued job (its job is). */
export type RouteKind = "sync" | "job";

interface Holding {
  kind: RouteKind;
  key: string;
  token: string;
  fingerprint: string;
  jobId?: string;
  capture?: Capture;
  /** Keeping the answer as it goes out; true when it was kept for replay. */
  keeping?: Promise<boolean>;
}

export interface IdempotencyDeps {
  config: Pick<ServerConfig, "idempotencyTtl" | "idempotencyMaxBody" | "requestTimeoutMs">;
  queue: JobQueue;
  store: IdempotencyStore;
  logger: Logger;
}

/** The store that fits the queue: Redis's when jobs are shared through it, else this process's. */
export function idempotencyStoreFor(queue: JobQueue, config: Pick<ServerConfig, "retainedBytes">): IdempotencyStore {
  if (queue.kind === "redis") {
    const { conn, prefix } = (queue as RedisQueue).shared();
    return new RedisIdempotencyStore(conn, prefix);
  }
  return new MemoryIdempotencyStore(config.retainedBytes);
}

export function idempotency(d: IdempotencyDeps) {
  const { config, queue, store, logger } = d;
  // a claim outlives the request it covers only briefly: a replica that dies mid-request frees its keys
  const leaseMs = config.requestTimeoutMs + 60_000;
  const inProgress = (jobId?: string) =>
    new AppError(409, "idempotency_in_progress", `${IDEMPOTENCY_HEADER}: a request with this key is still running${jobId ? ` (job ${jobId})` : ""}; retry when it has finished`, IDEMPOTENCY_HEADER, {
      "retry-after": "2",
    });

  /** A synchronous route's retry: the kept answer, byte for byte. */
  const replayAnswer = (held: HeldKey, res: Response) => {
    const r = held.record;
    if (r.phase !== "done") throw inProgress(r.jobId);
    if (!held.body) {
      throw new AppError(
        409,
        "idempotent_answer_not_kept",
        `${IDEMPOTENCY_HEADER}: the request with this key made job ${r.jobId}, whose answer (${r.notKeptBytes ?? 0} bytes) was not kept for replay (REWARD_EDIT_IDEMPOTENCY_MAX_BODY); fetch /v1/jobs/${r.jobId}/result while the job is kept`,
        IDEMPOTENCY_HEADER,
        { location: `/v1/jobs/${r.jobId}` },
      );
    }
    res
      .status(r.status ?? 200)
      .set(r.headers ?? {})
      .set(REPLAYED_HEADER, "true")
      .set("content-length", String(held.body.length))
      .end(held.body);
  };

  const answerOf = (h: Holding, res: Response, c: Capture): { record: IdempotencyRecord; body: Buffer } | null =>
    c.ended && !c.over && res.statusCode === 200
      ? { record: { fingerprint: h.fingerprint, phase: "done", jobId: h.jobId, status: res.statusCode, headers: answerHeaders(res) }, body: Buffer.concat(c.chunks) }
      : null;

  /** A succeeded edit's answer, kept as it goes out (a stream that ended in an error event is no answer to keep). */
  const keepAnswer = async (h: Holding, res: Response, c: Capture) => {
    const answer = answerOf(h, res, c);
    if (!h.jobId || !answer) return false;
    const job = await queue.get(h.jobId, { blobs: false });
    if (job?.state !== "succeeded") return false;
    return store.update(h.key, h.token, answer.record, config.idempotencyTtl, answer.body);
  };

  /** Once the exchange is over: keeps what the request made, or frees the key when it made nothing. */
  const settle = async (h: Holding, res: Response) => {
    if (!h.jobId) return store.release(h.key, h.token);
    // a queued job was recorded when it was queued; a kept answer as it went out
    if (h.kind === "job" || (await h.keeping?.catch(() => false))) return;
    // a client gone mid-edit has cancelled it (awaitEdit): wait for its end to know what it made
    const job = await queue.waitFor(h.jobId).catch(() => undefined);
    if (job?.state !== "succeeded") return store.release(h.key, h.token);
    // not kept (too large, not completed, or the store refused it): the key still remembers the
    // job, so the edit is not run again
    await store.update(h.key, h.token, { fingerprint: h.fingerprint, phase: "done", jobId: h.jobId, notKeptBytes: h.capture!.bytes }, config.idempotencyTtl);
  };

  /**
   * Middleware after the upload parser: without the header it does nothing; with it, a retry is
   * answered here (the kept answer, the job, a 409 while the first runs, a 422 for another
   * request) and a first request goes on holding the key. `replayJob` answers with a queued job.
   */
  const guard =
    (scope: string, kind: RouteKind, replayJob?: (job: JobView, res: Response) => void): RequestHandler =>
    (req, res, next) => {
      (async () => {
        const given = idempotencyKeyOf(req);
        if (given === undefined) return next();
        const fingerprint = requestFingerprint(scope, req);
        // keys belong to the API key that sent them: another API key's same Idempotency-Key is another key
        const key = `${res.locals.owner ?? "-"}:${sha256(given)}`;
        const token = randomUUID();
        const held = await store.claim(key, token, { fingerprint, phase: "pending" }, leaseMs);
        if (held) {
          if (held.record.fingerprint !== fingerprint) {
            throw new AppError(422, "idempotency_key_reused", `${IDEMPOTENCY_HEADER}: this key was sent with a different request (other fields, files or endpoint); use a new key for a new request`, IDEMPOTENCY_HEADER);
          }
          if (kind === "sync") return replayAnswer(held, res);
          const id = held.record.jobId;
          if (!id) throw inProgress();
          const job = await queue.get(id, { blobs: false });
          if (!job) throw new AppError(404, "not_found", `${IDEMPOTENCY_HEADER}: the job this key made (${id}) is gone (expired or deleted); use a new key to edit again`, IDEMPOTENCY_HEADER);
          res.set(REPLAYED_HEADER, "true");
          return replayJob!(job, res);
        }
        const h: Holding = { kind, key, token, fingerprint };
        if (kind === "sync") {
          h.capture = capture(res, config.idempotencyMaxBody, (c) =>
            (h.keeping = keepAnswer(h, res, c).catch((err: Error) => {
              logger.warn({ err: err.message }, "idempotent answer not kept");
              return false;
            })),
          );
        }
        res.locals.idempotency = h;
        res.once("close", () => void settle(h, res).catch((err: Error) => logger.warn({ err: err.message }, "idempotency key not settled")));
        next();
      })().catch(next);
    };

  /** Called by a route as soon as its job is queued: from then on a retry finds the job, not a second edit. */
  const submitted = async (res: Response, job: JobView): Promise<void> => {
    const h = res.locals.idempotency as Holding | undefined;
    if (!h) return;
    h.jobId = job.id;
    const done = h.kind === "job";
    await store
      .update(h.key, h.token, { fingerprint: h.fingerprint, phase: done ? "done" : "submitted", jobId: job.id }, done ? config.idempotencyTtl : leaseMs)
      .catch((err: Error) => logger.warn({ err: err.message, job: job.id }, "idempotency key not recorded"));
  };

  return { guard, submitted };
}

export type Idempotency = ReturnType<typeof idempotency>;
