import { expect } from "chai";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { BUNDLED_MODEL } from "../../src/paths.js";
import { CLI, PHOTOS, tempDir } from "../helpers.js";

const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Debian's redis-server on a loopback port, every write fsynced to an append-only file. */
class RedisServer {
  private proc?: ChildProcess;
  readonly dir = tempDir("redis-");
  private started = false;
  constructor(
    public port: number,
    readonly password?: string,
    readonly maxMemory?: string,
  ) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }
  /**
   * Starts redis-server; the port came from freePort(), which had to close it again, so another
   * process may take it in between: then redis-server exits at once and, on a first start, a new
   * port is tried (a restart keeps its port: the replicas know it).
   */
  async start(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const proc = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", this.dir, ...(this.password ? ["--requirepass", this.password] : []), ...(this.maxMemory ? ["--maxmemory", this.maxMemory, "--maxmemory-policy", "noeviction"] : [])], { stdio: "ignore" });
      this.proc = proc;
      for (let i = 0; i < 100 && proc.exitCode === null; i++) {
        const up = await new Promise<boolean>((r) => net.connect(this.port, "127.0.0.1").on("connect", function (this: net.Socket) { this.destroy(); r(true); }).on("error", () => r(false)));
        // answering on the port is not enough: it must be our redis-server, still running
        if (up && proc.exitCode === null) {
          await sleep(20);
          if (proc.exitCode === null) {
            this.started = true;
            return;
          }
        }
        await sleep(50);
      }
      if (this.started) break;
      this.port = await freePort();
    }
    throw new Error("redis-server did not start");
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise((r) => p.once("exit", r).kill("SIGTERM"));
  }
}

interface Replica {
  url: string;
  proc: ChildProcess;
  stderr: () => string;
}

/** A `reward-edit serve` process: one inference worker, claims that lapse after 2 s. */
function replica(redisUrl: string, extra: NodeJS.ProcessEnv = {}): Promise<Replica> {
  const proc = spawn(process.execPath, [CLI, "serve"], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", REDIS_URL: redisUrl, REWARD_EDIT_MODEL: BUNDLED_MODEL, REWARD_EDIT_WORKERS: "1", REWARD_EDIT_JOB_LOCK_MS: "2000", REWARD_EDIT_DRAIN_TIMEOUT_MS: "30000", LOG_LEVEL: "warn", ...extra },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  return new Promise((resolve, reject) => {
    proc.stderr!.on("data", (d) => {
      err += d;
      const m = /on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ url: m[1], proc, stderr: () => err });
    });
    proc.on("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

const stopReplica = async (r: Replica | undefined, signal: NodeJS.Signals = "SIGTERM") => {
  if (!r || r.proc.exitCode !== null || r.proc.signalCode !== null) return null;
  return new Promise<number | null>((resolve) => r.proc.once("exit", (code) => resolve(code)).kill(signal));
};

/** A slow job: 3 candidates of 100 steps on the bundled editor (a couple of seconds). */
async function submit(r: Replica, fields: Record<string, string> = {}) {
  const f = new FormData();
  f.append("image", new Blob([new Uint8Array(photo)]), "p.png");
  f.append("instruction", "make the mug red");
  for (const [k, v] of Object.entries({ steps: "100", candidates: "3", ...fields })) f.append(k, v);
  const res = await fetch(`${r.url}/v1/jobs`, { method: "POST", body: f });
  return { status: res.status, body: await res.json() };
}

const job = async (r: Replica, id: string) => (await fetch(`${r.url}/v1/jobs/${id}`)).json();

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await sleep(100);
  }
}

