import { expect } from "chai";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, readFileSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { Writable } from "node:stream";
import path from "node:path";
import { pino } from "pino";
import { Webhook } from "standardwebhooks";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { type Resolver, WebhookSender, isInternalAddress } from "../../src/server/webhooks.js";
import { PHOTOS, TINY, runCli, tempDir } from "../helpers.js";
import { baseForm } from "../support/forms.js";
import { startRedis, startReplica, stopAll } from "../support/replicas.js";

const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
const SECRET = `whsec_${randomBytes(24).toString("base64")}`;

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  verified: boolean;
  answered: number | "held";
}

/**
 * A webhook receiver on loopback that verifies every call with the standardwebhooks package and
 * answers each by `plan` (a status, or "held": never answered); past the plan, 200.
 */
async function receiver(plan: Array<number | "held">) {
  const calls: Received[] = [];
  const waiters: Array<() => void> = [];
  const srv = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      let verified = false;
      try {
        new Webhook(SECRET).verify(body, req.headers as Record<string, string>);
        verified = true;
      } catch {
        verified = false;
      }
      const answer = plan[calls.length] ?? 200;
      calls.push({ headers: req.headers, body, verified, answered: answer });
      waiters.splice(0).forEach((w) => w());
      if (answer !== "held") res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    calls,
    /** Resolves once `n` calls have arrived. */
    async until(n: number, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (calls.length < n) {
        if (Date.now() > deadline) throw new Error(`${calls.length} of ${n} webhook calls arrived`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    close: () => {
      srv.closeAllConnections();
      return new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

const submit = (base: string, fields: Record<string, string>) =>
  fetch(`${base}/v1/jobs`, { method: "POST", body: baseForm({ instruction: "make the mug red", steps: "2", ...fields }, { image: photo }) });

/** Every call verified, one webhook-id, one success after the planned failures, the body as specified. */
function expectDeliveries(calls: Received[], jobId: string, failures: number): void {
  expect(calls.map((c) => c.verified)).to.deep.equal(calls.map(() => true));
  expect(new Set(calls.map((c) => c.headers["webhook-id"])).size).to.equal(1);
  expect(calls.filter((c) => c.answered === 200)).to.have.length(1);
  expect(calls).to.have.length(failures + 1);
  const body = JSON.parse(calls.at(-1)!.body) as { type: string; data: { id: string; state: string } };
  expect(body.type).to.equal("job.succeeded");
  expect(body.data).to.include({ id: jobId, state: "succeeded" });
  expect(calls[0].headers["webhook-signature"]).to.match(/^v1,[A-Za-z0-9+/]+=*$/);
}

describe("webhooks: signed calls when a job ends (issue 31)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  let open: RunningServer;
  before(async () => {
    [s, open] = await Promise.all([
      startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, webhookSecret: SECRET, webhookAllow: ["127.0.0.1"], webhookRetryMs: 50 }, {}),
      // the default: no allow list
      startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, webhookSecret: SECRET }, {}),
    ]);
  });
  after(() => Promise.all([s.stop(), open.stop()]));

  it("a receiver that fails twice gets three calls, one webhook-id, all verified, exactly one success", async () => {
    const rx = await receiver([500, 503]);
    try {
      const r = await submit(s.url, { webhook_url: rx.url });
      expect(r.status).to.equal(202);
      const { id } = (await r.json()) as { id: string };
      await rx.until(3);
      // a late fourth call would be a duplicate delivery: none comes once one has succeeded
      await new Promise((res) => setTimeout(res, 500));
      expectDeliveries(rx.calls, id, 2);
    } finally {
      await rx.close();
    }
  });

  it("a loopback URL without the allow list is refused at submission (400 naming webhook_url); no call is made", async () => {
    const rx = await receiver([]);
    try {
      for (const url of [rx.url, rx.url.replace("127.0.0.1", "localhost"), "http://[::1]:9/x", "http://169.254.169.254/latest", "http://10.1.2.3/x", "ftp://example.com/x"]) {
        const r = await submit(open.url, { webhook_url: url });
        expect(r.status, url).to.equal(400);
        const e = ((await r.json()) as { error: { field: string; message: string } }).error;
        expect(e.field).to.equal("webhook_url");
      }
      await new Promise((res) => setTimeout(res, 300));
      expect(rx.calls).to.have.length(0);
    } finally {
      await rx.close();
    }
  });

  it("batch --webhook: one signed call per photo and one at the end, a failed call retried under its id", async () => {
    const rx = await receiver([500]);
    try {
      const input = tempDir();
      for (const name of ["a.png", "b.png"]) copyFileSync(path.join(PHOTOS, "coffee.png"), path.join(input, name));
      const r = await runCli(["batch", "--model", TINY, "--input", input, "--instruction", "make the mug red", "--out", path.join(input, "out"), "--steps", "2", "--workers", "1", "--no-score", "--webhook", rx.url], {
        REWARD_EDIT_WEBHOOK_SECRET: SECRET,
        REWARD_EDIT_WEBHOOK_ALLOW: "127.0.0.1",
        REWARD_EDIT_WEBHOOK_RETRY_MS: "50",
      });
      expect(r.code, r.stderr).to.equal(0);
      expect(rx.calls.every((c) => c.verified)).to.equal(true);
      const delivered = rx.calls.filter((c) => c.answered === 200).map((c) => JSON.parse(c.body) as { type: string });
      expect(delivered.map((d) => d.type).sort()).to.deep.equal(["batch.completed", "batch.photo.succeeded", "batch.photo.succeeded"]);
      // the first call failed and came again under the same webhook-id
      expect(rx.calls).to.have.length(4);
      expect(rx.calls.filter((c) => c.headers["webhook-id"] === rx.calls[0].headers["webhook-id"])).to.have.length(2);
      expect(new Set(rx.calls.map((c) => c.headers["webhook-id"])).size).to.equal(3);
    } finally {
      await rx.close();
    }
  });

  it("the address guard knows the internal ranges, IPv4-mapped IPv6 included", () => {
    for (const a of ["127.0.0.1", "10.0.0.1", "172.20.1.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::"]) expect(isInternalAddress(a), a).to.equal(true);
    for (const a of ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]) expect(isInternalAddress(a), a).to.equal(false);
  });

  it("IPv6 forms that carry an IPv4 address are judged by that address; site-local, Teredo and other special ranges are refused (finding 13)", () => {
    const internal = {
      "IPv4-compatible loopback": "::7f00:1",
      "IPv4-compatible private": "::a00:1",
      "NAT64 loopback": "64:ff9b::7f00:1",
      "NAT64 metadata": "64:ff9b::a9fe:a9fe",
      "local-use NAT64 (internal translator)": "64:ff9b:1::808:808",
      "6to4 loopback": "2002:7f00:1::1",
      "6to4 private": "2002:c0a8:101::1",
      "IPv4-translated loopback": "::ffff:0:7f00:1",
      "IPv4-mapped (hex) loopback": "::ffff:7f00:1",
      "site-local": "fec0::1",
      "site-local, top of the range": "feff::1",
      Teredo: "2001::1",
      documentation: "2001:db8::1",
      multicast: "ff02::1",
      benchmarking: "198.18.0.1",
      broadcast: "255.255.255.255",
      "not an address": "example.com",
    };
    for (const [what, a] of Object.entries(internal)) expect(isInternalAddress(a), `${what} ${a}`).to.equal(true);
    const external = { "NAT64 of a public address": "64:ff9b::808:808", "6to4 of a public address": "2002:808:808::1", "IPv4-compatible public": "::808:808", "global unicast": "2001:4860:4860::8888" };
    for (const [what, a] of Object.entries(external)) expect(isInternalAddress(a), `${what} ${a}`).to.equal(false);
  });
});

