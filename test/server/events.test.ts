import { expect } from "chai";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import sharp from "sharp";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";
import { baseForm, bearer, submitJob } from "../support/forms.js";
import { startRedis, startReplica, stopAll } from "../support/replicas.js";
import { expectJobEvents } from "../support/responses.js";
import { type SseEvent, readSse } from "../support/sse.js";

const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
const TERMINAL = ["succeeded", "failed", "cancelled"];
const data = (e: SseEvent) => JSON.parse(e.data) as Record<string, unknown>;

/** Every event has a numeric id, and the ids only go up. */
function expectWellFormed(events: SseEvent[]): void {
  const ids = events.map((e) => Number(e.id));
  for (const [i, id] of ids.entries()) expect(Number.isInteger(id), `event ${i} id ${events[i].id}`).to.equal(true);
  for (let i = 1; i < ids.length; i++) expect(ids[i], `ids ${ids.join(",")}`).to.be.greaterThan(ids[i - 1]);
}

/** queued? started? progress* terminal, in that order, with steps that never go back. */
function expectLifeOrder(events: SseEvent[]): void {
  const names = events.map((e) => e.event).join(" ");
  expect(names).to.match(/^(queued )?(started )?(progress )*(succeeded|failed|cancelled)$/);
  const steps = events.filter((e) => e.event === "progress").map((e) => data(e).step as number);
  for (let i = 1; i < steps.length; i++) expect(steps[i]).to.be.at.least(steps[i - 1]);
}

describe("job events: GET /v1/jobs/{id}/events as Server-Sent Events (issue 31)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, apiKeys: ["key-a", "key-b"], maxSteps: 1000 }, {});
  });
  after(() => s.stop());
  const as = bearer;
  const submit = (key: string, fields: Record<string, string>) => submitJob(s.url, key, fields);

  it("started, progress with step/steps/elapsed/eta and PNG previews of the announced size, then succeeded; the stream ends", async () => {
    const id = await submit("key-a", { steps: "12" });
    const { status, contentType, events } = await readSse(`${s.url}/v1/jobs/${id}/events?previews=1`, as("key-a"));
    expect(status).to.equal(200);
    expect(contentType).to.match(/^text\/event-stream/);
    expectWellFormed(events);
    expectLifeOrder(events);
    expectJobEvents(events);
    const last = events.at(-1)!;
    expect(last.event).to.equal("succeeded");
    expect(data(last)).to.include({ id, state: "succeeded", result: `/v1/jobs/${id}/result` });
    const progress = events.filter((e) => e.event === "progress").map(data);
    expect(progress.length).to.be.greaterThan(0);
    for (const p of progress) {
      expect(p.steps).to.equal(12);
      expect(p.step).to.be.within(1, 12);
      expect(p).to.have.property("elapsed_ms");
      expect(p).to.have.property("eta_ms");
    }
    const withPreview = progress.filter((p) => typeof p.preview === "string");
    expect(withPreview.length, "progress events carrying a preview").to.be.greaterThan(0);
    for (const p of withPreview) {
      const m = /^data:image\/png;base64,(.+)$/.exec(p.preview as string);
      expect(m, "a PNG data URL").to.not.equal(null);
      const meta = await sharp(Buffer.from(m![1], "base64")).metadata();
      expect(meta.format).to.equal("png");
      expect([meta.width, meta.height]).to.deep.equal([p.preview_width, p.preview_height]);
    }
    // without ?previews=1 the same stream carries none (a finished job: only the terminal event)
    const again = await readSse(`${s.url}/v1/jobs/${id}/events`, as("key-a"));
    expect(again.events.map((e) => e.event)).to.deep.equal(["succeeded"]);
  });

  it("a waiting job reports its position; DELETE ends its stream with cancelled", async () => {
    const running = await submit("key-a", { steps: "1000", candidates: "3" });
    const waiting = await submit("key-a", { steps: "4" });
    const stream = readSse(`${s.url}/v1/jobs/${waiting}/events`, as("key-a"));
    const first = readSse(`${s.url}/v1/jobs/${running}/events`, as("key-a"), (e) => e.event === "progress");
    expect((await first).events.map((e) => e.event).slice(0, 1)).to.deep.equal(["started"]);
    expect((await fetch(`${s.url}/v1/jobs/${waiting}`, { method: "DELETE", headers: as("key-a") })).status).to.equal(202);
    const { events } = await stream;
    expectWellFormed(events);
    expect(events.map((e) => e.event)).to.deep.equal(["queued", "cancelled"]);
    expectJobEvents(events);
    expect(data(events[0])).to.include({ id: waiting, position: 0 });
    expect(data(events[1])).to.include({ state: "cancelled" });
    await fetch(`${s.url}/v1/jobs/${running}`, { method: "DELETE", headers: as("key-a") });
    const { events: ended } = await readSse(`${s.url}/v1/jobs/${running}/events`, as("key-a"));
    expect(ended.at(-1)!.event).to.equal("cancelled");
  });

  it("a reconnect with Last-Event-ID continues after that event, without repeats", async () => {
    const id = await submit("key-a", { steps: "300" });
    const part = await readSse(`${s.url}/v1/jobs/${id}/events`, as("key-a"), (e) => e.event === "progress");
    const lastId = part.events.at(-1)!.id!;
    const rest = await readSse(`${s.url}/v1/jobs/${id}/events`, { ...as("key-a"), "last-event-id": lastId });
    expectWellFormed([...part.events, ...rest.events]);
    expectLifeOrder([...part.events, ...rest.events]);
    for (const e of rest.events) expect(Number(e.id)).to.be.greaterThan(Number(lastId));
    expect(rest.events.at(-1)!.event).to.equal("succeeded");
  });

  it("a client that goes away mid-stream leaves no listener behind", async () => {
    const before = s.pool.listenerCount("progress");
    const id = await submit("key-a", { steps: "400" });
    await readSse(`${s.url}/v1/jobs/${id}/events`, as("key-a"), (e) => e.event === "progress");
    for (let i = 0; i < 100 && s.pool.listenerCount("progress") !== before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(s.pool.listenerCount("progress")).to.equal(before);
    await fetch(`${s.url}/v1/jobs/${id}`, { method: "DELETE", headers: as("key-a") });
  });

  it("another key's job is a 404, as its status is; no key at all is a 401", async () => {
    const id = await submit("key-a", { steps: "2" });
    const other = await readSse(`${s.url}/v1/jobs/${id}/events`, as("key-b"));
    expect(other.status).to.equal(404);
    expect((await readSse(`${s.url}/v1/jobs/${id}/events`)).status).to.equal(401);
    const own = await readSse(`${s.url}/v1/jobs/${id}/events`, as("key-a"));
    expect(TERMINAL).to.include(own.events.at(-1)!.event);
  });
});

