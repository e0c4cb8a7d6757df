import { expect } from "chai";
import net from "node:net";
import { pino } from "pino";
import { SSE_QUEUE_BYTES, TERMINAL_ID } from "../../src/server/events.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { TINY } from "../helpers.js";
import { bearer, submitJob } from "../support/forms.js";
import { readSse } from "../support/sse.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One sample of the server's own stream gauges (GET /metrics). */
async function gauges(base: string): Promise<{ streams: number; queued: number; dropped: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
  return { streams: read("reward_edit_sse_streams"), queued: read("reward_edit_sse_queued_bytes"), dropped: read("reward_edit_sse_dropped_total") };
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * A client that asks for the stream and never reads a byte of it: a raw socket left paused, so
 * once its own small buffer and the kernel's are full the server's writes are refused.
 */
function neverReads(port: number, target: string, headers: Record<string, string> = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => {
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      sock.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n${extra}\r\n`);
      resolve(sock);
    });
    sock.on("error", reject);
    sock.pause();
  });
}

describe("job event streams: slow clients, caps, Last-Event-ID (finding 12)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, apiKeys: ["key-a", "key-b"], maxSteps: 1000, sseEndGraceMs: 300, ssePerJob: 24, ssePerKey: 32 }, {});
  });
  after(() => s.stop());
  const as = bearer;
  const submit = (key: string, fields: Record<string, string>) => submitJob(s.url, key, fields);

  it("20 listeners that never read: previews are dropped, the bytes held stay bounded, a reader alongside gets a whole stream, all streams close after the end", async () => {
    // about 6 MB of events per stream (256 px previews): more than the kernel's socket buffers
    // take in on loopback (up to 4 MB sent and unacknowledged), so the server's writes are refused
    const id = await submit("key-a", { steps: "300", resolution: "256" });
    const socks = await Promise.all(Array.from({ length: 20 }, () => neverReads(s.port, `/v1/jobs/${id}/events?previews=1`, as("key-a"))));
    try {
      let maxQueued = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          maxQueued = Math.max(maxQueued, (await gauges(s.url)).queued);
          await sleep(25);
        }
      })();
      const reader = await readSse(`${s.url}/v1/jobs/${id}/events?previews=1`, as("key-a"));
      sampling = false;
      await sampler;
      expect(reader.events.at(-1)!.event).to.equal("succeeded");
      const ids = reader.events.map((e) => Number(e.id));
      for (let i = 1; i < ids.length; i++) expect(ids[i]).to.be.greaterThan(ids[i - 1]);
      const frames = reader.events.map((e) => `id: ${e.id}\nevent: ${e.event}\ndata: ${e.data}\n\n`.length);
      const previewFrame = Math.max(...reader.events.filter((e) => e.data.includes('"preview"')).map((e) => e.data.length + 64));
      const sent = frames.reduce((a, b) => a + b, 0);
      // per stream: the response's 16 KiB high-water mark with the one frame that crossed it, one
      // held preview, and the bounded lifecycle events
      const perStream = 16 * 1024 + 2 * previewFrame + SSE_QUEUE_BYTES;
      const g = await gauges(s.url);
      console.log(`      ${reader.events.length} events, ${sent} bytes per full stream, preview frame <= ${previewFrame} B; 20 unread streams held at most ${maxQueued} B (bound ${20 * perStream} B); ${g.dropped} events dropped`);
      expect(g.dropped, "progress events and previews dropped for the slow clients").to.be.greaterThan(0);
      expect(maxQueued).to.be.at.most(20 * perStream);
      // the unread streams end once their terminal event has had its grace (300 ms here)
      await until("every stream to close", async () => (await gauges(s.url)).streams === 0);
      expect((await gauges(s.url)).queued).to.equal(0);
    } finally {
      for (const sock of socks) sock.destroy();
    }
  });

  it("a 21st stream on one job, or one past the key's total, is a 429 with a JSON error; closing one lets the next in", async () => {
    // one worker: a1 runs long, a2 and b1 wait behind it, so every stream stays open until cancelled
    const a1 = await submit("key-a", { steps: "1000" });
    const a2 = await submit("key-a", { steps: "2" });
    const b1 = await submit("key-b", { steps: "2" });
    const socks: net.Socket[] = [];
    const status = async (id: string, key: string) => {
      const ctrl = new AbortController();
      const r = await fetch(`${s.url}/v1/jobs/${id}/events`, { headers: as(key), signal: ctrl.signal });
      const body = r.status === 200 ? null : ((await r.json()) as { error: { code: string; message: string } });
      if (r.status === 200) ctrl.abort();
      return { status: r.status, body };
    };
    try {
      for (let i = 0; i < 24; i++) socks.push(await neverReads(s.port, `/v1/jobs/${a1}/events`, as("key-a")));
      await until("24 streams open", async () => (await gauges(s.url)).streams === 24);
      const perJob = await status(a1, "key-a");
      expect(perJob.status).to.equal(429);
      expect(perJob.body!.error.code).to.equal("too_many_streams");
      expect(perJob.body!.error.message).to.match(/REWARD_EDIT_SSE_PER_JOB/);
      for (let i = 0; i < 8; i++) socks.push(await neverReads(s.port, `/v1/jobs/${a2}/events`, as("key-a")));
      await until("32 streams open", async () => (await gauges(s.url)).streams === 32);
      const perKey = await status(a2, "key-a");
      expect(perKey.status).to.equal(429);
      expect(perKey.body!.error.message).to.match(/REWARD_EDIT_SSE_PER_KEY/);
      // another key has its own count
      expect((await status(b1, "key-b")).status).to.equal(200);
      // a2 cancelled: its 8 streams are closed after their terminal event
      await fetch(`${s.url}/v1/jobs/${a2}`, { method: "DELETE", headers: as("key-a") });
      await until("a2's streams to close", async () => (await gauges(s.url)).streams === 24);
      expect((await status(a2, "key-a")).status).to.equal(200);
      expect((await status(b1, "key-b")).status).to.equal(200);
      socks.shift()!.destroy();
      await until("one of a1's streams to close", async () => (await gauges(s.url)).streams === 23);
      expect((await status(a1, "key-a")).status).to.equal(200);
    } finally {
      for (const sock of socks) sock.destroy();
      for (const [id, key] of [[a1, "key-a"], [b1, "key-b"]]) await fetch(`${s.url}/v1/jobs/${id}`, { method: "DELETE", headers: as(key) });
    }
  });

  it("Last-Event-ID is decimal digits or a 400 naming it; at or past the terminal id the terminal event comes again", async () => {
    const done = await submit("key-a", { steps: "3" });
    await readSse(`${s.url}/v1/jobs/${done}/events`, as("key-a"));
    const url = `${s.url}/v1/jobs/${done}/events`;
    for (const bad of ["0x10", "1e1", "-1", "1.5", "+1", "16a", "99999999999999999999"]) {
      const r = await fetch(url, { headers: { ...as("key-a"), "last-event-id": bad } });
      expect(r.status, bad).to.equal(400);
      expect(((await r.json()) as { error: { field: string } }).error.field, bad).to.equal("last-event-id");
    }
    // HTTP strips a header's surrounding blanks; the query parameter keeps them
    for (const bad of [" 16", "16 ", "0x10"]) {
      const r = await fetch(`${url}?last_event_id=${encodeURIComponent(bad)}`, { headers: as("key-a") });
      expect(r.status, JSON.stringify(bad)).to.equal(400);
      expect(((await r.json()) as { error: { field: string } }).error.field).to.equal("last_event_id");
    }
    for (const at of [String(TERMINAL_ID), String(TERMINAL_ID + 1), "999999999999999"]) {
      const { status, events } = await readSse(url, { ...as("key-a"), "last-event-id": at });
      expect(status, at).to.equal(200);
      expect(events.map((e) => [e.id, e.event]), at).to.deep.equal([[String(TERMINAL_ID), "succeeded"]]);
    }
    // an empty header is no header: the whole (finished) stream
    expect((await readSse(url, { ...as("key-a"), "last-event-id": "" })).events.map((e) => e.event)).to.deep.equal(["succeeded"]);
    // a running job resumed past its end: no progress, only the terminal event once it comes
    const running = await submit("key-a", { steps: "60" });
    const rest = await readSse(`${s.url}/v1/jobs/${running}/events`, { ...as("key-a"), "last-event-id": String(TERMINAL_ID) });
    expect(rest.events.map((e) => e.event)).to.deep.equal(["succeeded"]);
    // a plain decimal resumes after that id
    const next = await submit("key-a", { steps: "60" });
    const after16 = await readSse(`${s.url}/v1/jobs/${next}/events`, { ...as("key-a"), "last-event-id": "16" });
    expect(after16.events.at(-1)!.event).to.equal("succeeded");
    for (const e of after16.events) expect(Number(e.id)).to.be.greaterThan(16);
  });
});
