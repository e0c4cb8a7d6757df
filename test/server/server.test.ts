import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import os from "node:os";
import sharp from "sharp";
import { pino } from "pino";
import { type RunningServer, startServer } from "../../src/server/server.js";
import * as images from "../fixtures/images.js";
import { PHOTOS, ROOT, TINY, TINY_NO_REWARDS } from "../helpers.js";
import { baseForm } from "../support/forms.js";

const quiet = pino({ level: "silent" });
const photo = readFileSync(path.join(PHOTOS, "coffee.png"));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const form = baseForm;

describe("HTTP service (real port, tiny model)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  const url = (p: string) => `${s.url}${p}`;
  before(async () => {
    s = await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, queueSize: 4, maxUploadBytes: 2_000_000, maxPixels: 4_000_000, jobTtlMs: 1500 }, {});
  });
  after(() => s.stop());

  it("health, readiness, presets, models, OpenAPI 3.1 and Prometheus metrics", async () => {
    expect(await (await fetch(url("/healthz"))).json()).to.deep.equal({ status: "ok" });
    expect(await (await fetch(url("/readyz"))).json()).to.include({ ready: true, model: "tiny-random", workers: 1 });
    const presets = (await (await fetch(url("/v1/presets"))).json()).presets;
    // exactly the presets file, each with its name
    const file = JSON.parse(readFileSync(path.join(ROOT, "src", "presets", "presets.json"), "utf8")) as Record<string, object>;
    expect(presets).to.deep.equal(Object.entries(file).map(([name, p]) => ({ name, ...p })));
    const models = (await (await fetch(url("/v1/models"))).json()).models;
    expect(models[0]).to.include({ name: "tiny-random", takes_rewards: true, provider: "cpu" });
    const doc = await (await fetch(url("/openapi.json"))).json();
    expect(doc.openapi).to.equal("3.1.0");
    expect(Object.keys(doc.paths)).to.include.members(["/v1/edits", "/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/result", "/v1/scores", "/v1/presets", "/v1/models", "/healthz", "/readyz", "/metrics"]);
    await fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "make it red", steps: "2" }) });
    const metrics = await (await fetch(url("/metrics"))).text();
    for (const m of ["reward_edit_edit_duration_seconds_bucket", "reward_edit_step_duration_seconds_count", "reward_edit_queue_depth", "reward_edit_in_flight", "process_resident_memory_bytes"]) {
      expect(metrics).to.contain(m);
    }
  });

  it("POST /v1/edits returns the image at the input's size with its parameters, seed and scores", async () => {
    const post = () => fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "make the mug red", preset: "draft", seed: "5", output_format: "webp" }) });
    const res = await post();
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.equal("image/webp");
    expect(res.headers.get("x-reward-edit-seed")).to.equal("5");
    const params = JSON.parse(res.headers.get("x-reward-edit-parameters")!);
    expect(params).to.include({ steps: 8, preset: "draft", rewardsApplied: true });
    const scores = JSON.parse(res.headers.get("x-reward-edit-scores")!);
    expect(scores).to.have.keys(["following", "preserving", "quality"]);
    expect(scores.following).to.equal(null); // the local scorer does not judge following on a photo
    expect(scores.preserving).to.be.a("number");
    const image = Buffer.from(await res.arrayBuffer());
    const meta = await sharp(image).metadata();
    expect([meta.format, meta.width, meta.height]).to.deep.equal(["webp", 600, 400]);
    // same seed and inputs through the API: the same pixels (each result's C2PA signature is its own)
    const again = await sharp(Buffer.from(await (await post()).arrayBuffer())).raw().toBuffer();
    expect(again.equals(await sharp(image).raw().toBuffer())).to.equal(true);
  });

  it("JSON variant with best-of-N candidates chosen by the reward module", async () => {
    const res = await fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "make the mug red", steps: "3", seed: "10", candidates: "3", rewards: "4.5,3,5", response_format: "json" }) });
    expect(res.status).to.equal(200);
    const body = await res.json();
    expect(body.candidates.map((c: { seed: number }) => c.seed)).to.deep.equal([10, 11, 12]);
    const chosen = body.candidates.filter((c: { chosen: boolean }) => c.chosen);
    expect(chosen).to.have.length(1);
    // the chosen candidate is the one the reward module scored best (mean of the judged perspectives)
    const overalls = body.candidates.map((c: { overall: number | null }) => c.overall).filter((o: number | null) => o !== null);
    expect(overalls).to.have.length(3);
    expect(chosen[0].overall).to.equal(Math.max(...overalls));
    expect(body.seed ?? body.parameters.seed).to.equal(chosen[0].seed);
    expect(body.parameters.rewards).to.deep.equal([4.5, 3, 5]);
    expect(body.scores.perspectives.following.status).to.equal("not_judged");
    expect(body.scores.perspectives.preserving.status).to.equal("scored");
    expect((await sharp(Buffer.from(body.image, "base64")).metadata()).format).to.equal("png");
    // detail keep (the default): the share of pixels kept and the full-resolution mask
    expect(body.detail.mode).to.equal("keep");
    expect(body.detail.kept_fraction).to.be.within(0, 1);
    const mask = await sharp(Buffer.from(body.detail.mask, "base64")).metadata();
    expect([mask.width, mask.height, mask.channels]).to.deep.equal([600, 400, 1]);
    const off = await (await fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "make the mug red", steps: "2", detail: "off", response_format: "json" }) })).json();
    expect(off.detail).to.deep.equal({ mode: "off", kept_fraction: null, mask: null });
  });

  it("async jobs: 202, progress, result, and results that expire", async () => {
    const res = await fetch(url("/v1/jobs"), { method: "POST", body: form({ instruction: "make it red", steps: "6" }) });
    expect(res.status).to.equal(202);
    const job = await res.json();
    expect(res.headers.get("location")).to.equal(`/v1/jobs/${job.id}`);
    expect(["queued", "running", "succeeded"]).to.include(job.state);
    let view = job;
    while (view.state !== "succeeded") {
      await sleep(20);
      view = await (await fetch(url(`/v1/jobs/${job.id}`))).json();
      expect(view.state).to.not.equal("failed");
    }
    expect(view).to.include({ progress: 100, step: 6, steps: 6, result: `/v1/jobs/${job.id}/result` });
    // run in this process: its replica name is hostname-pid
    expect(view.replica).to.equal(`${os.hostname()}-${process.pid}`);
    const result = await fetch(url(`/v1/jobs/${job.id}/result`));
    expect(result.headers.get("content-type")).to.equal("image/png");
    const json = await (await fetch(url(`/v1/jobs/${job.id}/result?format=json`))).json();
    expect(json.id).to.equal(job.id);
    // the TTL is 3 s and the sweeper runs every 3 s: poll with a deadline rather than guess a sleep
    let gone = await fetch(url(`/v1/jobs/${job.id}`));
    for (const deadline = Date.now() + 15_000; gone.status !== 404 && Date.now() < deadline; ) {
      await sleep(100);
      gone = await fetch(url(`/v1/jobs/${job.id}`));
    }
    expect(gone.status).to.equal(404);
    expect((await gone.json()).error.field).to.equal("id");
  });

  it("DELETE stops a running job between steps, before it finishes; a queued job is cancelled before it starts", async () => {
    const a = await (await fetch(url("/v1/jobs"), { method: "POST", body: form({ instruction: "a", steps: "100" }) })).json();
    const b = await (await fetch(url("/v1/jobs"), { method: "POST", body: form({ instruction: "b", steps: "100" }) })).json();
    expect(b.queue_position).to.equal(0);
    expect(b.replica).to.equal(null);
    const db = await fetch(url(`/v1/jobs/${b.id}`), { method: "DELETE" });
    expect(db.status).to.equal(202);
    expect((await db.json()).state).to.equal("cancelled");
    await fetch(url(`/v1/jobs/${a.id}`), { method: "DELETE" });
    let va = a;
    while (va.state === "running" || va.state === "queued") {
      await sleep(10);
      va = await (await fetch(url(`/v1/jobs/${a.id}`))).json();
    }
    expect(va.state).to.equal("cancelled");
    expect(va.step).to.be.below(100);
    const r = await fetch(url(`/v1/jobs/${a.id}/result`));
    expect(r.status).to.equal(409);
  });

  it("a client that disconnects cancels its edit", async () => {
    const ctrl = new AbortController();
    // listeners first, then the request: the job's start is the cue to go away, its end the verdict
    const mine = (j: { request: { instruction: string } }) => j.request.instruction === "the disconnecting client's edit";
    const event = <T>(name: string, value: (j: { state: string }) => T) =>
      new Promise<T>((resolve) => {
        const on = (j: { state: string; request: { instruction: string } }) => {
          if (!mine(j)) return;
          s.pool.off(name, on);
          resolve(value(j));
        };
        s.pool.on(name, on);
      });
    // its first step done: it is running on the worker
    const started = event("progress", () => undefined);
    const finished = event("finished", (j) => j.state);
    const p = fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "the disconnecting client's edit", steps: "100" }), signal: ctrl.signal }).catch((e) => e);
    await started;
    ctrl.abort();
    await p;
    expect(await finished).to.equal("cancelled");
  });

  const awkward: Array<[string, () => Promise<Buffer>, number, number]> = [
    ["EXIF-rotated JPEG", () => images.rotatedJpeg(60, 30), 30, 60],
    ["CMYK JPEG", () => images.cmykJpeg(64, 48), 64, 48],
    ["16-bit PNG", () => images.png16(40, 40), 40, 40],
    ["animated GIF", () => images.animatedGif(48, 32), 48, 32],
    ["greyscale PNG", () => images.greyPng(40, 70), 40, 70],
    ["PNG with alpha", () => images.rgbaPng(50, 50), 50, 50],
  ];
  for (const [name, make, w, h] of awkward) {
    it(`accepts a ${name}`, async () => {
      const res = await fetch(url("/v1/edits"), { method: "POST", body: form({ instruction: "x", steps: "2" }, { image: await make() }) });
      expect(res.status).to.equal(200);
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect([meta.width, meta.height]).to.deep.equal([w, h]);
    });
  }

  it("POST /v1/scores with the local scorer; judge refused when none is configured", async () => {
    const res = await fetch(url("/v1/scores"), { method: "POST", body: form({ instruction: "make it red" }, { source: photo, edited: photo }) });
    expect(res.status).to.equal(200);
    const body = await res.json();
    expect(body.backend).to.equal("local");
    expect(body.perspectives.preserving.score).to.equal(5);
    const judge = await fetch(url("/v1/scores"), { method: "POST", body: form({ instruction: "x", backend: "judge" }, { source: photo, edited: photo }) });
    expect(judge.status).to.equal(400);
    expect((await judge.json()).error.field).to.equal("backend");
  });
});

