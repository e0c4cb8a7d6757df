/**
 * Every request to a Hub goes through here: the token only to the configured endpoint's origin
 * (redirects are followed by hand, so each hop is judged by its own origin), a deadline for the
 * headers of each hop, one for each stretch of the body without progress, an optional one for the
 * whole request, and a byte cap on the body. Each failure is a HubError saying which of them it was.
 */
import { HubError, type RequestContext, classify, hostOf, unreachable } from "./errors.js";
import { type HubLimits, seconds } from "./limits.js";

export interface RequestOptions {
  /** The configured endpoint (HF_ENDPOINT): the only origin the token goes to. */
  endpoint: string;
  token?: string;
  limits: HubLimits;
  /** What the request is for, in messages: "the listing of test-org/x", "unet/config.json". */
  what: string;
  /** Whole request, headers to last byte; 0: none. */
  overallMs?: number;
  headers?: HeadersInit;
  method?: string;
  body?: RequestInit["body"];
  fetch?: typeof fetch;
}

/** An answer whose body is still to be read (under the same deadlines), see readBody. */
export interface Opened {
  res: Response;
  url: string;
  host: string;
  watch: Watch;
  what: string;
  limits: HubLimits;
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);
const MAX_HOPS = 10;
const RESET = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);
/** Progress, for the idle deadline: this much (or the end of the body) within each stretch. */
const PROGRESS_BYTES = 1024;
/** An error answer's body is only for its message: this long at most. */
const ERROR_BODY_MS = 10_000;

export const originOf = (url: string): string | undefined => {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
};

/** Whether a request to `url` may carry the token configured for `endpoint`. */
export const sameOrigin = (url: string, endpoint: string) => originOf(url) !== undefined && originOf(url) === originOf(endpoint);

/** Named timers that abort one request with the HubError of whichever fires first. */
export class Watch {
  readonly ctrl = new AbortController();
  private timers = new Map<string, NodeJS.Timeout>();

  set(name: string, ms: number, reason: () => HubError): void {
    this.clear(name);
    if (ms > 0) this.timers.set(name, setTimeout(() => this.ctrl.abort(reason()), ms));
  }

  clear(name: string): void {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
  }

  done(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** The deadline that fired, if one did. */
  get fired(): HubError | undefined {
    return this.ctrl.signal.aborted ? (this.ctrl.signal.reason as HubError) : undefined;
  }
}

const timeout = (msg: string) => new HubError("timeout", msg);

/** Sends the request and waits for its headers, following redirects; the body is left to readBody. */
export async function hubRequest(url: string, o: RequestOptions): Promise<Opened> {
  const f = o.fetch ?? fetch;
  const watch = new Watch();
  const first = hostOf(url);
  watch.set("overall", o.overallMs ?? 0, () => timeout(`${first} took more than ${seconds(o.overallMs!)} for ${o.what} (REWARD_EDIT_HUB_TIMEOUT)`));
  let current = url;
  let resets = 0;
  for (let hop = 0; ; hop++) {
    const host = hostOf(current);
    const headers = new Headers(o.headers);
    headers.delete("authorization");
    if (o.token && sameOrigin(current, o.endpoint)) headers.set("authorization", `Bearer ${o.token}`);
    watch.set("headers", o.limits.headersMs, () => timeout(`timed out waiting for headers from ${host} after ${seconds(o.limits.headersMs)} (${o.what}; REWARD_EDIT_HUB_HEADERS_TIMEOUT)`));
    let res: Response;
    try {
      res = await f(current, { method: o.method, body: hop === 0 ? o.body : undefined, headers, redirect: "manual", signal: watch.ctrl.signal });
    } catch (err) {
      // a kept-alive connection the server had just closed: once more on a fresh one
      if (!watch.fired && RESET.has((err as { cause?: { code?: string } })?.cause?.code ?? "") && resets++ === 0) {
        hop--;
        continue;
      }
      watch.done();
      throw watch.fired ?? unreachable(sameOrigin(current, o.endpoint) ? o.endpoint : (originOf(current) ?? current), err);
    }
    watch.clear("headers");
    const location = res.headers.get("location");
    if (REDIRECT.has(res.status) && location) {
      await res.body?.cancel().catch(() => {});
      if (hop >= MAX_HOPS) {
        watch.done();
        throw new HubError("server", `${host} redirected ${o.what} more than ${MAX_HOPS} times`);
      }
      current = new URL(location, current).toString();
      continue;
    }
    return { res, url: current, host, watch, what: o.what, limits: o.limits };
  }
}

export interface ReadOptions {
  maxBytes: number;
  /** The refusal when the body outgrows maxBytes. */
  tooMuch: (host: string) => HubError;
  onChunk: (chunk: Uint8Array) => void | Promise<void>;
  /** Idle deadline for this body (default: the limits' idleMs). */
  idleMs?: number;
}

/** Reads the body chunk by chunk under the idle deadline and the byte cap; returns bytes read. */
export async function readBody(o: Opened, r: ReadOptions): Promise<number> {
  const idleMs = r.idleMs ?? o.limits.idleMs;
  let total = 0;
  let stretch = 0;
  const arm = () =>
    o.watch.set("idle", idleMs, () =>
      timeout(
        stretch === 0
          ? `no data from ${o.host} for ${seconds(idleMs)} (${o.what}; REWARD_EDIT_HUB_IDLE_TIMEOUT)`
          : `${o.host} sent only ${stretch} B in ${seconds(idleMs)} (${o.what}): stalled (REWARD_EDIT_HUB_IDLE_TIMEOUT)`,
      ),
    );
  if (!o.res.body) {
    o.watch.done();
    return 0;
  }
  const reader = o.res.body.getReader();
  arm();
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (err) {
        throw o.watch.fired ?? err;
      }
      if (step.done) return total;
      total += step.value.length;
      if (total > r.maxBytes) throw r.tooMuch(o.host);
      stretch += step.value.length;
      if (stretch >= PROGRESS_BYTES) {
        stretch = 0;
        arm();
      }
      await r.onChunk(step.value);
    }
  } finally {
    o.watch.done();
    reader.cancel().catch(() => {});
  }
}

