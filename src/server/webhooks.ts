/**
 * Webhooks (docs/progress.md): a job's submitter names a URL that is called once the job ends,
 * signed as the Standard Webhooks specification says (webhook-id, webhook-timestamp,
 * webhook-signature "v1,<base64 HMAC-SHA256>", by the standardwebhooks package) with
 * REWARD_EDIT_WEBHOOK_SECRET. At least once: retried with backoff under the same webhook-id; in
 * Redis mode as a BullMQ job, so a delivery outlives the replica that owed it.
 *
 * The calls are the server reaching out on a user's word, so by default a URL whose host resolves
 * to anything but a global unicast address (loopback, link-local, private, NAT64 or 6to4 forms of
 * those, ...) is refused at submission, and checked again before each attempt against the DNS
 * answers of that moment; the attempt then connects to the very addresses it checked (a second
 * lookup could answer otherwise: DNS rebinding). REWARD_EDIT_WEBHOOK_ALLOW lists hosts that may
 * resolve to internal addresses. Redirects are not followed: a 3xx is a permanent failure.
 */
import dns, { type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import { type LookupFunction, isIP } from "node:net";
import ipaddr from "ipaddr.js";
import type { Logger } from "pino";
import { Webhook } from "standardwebhooks";
import type { ServerConfig } from "../config/server.js";
import { REPLICA_NAME } from "./replica.js";
import { AppError } from "./errors.js";
import type { JobView, JobWebhooks, WebhookDelivery } from "./queue/types.js";

export type { WebhookDelivery } from "./queue/types.js";

export const WEBHOOK_ATTEMPTS = 5;

/** The IPv4 address an IPv6 one stands for, where the network would carry it there: mapped, translated, NAT64, 6to4, IPv4-compatible. */
function embeddedIPv4(a: ipaddr.IPv6): ipaddr.IPv4 | null {
  const p = a.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  switch (a.range()) {
    case "ipv4Mapped": // ::ffff:a.b.c.d
    case "rfc6145": // ::ffff:0:a.b.c.d
      return v4(p[6], p[7]);
    case "rfc6052": // 64:ff9b::a.b.c.d, the well-known NAT64 prefix (the local-use 64:ff9b:1::/48 is refused whole below)
      return p[2] === 0 ? v4(p[6], p[7]) : null;
    case "6to4": // 2002:aabb:ccdd::/48
      return v4(p[1], p[2]);
    default:
      // ::a.b.c.d, the deprecated IPv4-compatible form (:: and ::1 are classed on their own)
      return a.range() === "unicast" && p.slice(0, 6).every((x) => x === 0) ? v4(p[6], p[7]) : null;
  }
}

/**
 * Anything but a global unicast address (ipaddr.js's range() "unicast"): loopback, link-local,
 * private, shared, site-local, multicast, reserved, unspecified, Teredo, and the IPv6 forms that
 * carry an IPv4 address (mapped, NAT64, 6to4, IPv4-compatible) when that address is one of those.
 * What does not parse as an address counts as internal.
 */
export function isInternalAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return true;
  const ip = ipaddr.parse(address);
  if (ip.kind() === "ipv6") {
    const v4 = embeddedIPv4(ip as ipaddr.IPv6);
    if (v4) return v4.range() !== "unicast";
  }
  return ip.range() !== "unicast";
}

/** What a host name resolves to, every address (the system resolver by default). */
export type Resolver = (host: string) => Promise<LookupAddress[]>;
const systemResolver: Resolver = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

/** A socket lookup that answers only the addresses given: the connection goes where the check looked. */
export function pinnedLookup(addresses: LookupAddress[]): LookupFunction {
  return (_host, options, callback) => {
    const family = typeof options === "object" && options.family ? (options.family === "IPv6" ? 6 : options.family === "IPv4" ? 4 : Number(options.family)) : 0;
    const fit = family ? addresses.filter((a) => a.family === family) : addresses;
    const list = fit.length ? fit : addresses;
    const cb = callback as (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
    if (typeof options === "object" && options.all) cb(null, list);
    else cb(null, list[0].address, list[0].family);
  };
}

/** The failure of one attempt; `permanent`: retrying cannot help (the URL is refused). */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message);
  }
}

type WebhookConfig = Pick<ServerConfig, "webhookSecret" | "webhookAllow" | "webhookTimeoutMs" | "webhookRetryMs">;

/** How the calls reach the network: the resolver, and an agent in place of a fresh connection per call (tests). */
export interface WebhookTransport {
  resolve?: Resolver;
  agent?: http.Agent;
}

export class WebhookSender implements JobWebhooks {
  private readonly signer: Webhook | null;
  private readonly allow: Set<string>;
  private readonly resolve: Resolver;

  constructor(
    readonly config: WebhookConfig,
    private readonly logger: Logger,
    /** The body of a finished job's call. */
    readonly payload: (job: JobView) => string,
    private readonly transport: WebhookTransport = {},
  ) {
    this.signer = config.webhookSecret ? new Webhook(config.webhookSecret) : null;
    this.allow = new Set(config.webhookAllow.map((h) => h.toLowerCase()));
    this.resolve = transport.resolve ?? systemResolver;
  }

  /** Delay before attempt k + 1 (k >= 1): 4x longer each time (defaults: 5 s, 20 s, 80 s, 320 s). */
  delayAfter(attempt: number): number {
    return this.config.webhookRetryMs * 4 ** (attempt - 1);
  }

