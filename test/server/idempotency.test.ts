import { expect } from "chai";
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import sharp from "sharp";
import { serverConfigFrom } from "../../src/config/server.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";
import { startRedis, startReplica, stopAll } from "../support/replicas.js";

/** A server in this process, or a replica process: what the requests need of either. */
type Server = { url: string };

const K1 = "idem-key-one";
const K2 = "idem-key-two";
const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Edits this process's inference workers ran, whatever their outcome (the editor's own count). */
async function editsRun(s: Server): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  return [...text.matchAll(/^reward_edit_edit_duration_seconds_count\{[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

interface Sent {
  status: number;
  headers: Headers;
  bytes: Buffer;
  json: () => Record<string, any>;
}

async function post(s: Server, route: string, o: { key?: string; apiKey?: string; fields?: Record<string, string>; image?: Buffer } = {}): Promise<Sent> {
  const f = new FormData();
  f.append("image", new Blob([new Uint8Array(o.image ?? photo)]), "p.png");
  const fields = route === "/v1/images/edits" ? { prompt: "make the mug red", steps: "2", seed: "5" } : { instruction: "make the mug red", steps: "2", seed: "5" };
  for (const [k, v] of Object.entries({ ...fields, ...o.fields })) f.append(k, v);
  const headers: Record<string, string> = { authorization: `Bearer ${o.apiKey ?? K1}` };
  if (o.key !== undefined) headers["idempotency-key"] = o.key;
  const res = await fetch(`${s.url}${route}`, { method: "POST", body: f, headers });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes, json: () => JSON.parse(bytes.toString("utf8")) };
}

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

const jobState = async (s: Server, id: string, apiKey = K1) => (await (await fetch(`${s.url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { state: string };
const finished = (s: Server, id: string, apiKey = K1) => until(`job ${id}`, () => jobState(s, id, apiKey), (j) => ["succeeded", "failed", "cancelled"].includes(j.state));

const serve = (overrides: Parameters<typeof startServer>[1] = {}) => startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, apiKeys: [K1, K2], ...overrides }, {});

describe("Idempotency-Key on the POSTs that start work (issue 41)", function () {
  this.timeout(90_000);

  it("REWARD_EDIT_IDEMPOTENCY_TTL takes a number with its unit (default 24h); anything else stops start-up in one line naming it", () => {
    expect(serverConfigFrom({}).idempotencyTtl).to.equal(86_400_000);
    expect(serverConfigFrom({ REWARD_EDIT_IDEMPOTENCY_TTL: "90s" }).idempotencyTtl).to.equal(90_000);
    expect(serverConfigFrom({ REWARD_EDIT_IDEMPOTENCY_TTL: "1.5h" }).idempotencyTtl).to.equal(5_400_000);
    for (const bad of ["24", "abc", "500ms", "31d", "-1h"]) {
      expect(() => serverConfigFrom({ REWARD_EDIT_IDEMPOTENCY_TTL: bad }), bad).to.throw(/^invalid configuration: REWARD_EDIT_IDEMPOTENCY_TTL=/);
    }
  });

  describe("in memory", () => {
    let s: RunningServer;
    before(async () => {
      s = await serve();
    });
    after(() => s.stop());

    it("two identical POST /v1/jobs with one key make one job: the retry gets it, marked Idempotent-Replayed", async () => {
      const before = await editsRun(s);
      const first = await post(s, "/v1/jobs", { key: "jobs-1" });
      expect(first.status).to.equal(202);
      expect(first.headers.get("idempotent-replayed")).to.equal(null);
      const retry = await post(s, "/v1/jobs", { key: "jobs-1" });
      expect(retry.status).to.equal(202);
      expect(retry.headers.get("idempotent-replayed")).to.equal("true");
      expect(retry.json().id).to.equal(first.json().id);
      expect(retry.headers.get("location")).to.equal(`/v1/jobs/${first.json().id}`);
      await finished(s, first.json().id);
      // a retry after the job ended answers with it as it is now
      const late = await post(s, "/v1/jobs", { key: "jobs-1" });
      expect([late.json().id, late.json().state]).to.deep.equal([first.json().id, "succeeded"]);
      expect(await editsRun(s)).to.equal(before + 1);
      // the IETF draft's quoted form names the same key
      expect((await post(s, "/v1/jobs", { key: '"jobs-1"' })).json().id).to.equal(first.json().id);
    });

    it("the synchronous routes replay the answer byte for byte without editing again (image, JSON, OpenAI's b64 and stream)", async () => {
      const cases: Array<[string, Record<string, string>]> = [
        ["/v1/edits", {}],
        ["/v1/edits", { response_format: "json" }],
        ["/v1/images/edits", {}],
        ["/v1/images/edits", { stream: "true", partial_images: "1" }],
      ];
      for (const [i, [route, fields]] of cases.entries()) {
        const before = await editsRun(s);
        const first = await post(s, route, { key: `sync-${i}`, fields });
        expect(first.status, first.bytes.toString()).to.equal(200);
        const retry = await post(s, route, { key: `sync-${i}`, fields });
        expect(retry.status).to.equal(200);
        expect(retry.headers.get("idempotent-replayed")).to.equal("true");
        expect(retry.headers.get("content-type")).to.equal(first.headers.get("content-type"));
        expect(retry.headers.get("x-reward-edit-parameters")).to.equal(first.headers.get("x-reward-edit-parameters"));
        expect(retry.bytes.equals(first.bytes), `${route} ${JSON.stringify(fields)}`).to.equal(true);
        expect(await editsRun(s)).to.equal(before + 1);
      }
    });

    it("the same key with another request is a 422 naming the header: other fields, other file bytes, another endpoint", async () => {
      expect((await post(s, "/v1/jobs", { key: "reuse" })).status).to.equal(202);
      const other = await sharp(photo).flip().png().toBuffer();
      for (const sent of [
        await post(s, "/v1/jobs", { key: "reuse", fields: { instruction: "make the mug blue" } }),
        await post(s, "/v1/jobs", { key: "reuse", image: other }),
        await post(s, "/v1/edits", { key: "reuse" }),
      ]) {
        expect(sent.status).to.equal(422);
        expect(sent.json().error).to.include({ code: "idempotency_key_reused", field: "Idempotency-Key" });
      }
      // OpenAI's route answers in OpenAI's error shape, the header as param
      const openai = await post(s, "/v1/images/edits", { key: "reuse" });
      expect(openai.status).to.equal(422);
      expect(openai.json().error).to.include({ param: "Idempotency-Key", code: "idempotency_key_reused" });
    });

    it("keys belong to the API key that sent them: another API key with the same Idempotency-Key gets its own job", async () => {
      const mine = (await post(s, "/v1/jobs", { key: "shared-name" })).json();
      const theirs = await post(s, "/v1/jobs", { key: "shared-name", apiKey: K2 });
      expect(theirs.status).to.equal(202);
      expect(theirs.headers.get("idempotent-replayed")).to.equal(null);
      expect(theirs.json().id).to.not.equal(mine.id);
      await finished(s, theirs.json().id, K2);
      // and K2's retry finds K2's job
      expect((await post(s, "/v1/jobs", { key: "shared-name", apiKey: K2 })).json().id).to.equal(theirs.json().id);
    });

    it("a synchronous edit still running answers its retry 409; a request refused before queueing frees its key; a malformed key is a 400", async () => {
      const slow = { steps: "100", candidates: "4" };
      const gauge = async (name: string) => (await (await fetch(`${s.url}/metrics`)).text()).match(new RegExp(`^${name} (\\d+)`, "m"))?.[1];
      await until("the earlier jobs to end", async () => `${await gauge("reward_edit_in_flight")},${await gauge("reward_edit_queue_depth")}`, (v) => v === "0,0");
      const before = await editsRun(s);
      const first = post(s, "/v1/edits", { key: "slow", fields: slow });
      // the retry is sent once the first is claimed and running
      await until("the first edit to run", () => gauge("reward_edit_in_flight"), (n) => n === "1");
      const during = await post(s, "/v1/edits", { key: "slow", fields: slow });
      expect(during.status).to.equal(409);
      expect(during.json().error).to.include({ code: "idempotency_in_progress", field: "Idempotency-Key" });
      expect(Number(during.headers.get("retry-after"))).to.be.greaterThan(0);
      const done = await first;
      expect(done.status).to.equal(200);
      const after = await post(s, "/v1/edits", { key: "slow", fields: slow });
      expect(after.bytes.equals(done.bytes)).to.equal(true);
      expect(await editsRun(s)).to.equal(before + 1);
      // refused (400) before anything was queued: the corrected request with that key runs
      expect((await post(s, "/v1/jobs", { key: "fixed", fields: { steps: "0" } })).status).to.equal(400);
      expect((await post(s, "/v1/jobs", { key: "fixed" })).status).to.equal(202);
      for (const bad of ["", "x".repeat(256), "caf\u00e9"]) {
        const r = await post(s, "/v1/jobs", { key: bad });
        expect(r.status, JSON.stringify(bad)).to.equal(400);
        expect(r.json().error).to.include({ code: "invalid_header", field: "Idempotency-Key" });
      }
      expect((await post(s, "/v1/jobs", { key: "x".repeat(255) })).status).to.equal(202);
    });

    it("an expired key (REWARD_EDIT_IDEMPOTENCY_TTL) makes a new job; an answer over REWARD_EDIT_IDEMPOTENCY_MAX_BODY is remembered by its job", async () => {
      const short = await serve({ idempotencyTtl: 400, idempotencyMaxBody: 0 });
      try {
        const before = await editsRun(short);
        expect((await post(short, "/v1/edits", { key: "big" })).status).to.equal(200);
        const big = await post(short, "/v1/edits", { key: "big" });
        expect(big.status).to.equal(409);
        expect(big.json().error).to.include({ code: "idempotent_answer_not_kept", field: "Idempotency-Key" });
        expect(big.headers.get("location")).to.match(/^\/v1\/jobs\/[0-9a-f-]+$/);
        expect(await editsRun(short)).to.equal(before + 1);
        const first = (await post(short, "/v1/jobs", { key: "brief" })).json();
        expect((await post(short, "/v1/jobs", { key: "brief" })).json().id).to.equal(first.id);
        await finished(short, first.id);
        await sleep(500);
        const again = await post(short, "/v1/jobs", { key: "brief" });
        expect(again.headers.get("idempotent-replayed")).to.equal(null);
        expect(again.json().id).to.not.equal(first.id);
      } finally {
        await short.stop();
      }
    });
  });

  describe("across replicas sharing one redis-server", () => {
    let redis: { url: string; proc: ChildProcess } | null;
    let a: { url: string; proc: ChildProcess };
    let b: { url: string; proc: ChildProcess };
    before(async function () {
      redis = await startRedis();
      if (!redis) return this.skip();
      const env = { REWARD_EDIT_API_KEYS: `${K1},${K2}` };
      [a, b] = await Promise.all([startReplica(redis.url, "A", env), startReplica(redis.url, "B", env)]);
    });
    after(async () => {
      await stopAll([a?.proc, b?.proc]);
      redis?.proc.kill("SIGTERM");
    });

    it("a retry sent to the other replica returns the first's job, or its answer byte for byte; another body is a 422 there too", async () => {
      const before = (await editsRun(a)) + (await editsRun(b));
      const first = await post(a, "/v1/jobs", { key: "cross-1" });
      expect(first.status).to.equal(202);
      const retry = await post(b, "/v1/jobs", { key: "cross-1" });
      expect(retry.headers.get("idempotent-replayed")).to.equal("true");
      expect(retry.json().id).to.equal(first.json().id);
      await finished(b, first.json().id);
      const sync = await post(a, "/v1/edits", { key: "cross-2" });
      expect(sync.status).to.equal(200);
      const replay = await post(b, "/v1/edits", { key: "cross-2" });
      expect(replay.headers.get("idempotent-replayed")).to.equal("true");
      expect(replay.bytes.equals(sync.bytes)).to.equal(true);
      expect((await editsRun(a)) + (await editsRun(b))).to.equal(before + 2);
      expect((await post(b, "/v1/jobs", { key: "cross-1", fields: { seed: "6" } })).status).to.equal(422);
      // another API key's same Idempotency-Key is its own, on Redis too
      const theirs = await post(b, "/v1/jobs", { key: "cross-1", apiKey: K2 });
      expect(theirs.headers.get("idempotent-replayed")).to.equal(null);
      expect(theirs.json().id).to.not.equal(first.json().id);
      await finished(a, theirs.json().id, K2);
    });
  });
});