/** Log records of a sender, as JSON objects. */
function capturedLogger() {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: "info" }, sink), records };
}

const senderConfig = { webhookSecret: SECRET, webhookAllow: [] as string[], webhookTimeoutMs: 5_000, webhookRetryMs: 50 };
const delivery = (url: string) => ({ id: `msg_${randomBytes(6).toString("hex")}`, url, payload: JSON.stringify({ type: "job.succeeded", data: {} }) });

describe("webhooks connect where they checked; a redirect is final (finding 13)", function () {
  this.timeout(30_000);

  it("DNS rebinding: the guard's lookup answers a public address, a second would answer 127.0.0.1; the call goes to the checked address and nothing lands on loopback", async () => {
    const loopback = await receiver([]); // the internal service a rebinding aims at
    const peer = await receiver([]); // plays the public host
    const PUBLIC = "93.184.216.34";
    const asked: string[] = [];
    const resolve: Resolver = async (host) => {
      asked.push(host);
      return [{ address: asked.length === 1 ? PUBLIC : "127.0.0.1", family: 4 }];
    };
    // the network: a connection to PUBLIC reaches the peer standing in for it; any other address is
    // dialled for real. A socket without the sender's own lookup would ask the resolver again, as
    // a plain fetch does.
    const dialled: string[] = [];
    class Network extends http.Agent {
      override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, socket: net.Socket) => void): undefined {
        const lookup = (options.lookup ?? ((h: string, _o: unknown, c: (e: Error | null, a: string) => void) => void resolve(h).then((r) => c(null, r[0].address)))) as (h: string, o: object, c: (e: Error | null, a: string) => void) => void;
        lookup(String(options.host), {}, (err, address) => {
          if (err) return cb!(err, undefined as unknown as net.Socket);
          dialled.push(address);
          cb!(null, address === PUBLIC ? net.connect(peer.port, "127.0.0.1") : net.connect(Number(options.port), address));
        });
        return undefined;
      }
    }
    const sender = new WebhookSender(senderConfig, pino({ level: "silent" }), () => "", { resolve, agent: new Network() });
    try {
      await sender.attempt(delivery(`http://hooks.example:${loopback.port}/hook`));
      expect(asked, "one lookup per attempt").to.deep.equal(["hooks.example"]);
      expect(dialled).to.deep.equal([PUBLIC]);
      expect(peer.calls).to.have.length(1);
      expect(peer.calls[0].verified).to.equal(true);
      expect(peer.calls[0].headers.host).to.equal(`hooks.example:${loopback.port}`);
      expect(loopback.calls).to.have.length(0);
    } finally {
      await Promise.all([loopback.close(), peer.close()]);
    }
  });

  it("the real socket uses the pinned answer: an allow-listed name resolved once reaches its receiver although a second lookup would fail", async () => {
    const rx = await receiver([]);
    const asked: string[] = [];
    const resolve: Resolver = async (host) => {
      asked.push(host);
      if (asked.length > 1) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      return [{ address: "127.0.0.1", family: 4 }];
    };
    const sender = new WebhookSender({ ...senderConfig, webhookAllow: ["hooks.test"] }, pino({ level: "silent" }), () => "", { resolve });
    try {
      // no agent here: Node's own connection, whose default lookup (the system's) knows no hooks.test
      await sender.attempt(delivery(`http://hooks.test:${rx.port}/hook`));
      expect(asked).to.deep.equal(["hooks.test"]);
      expect(rx.calls).to.have.length(1);
      expect(rx.calls[0].verified).to.equal(true);
      expect(rx.calls[0].headers.host).to.equal(`hooks.test:${rx.port}`);
    } finally {
      await rx.close();
    }
  });

  it("a 3xx is attempted once and given up as permanent, with the redirect as its reason", async () => {
    const rx = await receiver([302, 302, 302]);
    const { logger, records } = capturedLogger();
    const sender = new WebhookSender({ ...senderConfig, webhookAllow: ["127.0.0.1"] }, logger, () => "");
    try {
      expect(await sender.deliver(delivery(rx.url))).to.equal(false);
      expect(rx.calls).to.have.length(1);
      const given = records.filter((r) => r.msg === "webhook given up");
      expect(given).to.have.length(1);
      expect(given[0].attempt).to.equal(1);
      expect(String(given[0].err)).to.match(/answered 302, a redirect.*not followed/);
      expect(records.filter((r) => r.msg === "webhook attempt failed; retrying")).to.have.length(0);
    } finally {
      await rx.close();
    }
  });
});

