/**
 * Webhooks (docs/progress.md): a job's submitter names a URL that is called once the job ends,
 * signed as the Standard Webhooks specification says (webhook-id, webhook-timestamp,
 * webhook-signature "v1,<base64 HMAC-SHA256>", by the standardwebhooks package) with
 * REWARD_EDIT_WEBHOOK_SECRET. At least once: retried with backoff under the same webhook-id; in
 * Redis mode as a BullMQ job, so a delivery outlives the replica that owed it.
 *
 * The calls are the server reaching out on a user's word, so by default a URL whose host resolves
 * to loopback, link-local, private or otherwise internal addresses is refused at submission (and
 * checked again before each attempt, against DNS answers that change); REWARD_EDIT_WEBHOOK_ALLOW
 * lists hosts that may be called anyway. Redirects are not followed.
 */
import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import type { Logger } from "pino";
import { Webhook } from "standardwebhooks";
import type { ServerConfig } from "../config/server.js";
import { REPLICA_NAME } from "./replica.js";
import { AppError } from "./errors.js";
import type { JobView, JobWebhooks, WebhookDelivery } from "./queue/types.js";

export type { WebhookDelivery } from "./queue/types.js";

export const WEBHOOK_ATTEMPTS = 5;

const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) INTERNAL.addSubnet(net, prefix, "ipv4");
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) INTERNAL.addSubnet(net, prefix, "ipv6");

/** Loopback, link-local, private, shared, multicast or unspecified: not a place to send a request to. */
export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return INTERNAL.check(mapped[1], "ipv4");
  return INTERNAL.check(address, isIP(address) === 6 ? "ipv6" : "ipv4");
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

export class WebhookSender implements JobWebhooks {
  private readonly signer: Webhook | null;
  private readonly allow: Set<string>;

  constructor(
    readonly config: WebhookConfig,
    private readonly logger: Logger,
    /** The body of a finished job's call. */
    readonly payload: (job: JobView) => string,
  ) {
    this.signer = config.webhookSecret ? new Webhook(config.webhookSecret) : null;
    this.allow = new Set(config.webhookAllow.map((h) => h.toLowerCase()));
  }

  /** Delay before attempt k + 1 (k >= 1): 4x longer each time (defaults: 5 s, 20 s, 80 s, 320 s). */
  delayAfter(attempt: number): number {
    return this.config.webhookRetryMs * 4 ** (attempt - 1);
  }

  /** Why a URL may not be called, or null when it may. */
  private async refusal(url: URL): Promise<string | null> {
    if (url.protocol !== "http:" && url.protocol !== "https:") return "must be an http or https URL";
    if (url.username || url.password) return "must not carry credentials";
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (this.allow.has(host)) return null;
    let addresses: string[];
    try {
      addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
    } catch {
      return `host ${host} does not resolve`;
    }
    const internal = addresses.find(isInternalAddress);
    if (internal) return `host ${host} resolves to an internal address (${internal}); REWARD_EDIT_WEBHOOK_ALLOW lists hosts that may be called anyway`;
    return null;
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
    const why = await this.refusal(url);
    if (why) throw bad(why);
    return url.toString();
  }

  /** The delivery owed for a finished job with a webhook (null without one). */
  deliveryFor(job: JobView): WebhookDelivery | null {
    if (!job.meta.webhookUrl) return null;
    return { id: `msg_${job.id}`, url: job.meta.webhookUrl, payload: this.payload(job) };
  }

  /** One attempt: signed now (receivers check the timestamp's age), a short timeout, no redirects. */
  async attempt(d: WebhookDelivery): Promise<void> {
    if (!this.signer) throw new DeliveryError("no REWARD_EDIT_WEBHOOK_SECRET on this replica", true);
    const why = await this.refusal(new URL(d.url));
    if (why) throw new DeliveryError(`webhook_url ${why}`, true);
    const now = new Date();
    const headers = {
      "content-type": "application/json",
      // which replica called, for the receiver's logs
      "user-agent": `reward-edit-webhooks (${REPLICA_NAME})`,
      "webhook-id": d.id,
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": this.signer.sign(d.id, now, d.payload),
    };
    let res: Response;
    try {
      res = await fetch(d.url, { method: "POST", headers, body: d.payload, redirect: "manual", signal: AbortSignal.timeout(this.config.webhookTimeoutMs) });
    } catch (err) {
      throw new DeliveryError(`webhook ${d.id}: ${(err as Error).message}`);
    }
    await res.body?.cancel().catch(() => {});
    if (res.status < 200 || res.status >= 300) throw new DeliveryError(`webhook ${d.id}: ${d.url} answered ${res.status}`);
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