describe("HTTP rejections: every class is a 4xx JSON error naming the field, and the server keeps serving", function () {
  this.timeout(60_000);
  let s: RunningServer;
  let small: Buffer;
  // a small upload: this server's byte limit is below the size of the bundled photos
  const form = (fields: Record<string, string>, files?: Record<string, Buffer | undefined>) => baseForm(fields, files ?? { image: small });
  before(async () => {
    small = await images.png(64, 48);
    s = await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir: TINY_NO_REWARDS, workers: 1, maxUploadBytes: 300_000, maxPixels: 1_000_000, maxInstructionLength: 50, apiKeys: ["key-one", "key-two"] }, {});
  });
  after(() => s.stop());
  const auth = { authorization: "Bearer key-two" };

  const cases: Array<[string, () => Promise<RequestInit & { path?: string }>, number, string | undefined, string]> = [
    ["no API key", async () => ({ method: "POST", body: form({ instruction: "x" }) }), 401, "authorization", "unauthorized"],
    ["a wrong API key", async () => ({ method: "POST", body: form({ instruction: "x" }), headers: { authorization: "Bearer nope" } }), 401, "authorization", "unauthorized"],
    ["a missing image", async () => ({ method: "POST", body: form({ instruction: "x" }, {}), headers: auth }), 400, "image", "missing_field"],
    ["bytes that are not an image", async () => ({ method: "POST", body: form({ instruction: "x" }, { image: Buffer.from("GIF89a but not really") }), headers: auth }), 415, "image", "unsupported_image"],
    ["an SVG (format decided by content, not name)", async () => ({ method: "POST", body: form({ instruction: "x" }, { image: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>') }), headers: auth }), 415, "image", "unsupported_image"],
    ["a file over the byte limit", async () => ({ method: "POST", body: form({ instruction: "x" }, { image: Buffer.alloc(400_000, 1) }), headers: auth }), 413, "image", "limit_file_size"],
    ["an image over the pixel limit", async () => ({ method: "POST", body: form({ instruction: "x" }, { image: await sharp({ create: { width: 2000, height: 1000, channels: 3, background: "#fff" } }).png().toBuffer() }), headers: auth }), 413, "image", "image_too_large"],
    ["a second image file", async () => ({ method: "POST", body: (() => { const f = form({ instruction: "x" }); f.append("image", new Blob([new Uint8Array(small)]), "b.png"); return f; })(), headers: auth }), 400, "image", "limit_unexpected_file"],
    ["a missing instruction", async () => ({ method: "POST", body: form({}), headers: auth }), 400, "instruction", "invalid_field"],
    ["an instruction over the length limit", async () => ({ method: "POST", body: form({ instruction: "x".repeat(51) }), headers: auth }), 400, "instruction", "invalid_field"],
    ["rewards out of range", async () => ({ method: "POST", body: form({ instruction: "x", rewards: "5,5,6" }), headers: auth }), 400, "rewards", "invalid_field"],
    ["rewards that are not three numbers", async () => ({ method: "POST", body: form({ instruction: "x", rewards: "5,five,5" }), headers: auth }), 400, "rewards", "invalid_field"],
    ["an unknown preset", async () => ({ method: "POST", body: form({ instruction: "x", preset: "shiny" }), headers: auth }), 400, "preset", "invalid_field"],
    ["rewards and a preset together", async () => ({ method: "POST", body: form({ instruction: "x", preset: "best", rewards: "5,5,5" }), headers: auth }), 400, "preset", "invalid_field"],
    ["steps out of range", async () => ({ method: "POST", body: form({ instruction: "x", steps: "0" }), headers: auth }), 400, "steps", "invalid_field"],
    ["a non-numeric seed", async () => ({ method: "POST", body: form({ instruction: "x", seed: "abc" }), headers: auth }), 400, "seed", "invalid_field"],
    ["an unknown scheduler", async () => ({ method: "POST", body: form({ instruction: "x", scheduler: "plms" }), headers: auth }), 400, "scheduler", "invalid_field"],
    ["an unknown detail mode", async () => ({ method: "POST", body: form({ instruction: "x", detail: "max" }), headers: auth }), 400, "detail", "invalid_field"],
    ["too many candidates", async () => ({ method: "POST", body: form({ instruction: "x", candidates: "99" }), headers: auth }), 400, "candidates", "invalid_field"],
    ["an unknown field", async () => ({ method: "POST", body: form({ instruction: "x", model_path: "/etc" }), headers: auth }), 400, "model_path", "unknown_field"],
    ["a judge URL smuggled in", async () => ({ method: "POST", body: form({ instruction: "x", judge_url: "http://10.0.0.1" }), headers: auth }), 400, "judge_url", "unknown_field"],
    ["an unknown job", async () => ({ method: "GET", path: "/v1/jobs/nope", headers: auth }), 404, "id", "not_found"],
    ["an unknown endpoint", async () => ({ method: "GET", path: "/v1/nothing", headers: auth }), 404, undefined, "not_found"],
  ];
  for (const [what, make, status, field, code] of cases) {
    it(`${what} -> ${status}${field ? ` (${field})` : ""}`, async () => {
      const init = await make();
      const res = await fetch(`${s.url}${init.path ?? "/v1/edits"}`, init);
      expect(res.status).to.equal(status);
      const body = await res.json();
      expect(body.error.code).to.equal(code);
      expect(body.error.field).to.equal(field);
      expect(body.error.message).to.be.a("string").and.not.equal("");
    });
  }

  it("refused requests are counted by status and code; the server keeps editing and says rewards were not applied", async () => {
    const unauthorized = async () => {
      const m = /reward_edit_rejections_total\{status="401",code="unauthorized"\} (\d+)/.exec(await (await fetch(`${s.url}/metrics`)).text());
      return m ? Number(m[1]) : 0;
    };
    const before = await unauthorized();
    for (const header of [{}, { authorization: "Bearer wrong" }] as Array<Record<string, string>>) {
      expect((await fetch(`${s.url}/v1/edits`, { method: "POST", body: form({ instruction: "x" }), headers: header })).status).to.equal(401);
    }
    expect(await unauthorized()).to.equal(before + 2);
    const res = await fetch(`${s.url}/v1/edits`, { method: "POST", body: form({ instruction: "make it red", steps: "2", rewards: "1,2,3" }), headers: { authorization: "Bearer key-one" } });
    expect(res.status).to.equal(200);
    expect(res.headers.get("x-reward-edit-rewards-applied")).to.equal("false");
  });
});