describe("webhooks on Redis: a delivery outlives the replica that owed it (issue 31)", function () {
  this.timeout(90_000);
  const procs: ChildProcess[] = [];
  const replicas = new Map<string, { url: string; proc: ChildProcess }>();
  before(async function () {
    const redis = await startRedis();
    if (!redis) return this.skip();
    procs.push(redis.proc);
    const env = { REWARD_EDIT_WEBHOOK_SECRET: SECRET, REWARD_EDIT_WEBHOOK_ALLOW: "127.0.0.1", REWARD_EDIT_WEBHOOK_RETRY_MS: "200", REWARD_EDIT_WEBHOOK_TIMEOUT_MS: "30000", REWARD_EDIT_JOB_LOCK_MS: "2000" };
    const [ra, rb] = await Promise.all([startReplica(redis.url, "A", env), startReplica(redis.url, "B", env)]);
    replicas.set("A", ra).set("B", rb);
    procs.unshift(ra.proc, rb.proc);
  });
  after(async () => {
    await stopAll(procs.slice(0, -1), "SIGKILL");
    await stopAll(procs.slice(-1));
  });

  it("the replica making the first call is killed mid-call: the other takes the delivery over; one webhook-id, exactly one success", async () => {
    const rx = await receiver(["held", 500]);
    try {
      const r = await submit(replicas.get("A")!.url, { webhook_url: rx.url });
      expect(r.status).to.equal(202);
      const { id } = (await r.json()) as { id: string };
      await rx.until(1);
      const caller = /\((\w+)\)/.exec(String(rx.calls[0].headers["user-agent"]))![1];
      await stopAll([replicas.get(caller)!.proc], "SIGKILL");
      // the held call's lock lapses (2 s), the other replica's worker takes the delivery back up
      await rx.until(3);
      await new Promise((res) => setTimeout(res, 500));
      const survivors = rx.calls.slice(1).map((c) => /\((\w+)\)/.exec(String(c.headers["user-agent"]))![1]);
      expect(survivors.every((n) => n !== caller), survivors.join(",")).to.equal(true);
      expectDeliveries(rx.calls, id, 2);
    } finally {
      await rx.close();
    }
  });
});
