import { expect } from "chai";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { pino } from "pino";
import { Webhook } from "standardwebhooks";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { isInternalAddress } from "../../src/server/webhooks.js";
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