describe("job events across replicas on Redis (issue 31)", function () {
  this.timeout(90_000);
  const procs: ChildProcess[] = [];
  let a: string;
  let b: string;
  before(async function () {
    const redis = await startRedis();
    if (!redis) return this.skip();
    procs.push(redis.proc);
    const [ra, rb] = await Promise.all([startReplica(redis.url, "A"), startReplica(redis.url, "B")]);
    procs.unshift(ra.proc, rb.proc);
    a = ra.url;
    b = rb.url;
  });
  after(async () => {
    // the replicas first, then their Redis
    await stopAll(procs.slice(0, -1));
    await stopAll(procs.slice(-1));
  });

  it("a job streams from the replica that does not run it: started names the runner, previews decode, succeeded ends it", async () => {
    const r = await fetch(`${a}/v1/jobs`, { method: "POST", body: baseForm({ instruction: "make the mug red", steps: "1000" }, { image: photo }) });
    expect(r.status).to.equal(202);
    const { id } = (await r.json()) as { id: string };
    const first = await readSse(`${a}/v1/jobs/${id}/events`, {}, (e) => e.event === "started" || TERMINAL.includes(e.event));
    const runner = data(first.events.find((e) => e.event === "started")!).replica as string;
    expect(["A", "B"]).to.include(runner);
    const { events } = await readSse(`${runner === "A" ? b : a}/v1/jobs/${id}/events?previews=1`);
    if (process.env.DEBUG_SSE) console.log(events.map((e) => `${e.id}:${e.event}:${e.data.length}`).join(" "));
    expectWellFormed(events);
    expectLifeOrder(events);
    expectJobEvents(events);
    expect(events.at(-1)!.event).to.equal("succeeded");
    expect(data(events.find((e) => e.event === "started")!).replica).to.equal(runner);
    const previews = events.filter((e) => e.event === "progress").map(data).filter((p) => p.preview);
    expect(previews.length, "progress events carrying a preview").to.be.greaterThan(0);
    for (const p of previews) {
      const meta = await sharp(Buffer.from((p.preview as string).split(",")[1], "base64")).metadata();
      expect([meta.format, meta.width, meta.height]).to.deep.equal(["png", p.preview_width, p.preview_height]);
    }
    // a reconnect to the other replica after the first progress event repeats nothing
    const r2 = await fetch(`${b}/v1/jobs`, { method: "POST", body: baseForm({ instruction: "make the mug red", steps: "300" }, { image: photo }) });
    const id2 = ((await r2.json()) as { id: string }).id;
    const part = await readSse(`${a}/v1/jobs/${id2}/events`, {}, (e) => e.event === "progress" || TERMINAL.includes(e.event));
    const rest = await readSse(`${b}/v1/jobs/${id2}/events`, { "last-event-id": part.events.at(-1)!.id! });
    expectWellFormed([...part.events, ...rest.events]);
    expect([...part.events, ...rest.events].at(-1)!.event).to.equal("succeeded");
  });
});