/** The start of an error answer's body, for its message: never waits long, never fails. */
export async function errorDetail(o: Opened): Promise<string> {
  const chunks: Uint8Array[] = [];
  o.watch.set("overall", ERROR_BODY_MS, () => timeout(`${o.host} took more than ${seconds(ERROR_BODY_MS)} for an error answer`));
  try {
    await readBody(o, { maxBytes: 16 * 1024, tooMuch: () => new HubError("too-large", ""), onChunk: (c) => void chunks.push(c), idleMs: Math.min(o.limits.idleMs || ERROR_BODY_MS, ERROR_BODY_MS) });
  } catch {
    /* what came is enough to say something */
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The failure of a non-2xx answer, in the Hub's terms (its JSON `error`, when it sent one). */
export async function failure(o: Opened, ctx: RequestContext): Promise<HubError> {
  const text = await errorDetail(o);
  let detail: string | undefined;
  try {
    detail = (JSON.parse(text) as { error?: unknown }).error as string | undefined;
    if (typeof detail !== "string") detail = undefined;
  } catch {
    detail = text.trim().split("\n")[0]?.slice(0, 200) || undefined;
  }
  return classify({ status: o.res.status, code: o.res.headers.get("x-error-code"), url: o.url, detail }, ctx);
}

export interface ApiCounters {
  pages: number;
}

/**
 * A fetch for the @huggingface/hub client's API calls (revision info, the tree listing's pages,
 * each `Link: rel="next"` included): the rules above, the body read whole under the JSON cap and
 * handed back as a Response, and every failure turned into one HubError line.
 */
export function apiFetch(o: { endpoint: string; token?: string; limits: HubLimits; ctx: RequestContext; fetch?: typeof fetch; counters?: ApiCounters }): typeof fetch {
  const counters = o.counters ?? { pages: 0 };
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    const listing = /\/tree\//.test(new URL(url).pathname);
    const what = listing ? `the listing of ${o.ctx.repo}` : `the revision info of ${o.ctx.repo}`;
    if (listing && ++counters.pages > o.limits.maxPages) {
      throw new HubError("too-large", `the listing of ${o.ctx.repo} runs past ${o.limits.maxPages} pages (REWARD_EDIT_HUB_MAX_PAGES); refusing it`);
    }
    const opened = await hubRequest(url, { ...o, what, overallMs: o.limits.apiMs, headers: init?.headers, method: init?.method, body: init?.body });
    if (!opened.res.ok) throw await failure(opened, o.ctx);
    const chunks: Uint8Array[] = [];
    await readBody(opened, {
      maxBytes: o.limits.maxJsonBytes,
      tooMuch: (host) => new HubError("too-large", `${host} sent more than ${o.limits.maxJsonBytes} B for ${what} (REWARD_EDIT_HUB_MAX_JSON_BYTES); refusing it`),
      onChunk: (c) => void chunks.push(c),
    });
    const body = Buffer.concat(chunks);
    const res = new Response(body, { status: opened.res.status, statusText: opened.res.statusText, headers: opened.res.headers });
    // the client parses with res.json(): a body that is not JSON is one line, not a SyntaxError
    const json = res.json.bind(res);
    res.json = async () => {
      try {
        return await json();
      } catch {
        throw new HubError("server", `${opened.host} answered ${what} with something that is not JSON (${body.length} B)`);
      }
    };
    return res;
  }) as typeof fetch;
}