  /**
   * The addresses a URL may be called at, resolved once and checked, or why it may not be called.
   * An allow-listed host is resolved too, and pinned the same way.
   */
  private async target(url: URL): Promise<{ addresses: LookupAddress[] } | { refused: string }> {
    if (url.protocol !== "http:" && url.protocol !== "https:") return { refused: "must be an http or https URL" };
    if (url.username || url.password) return { refused: "must not carry credentials" };
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    let addresses: LookupAddress[];
    const literal = isIP(host);
    try {
      addresses = literal ? [{ address: host, family: literal }] : await this.resolve(host);
    } catch {
      return { refused: `host ${host} does not resolve` };
    }
    if (!addresses.length) return { refused: `host ${host} does not resolve` };
    if (this.allow.has(host)) return { addresses };
    const internal = addresses.find((a) => isInternalAddress(a.address));
    if (internal) return { refused: `host ${host} resolves to an internal address (${internal.address}); REWARD_EDIT_WEBHOOK_ALLOW lists hosts that may be called anyway` };
    return { addresses };
  }

  /** The submitted webhook_url checked (400 naming it), or null when none was given. */
  async check(raw: unknown): Promise<string | null> {
    if (raw === undefined || raw === "") return null;
    const bad = (m: string) => new AppError(400, "invalid_field", `webhook_url ${m}`, "webhook_url");
    if (typeof raw !== "string" || raw.length > 2048) throw bad("must be a URL of at most 2048 characters");
    if (!this.signer) throw bad("is not accepted here: the server has no REWARD_EDIT_WEBHOOK_SECRET to sign calls with");
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw bad("is not a URL");
    }
    const t = await this.target(url);
    if ("refused" in t) throw bad(t.refused);
    return url.toString();
  }

  /** The delivery owed for a finished job with a webhook (null without one). */
  deliveryFor(job: JobView): WebhookDelivery | null {
    if (!job.meta.webhookUrl) return null;
    return { id: `msg_${job.id}`, url: job.meta.webhookUrl, payload: this.payload(job) };
  }

  /**
   * One attempt: signed now (receivers check the timestamp's age), a short timeout, connected to
   * the addresses just checked. A 3xx is permanent: redirects are not followed, and the same URL
   * would only redirect again.
   */
  async attempt(d: WebhookDelivery): Promise<void> {
    if (!this.signer) throw new DeliveryError("no REWARD_EDIT_WEBHOOK_SECRET on this replica", true);
    const url = new URL(d.url);
    const t = await this.target(url);
    if ("refused" in t) throw new DeliveryError(`webhook_url ${t.refused}`, true);
    const now = new Date();
    const headers = {
      "content-type": "application/json",
      // which replica called, for the receiver's logs
      "user-agent": `reward-edit-webhooks (${REPLICA_NAME})`,
      "webhook-id": d.id,
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": this.signer.sign(d.id, now, d.payload),
    };
    let answer: { status: number; location?: string };
    try {
      answer = await this.post(url, t.addresses, headers, d.payload);
    } catch (err) {
      throw new DeliveryError(`webhook ${d.id}: ${(err as Error).message}`);
    }
    const { status, location } = answer;
    if (status >= 300 && status < 400) {
      throw new DeliveryError(`webhook ${d.id}: ${d.url} answered ${status}, a redirect${location ? ` to ${location}` : ""}; redirects are not followed, so this delivery is given up (give the final URL)`, true);
    }
    if (status < 200 || status >= 300) throw new DeliveryError(`webhook ${d.id}: ${d.url} answered ${status}`);
  }

  /** The POST itself, its socket connected to `addresses` (TLS still checks the URL's host name); resolves with the status. */
  private post(url: URL, addresses: LookupAddress[], headers: Record<string, string>, body: string): Promise<{ status: number; location?: string }> {
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const client = url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        {
          method: "POST",
          protocol: url.protocol,
          host,
          port: url.port || undefined,
          path: `${url.pathname}${url.search}`,
          headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
          lookup: pinnedLookup(addresses),
          // one connection per attempt: a pooled socket would skip the lookup above
          agent: this.transport.agent ?? false,
          ...(url.protocol === "https:" && !isIP(host) ? { servername: host } : {}),
          signal: AbortSignal.timeout(this.config.webhookTimeoutMs),
        },
        (res) => {
          // the status is all a delivery needs; the body is not read
          resolve({ status: res.statusCode ?? 0, location: res.headers.location });
          res.destroy();
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  /**
   * Every attempt in this process, waiting out the backoff; true once one succeeded.
   * `keepAlive`: the waits keep the process alive (a CLI that must deliver before it exits).
   */
  async deliver(d: WebhookDelivery, o: { keepAlive?: boolean } = {}): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.attempt(d);
        this.logger.info({ webhook: d.id, attempt }, "webhook delivered");
        return true;
      } catch (err) {
        const e = err as DeliveryError;
        if (e.permanent || attempt >= WEBHOOK_ATTEMPTS) {
          this.logger.warn({ webhook: d.id, attempt, err: e.message }, "webhook given up");
          return false;
        }
        this.logger.warn({ webhook: d.id, attempt, err: e.message }, "webhook attempt failed; retrying");
        await new Promise<void>((r) => {
          const t = setTimeout(r, this.delayAfter(attempt));
          if (!o.keepAlive) t.unref();
        });
      }
    }
  }

  /** Without Redis: the attempts on timers in this process (a restart loses what is still owed). */
  deliverInProcess(d: WebhookDelivery): void {
    void this.deliver(d);
  }
}