describe("jobs across replicas (REDIS_URL, real redis-server)", function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let a: Replica | undefined;
  let b: Replica | undefined;
  before(async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
  });
  afterEach(async () => {
    await Promise.all([stopReplica(a, "SIGKILL"), stopReplica(b, "SIGKILL")]);
    a = b = undefined;
  });
  after(() => redis.stop());

  it("submit on A; poll, fetch, cancel on B; queue position and the 429 limit are global; sync edits on either", async () => {
    [a, b] = await Promise.all([replica(redis.url, { REWARD_EDIT_QUEUE_SIZE: "2" }), replica(redis.url, { REWARD_EDIT_QUEUE_SIZE: "2" })]);
    expect(await (await fetch(`${b.url}/readyz`)).json()).to.include({ ready: true, store: "redis" });
    const first = (await submit(a)).body;
    const running = await until("the job to run", () => job(b!, first.id), (j) => j.state === "running" && j.progress > 0);
    expect(running.progress).to.be.below(100);
    // both replicas busy, two waiting: the limit is reached whichever replica is asked
    const second = (await submit(b)).body;
    await until("both replicas busy", () => job(a!, second.id), (j) => j.state === "running");
    const third = (await submit(a)).body;
    const fourth = (await submit(b)).body;
    expect((await job(b, third.id)).queue_position).to.equal(0);
    expect((await job(a, fourth.id)).queue_position).to.equal(1);
    const refused = await submit(b);
    expect(refused.status).to.equal(429);
    // cancel on the other replica: a waiting job and a running one
    expect((await (await fetch(`${b.url}/v1/jobs/${fourth.id}`, { method: "DELETE" })).json()).state).to.equal("cancelled");
    await fetch(`${a.url}/v1/jobs/${second.id}`, { method: "DELETE" });
    await until("the running job to stop", () => job(b!, second.id), (j) => j.state === "cancelled");
    const done = await until("the first job", () => job(b!, first.id), (j) => j.state === "succeeded");
    expect(done.progress).to.equal(100);
    const result = await fetch(`${b.url}${done.result}?format=json`);
    expect(result.status).to.equal(200);
    expect((await result.json()).candidates).to.have.length(3);
    await until("the third job", () => job(a!, third.id), (j) => j.state === "succeeded");
    expect((await job(a, fourth.id)).state).to.equal("cancelled");
    // synchronous edits keep working on any replica
    const f = new FormData();
    f.append("image", new Blob([new Uint8Array(photo)]), "p.png");
    f.append("instruction", "make the mug red");
    const sync = await fetch(`${a.url}/v1/edits`, { method: "POST", body: f });
    expect(sync.status).to.equal(200);
    expect(sync.headers.get("content-type")).to.equal("image/png");
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).to.match(/reward_edit_queue_depth 0/);
  });

  it("SIGKILL of A with a job running and two queued: B takes over and finishes all three", async () => {
    a = await replica(redis.url);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit(a)).body.id as string);
    await until("A to be running one", () => job(a!, ids[0]), (j) => j.state === "running" && j.step > 0);
    expect((await job(a, ids[2])).state).to.equal("queued");
    await stopReplica(a, "SIGKILL");
    a = undefined;
    b = await replica(redis.url);
    const states: string[] = [];
    for (const id of ids) states.push((await until(`job ${id}`, () => job(b!, id), (j) => j.state === "succeeded" || j.state === "failed", 90_000)).state);
    console.log(`      SIGKILL: ${ids.length} jobs (1 running on A, 2 queued) -> ${states.join(", ")} on B`);
    expect(states).to.deep.equal(["succeeded", "succeeded", "succeeded"]);
    for (const id of ids) expect((await fetch(`${b.url}/v1/jobs/${id}/result`)).status).to.equal(200);
  });

  it("SIGTERM drains A without losing its queued jobs: A finishes the one it runs, B the rest", async () => {
    [a, b] = await Promise.all([replica(redis.url, { REWARD_EDIT_REPLICA: "A" }), replica(redis.url, { REWARD_EDIT_REPLICA: "B" })]);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await submit(a)).body.id as string);
    const running = await until("one running on each replica", async () => Promise.all(ids.map((id) => job(b!, id))), (js) => js.filter((j) => j.state === "running").length === 2);
    const onA = running.filter((j) => j.state === "running" && j.replica === "A").map((j) => j.id as string);
    expect(onA).to.have.length(1);
    expect(running.filter((j) => j.state === "running" && j.replica === "B")).to.have.length(1);
    expect(running.filter((j) => j.state === "queued").map((j) => j.replica)).to.deep.equal([null, null]);
    expect(await stopReplica(a, "SIGTERM")).to.equal(0);
    a = undefined;
    const finished = [];
    for (const id of ids) finished.push(await until(`job ${id}`, () => job(b!, id), (j) => j.state === "succeeded" || j.state === "failed", 90_000));
    expect(finished.map((j) => j.state)).to.deep.equal(["succeeded", "succeeded", "succeeded", "succeeded"]);
    // A's running job was finished by A before it exited; everything else went to B
    expect(finished.filter((j) => j.replica === "A").map((j) => j.id)).to.deep.equal(onA);
    expect(finished.filter((j) => j.replica === "B")).to.have.length(3);
  });

  it("Redis restarting mid-run: both replicas reconnect, no accepted job is lost, new jobs are served", async () => {
    [a, b] = await Promise.all([replica(redis.url), replica(redis.url)]);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await submit(i % 2 ? b : a)).body.id as string);
    await until("two running", async () => Promise.all(ids.map((id) => job(b!, id))), (js) => js.filter((j) => j.state === "running").length === 2);
    await redis.stop();
    await sleep(1500);
    await redis.start();
    await until("A ready again", async () => (await fetch(`${a!.url}/readyz`)).status, (s) => s === 200, 30_000);
    const states: string[] = [];
    for (const id of ids) states.push((await until(`job ${id}`, () => job(a!, id), (j) => j.state === "succeeded" || j.state === "failed", 90_000)).state);
    console.log(`      Redis restart: ${ids.length} jobs (2 running, 2 queued at the restart) -> ${states.join(", ")}`);
    expect(states).to.deep.equal(["succeeded", "succeeded", "succeeded", "succeeded"]);
    const after = (await submit(b, { candidates: "1", steps: "10" })).body.id as string;
    expect((await until("a new job", () => job(a!, after), (j) => j.state === "succeeded")).state).to.equal("succeeded");
  });

  it("a masked job travels through Redis: submitted on A, its result on B keeps the mask's outside exactly", async () => {
    [a, b] = await Promise.all([replica(redis.url), replica(redis.url)]);
    const sharp = (await import("sharp")).default;
    const meta = await sharp(photo).metadata();
    const W = meta.width!;
    const H = meta.height!;
    const m = Buffer.alloc(W * H);
    for (let i = 0; i < m.length; i++) if (i % W < W / 2) m[i] = 255;
    const f = new FormData();
    f.append("image", new Blob([new Uint8Array(photo)]), "p.png");
    f.append("mask", new Blob([new Uint8Array(await sharp(m, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer())]), "m.png");
    for (const [k, v] of Object.entries({ instruction: "make the mug red", steps: "4", mask_mode: "blend" })) f.append(k, v);
    const id = ((await (await fetch(`${a.url}/v1/jobs`, { method: "POST", body: f })).json()) as { id: string }).id;
    await until("the masked job", () => job(b!, id), (j) => j.state === "succeeded");
    // what a status poll reads (BullMQ's job hash) holds no image; the upload, mask and result live apart
    const { Redis } = await import("ioredis");
    const r = new Redis(redis.url);
    try {
      const state = await r.hget(`reward-edit:edits:${id}`, "data");
      const result = await r.hget(`reward-edit:edits:${id}`, "returnvalue");
      expect(state!.length + result!.length).to.be.below(4_000);
      const blobs = await r.hgetallBuffer(`reward-edit:blobs:${id}`);
      expect(Object.keys(blobs).sort()).to.deep.equal(["image", "mask", "out:0", "outmask:0"]);
      expect(blobs.image.equals(photo)).to.equal(true);
      expect(await r.pttl(`reward-edit:blobs:${id}`)).to.be.within(1, 600_000);
    } finally {
      r.disconnect();
    }
    const res = await fetch(`${b.url}/v1/jobs/${id}/result?format=image`);
    expect(JSON.parse(res.headers.get("x-reward-edit-parameters")!).maskMode).to.equal("blend");
    const out = await sharp(Buffer.from(await res.arrayBuffer())).removeAlpha().raw().toBuffer();
    const src = await sharp(photo).removeAlpha().raw().toBuffer();
    let differ = 0;
    for (let i = 0; i < W * H; i++) if (i % W >= W / 2 && !out.subarray(i * 3, i * 3 + 3).equals(src.subarray(i * 3, i * 3 + 3))) differ++;
    expect(differ).to.equal(0);
  });

  it("60 submissions at once across two replicas: no more accepted than the global limit allows (admission is atomic)", async () => {
    [a, b] = await Promise.all([replica(redis.url, { REWARD_EDIT_QUEUE_SIZE: "4" }), replica(redis.url, { REWARD_EDIT_QUEUE_SIZE: "4" })]);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => submit(i % 2 ? b! : a!, { steps: "100", candidates: "3" })));
    const accepted = results.filter((r) => r.status === 202);
    expect(results.filter((r) => r.status !== 202 && r.status !== 429)).to.deep.equal([]);
    // 4 waiting, plus at most one running on each replica's single worker
    expect(accepted.length).to.be.within(4, 6);
    for (const r of accepted) await fetch(`${a!.url}/v1/jobs/${r.body.id}`, { method: "DELETE" });
  });

  it("a full Redis (maxmemory, noeviction): submissions answer 503 with Retry-After and /readyz goes false", async () => {
    const small = new RedisServer(await freePort(), undefined, "3mb");
    await small.start();
    try {
      a = await replica(small.url, { REWARD_EDIT_QUEUE_SIZE: "100" });
      const sharp = (await import("sharp")).default;
      const noise = Buffer.from(Array.from({ length: 400 * 400 * 3 }, (_, i) => (i * 2654435761) >>> 24));
      const big = await sharp(noise, { raw: { width: 400, height: 400, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
      let full: Response | undefined;
      for (let i = 0; i < 12 && !full; i++) {
        const f = new FormData();
        f.append("image", new Blob([new Uint8Array(big)]), "p.png");
        for (const [k, v] of Object.entries({ instruction: "make it red", steps: "100", candidates: "3" })) f.append(k, v);
        const r = await fetch(`${a.url}/v1/jobs`, { method: "POST", body: f });
        if (r.status === 503) full = r;
        else expect(r.status).to.equal(202);
      }
      expect(full, "Redis never filled").to.not.equal(undefined);
      expect(((await full!.json()) as { error: { code: string } }).error.code).to.equal("store_full");
      expect(Number(full!.headers.get("retry-after"))).to.be.greaterThan(0);
      const ready = await fetch(`${a.url}/readyz`);
      expect(ready.status).to.equal(503);
      expect(((await ready.json()) as { ready: boolean }).ready).to.equal(false);
    } finally {
      await stopReplica(a, "SIGKILL");
      a = undefined;
      await small.stop();
    }
  });

  it("results expire after REWARD_EDIT_JOB_TTL_MS under Redis too: the job answers 404 and its images are gone", async () => {
    a = await replica(redis.url, { REWARD_EDIT_JOB_TTL_MS: "2000" });
    const { body } = await submit(a, { candidates: "1", steps: "2" });
    await until("the job", () => job(a!, body.id), (j) => j.state === "succeeded");
    expect((await fetch(`${a.url}/v1/jobs/${body.id}/result`)).status).to.equal(200);
    await until("expiry", () => fetch(`${a!.url}/v1/jobs/${body.id}`).then((r) => r.status), (status) => status === 404, 20_000);
    const { Redis } = await import("ioredis");
    const r = new Redis(redis.url);
    try {
      expect(await r.exists(`reward-edit:blobs:${body.id}`)).to.equal(0);
    } finally {
      r.disconnect();
    }
  });

  it("a Redis with a password: REDIS_PASSWORD (kept out of the URL) connects; a wrong one stops start-up with one line", async () => {
    const locked = new RedisServer(await freePort(), "s3cret-pass");
    await locked.start();
    try {
      a = await replica(locked.url, { REDIS_PASSWORD: "s3cret-pass" });
      const r = await submit(a, { candidates: "1", steps: "2" });
      expect(r.status).to.equal(202);
      expect((await until("the job", () => job(a!, r.body.id), (j) => j.state === "succeeded")).state).to.equal("succeeded");
      const err = await replica(locked.url, { REDIS_PASSWORD: "wrong" }).then(
        () => "started",
        (e: Error) => e.message,
      );
      expect(err).to.match(/cannot reach Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\): .*(WRONGPASS|invalid)/i);
    } finally {
      await locked.stop();
    }
  });

  it("a bad REDIS_URL is a clear start-up error, not a hang", async () => {
    const closed = await freePort();
    for (const [url, message] of [
      ["http://127.0.0.1:6379", /REDIS_URL must start with redis:\/\//],
      [`redis://127.0.0.1:${closed}`, new RegExp(`cannot reach Redis at 127\\.0\\.0\\.1:${closed} \\(REDIS_URL\\)`)],
    ] as const) {
      const err = await replica(url).then(
        () => "started",
        (e: Error) => e.message,
      );
      expect(err).to.match(/serve exited 1/).and.match(message);
    }
  });
});
