import { expect } from "chai";
import express from "express";
import { readFileSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import multer from "multer";
import { pino } from "pino";
import sharp from "sharp";
import { refusalOf, retryWaitMs } from "../../src/benchmark/editors/openai.js";
import { readRows } from "../../src/benchmark/results.js";
import { loadSuite } from "../../src/benchmark/suites.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY, runCli, tempDir } from "../helpers.js";
import { BASELINE_MODEL } from "../../src/paths.js";
import OpenAI from "openai";

const EDITOR_KEY = "editor-key-1";
/** Set for every CLI run: the judge's variables, which the editor must never use. */
const JUDGE_ENV = { OPENAI_API_KEY: "judge-key-must-not-reach-the-editor", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" };

interface Seen {
  prompt: string;
  model: string;
  auth: string;
  fields: Record<string, string>;
  image: { width: number; height: number; type: string };
  at: number;
}

/**
 * OpenAI's images edit protocol on 127.0.0.1 (multipart in, b64_json and usage out), scripted per
 * instruction: `rateLimited` answers 429 with Retry-After: 1 once, `broken` a 500 once, `refused`
 * always a content-policy 400 as gpt-image-1 words it.
 */
class FakeImagesApi {
  readonly seen: Seen[] = [];
  rateLimited = "";
  broken = "";
  refused = "";
  url = "";
  private server?: Server;
  private count = new Map<string, number>();

  async start(): Promise<void> {
    const app = express();
    app.post("/v1/images/edits", multer({ storage: multer.memoryStorage() }).fields([{ name: "image" }, { name: "mask" }]), async (req, res) => {
      const files = req.files as Record<string, Express.Multer.File[]>;
      const body = req.body as Record<string, string>;
      const img = files.image[0];
      const m = await sharp(img.buffer).metadata();
      const { prompt, model, ...fields } = body;
      this.seen.push({ prompt, model, auth: req.headers.authorization ?? "", fields, image: { width: m.width!, height: m.height!, type: img.mimetype }, at: Date.now() });
      const n = (this.count.get(prompt) ?? 0) + 1;
      this.count.set(prompt, n);
      if (prompt === this.rateLimited && n === 1) {
        res.status(429).set("retry-after", "1").json({ error: { message: "Rate limit reached for images per minute", type: "requests", param: null, code: "rate_limit_exceeded" } });
        return;
      }
      if (prompt === this.broken && n === 1) {
        res.status(500).json({ error: { message: "The server had an error while processing your request.", type: "server_error", param: null, code: null } });
        return;
      }
      if (prompt === this.refused) {
        res.status(400).json({ error: { message: "Your request was rejected as a result of our safety system. Your request may contain content that is not allowed by our safety system.", type: "image_generation_user_error", param: null, code: "moderation_blocked" } });
        return;
      }
      const edited = await sharp(img.buffer).negate({ alpha: false }).png().toBuffer();
      res.json({
        created: Math.floor(Date.now() / 1000),
        data: [{ b64_json: edited.toString("base64") }],
        usage: { input_tokens: 323, input_tokens_details: { image_tokens: 194, text_tokens: 129 }, output_tokens: 1056, total_tokens: 1379 },
      });
    });
    await new Promise<void>((r) => (this.server = app.listen(0, "127.0.0.1", () => r())));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/v1`;
  }

  stop(): Promise<void> {
    this.server?.closeAllConnections();
    return new Promise((r) => this.server!.close(() => r()));
  }
}

describe("editors: a remote OpenAI images editor (the official client), this project's own server as one, the --sweep refusal", function () {
  this.timeout(120_000);
  const api = new FakeImagesApi();
  /** A one-sample suite, for the refusals: they come before any edit, the suite is all they read. */
  let oneSample: string[] = [];
  before(async () => {
    await api.start();
    const file = path.join(tempDir("one-"), "suite.jsonl");
    writeFileSync(file, JSON.stringify({ id: "a", image: path.join(PHOTOS, "coffee.png"), instruction: "make the saucer blue", category: "local" }) + "\n");
    oneSample = ["--suite", "jsonl", "--suite-path", file];
  });
  after(() => api.stop());

  it("the content-policy refusal and the retry waits, read from OpenAI's answers", () => {
    const err = (status: number, body: object, headers: Record<string, string> = {}) => OpenAI.APIError.generate(status, body, undefined, new Headers(headers));
    expect(refusalOf(err(400, { error: { message: "Your request was rejected as a result of our safety system.", code: "moderation_blocked" } }))).to.match(/safety system/);
    expect(refusalOf(err(400, { error: { message: "This request has been blocked by our content filters.", code: "content_policy_violation" } }))).to.match(/content filters/);
    expect(refusalOf(err(400, { error: { message: "Invalid size", code: "invalid_value", param: "size" } }))).to.equal(null);
    expect(refusalOf(err(500, { error: { message: "content policy" } }))).to.equal(null);
    expect(retryWaitMs(err(429, {}, { "retry-after": "3" }), 1)).to.equal(3000);
    expect(retryWaitMs(err(429, {}, { "retry-after-ms": "250", "retry-after": "3" }), 1)).to.equal(250);
    const date = retryWaitMs(err(503, {}, { "retry-after": new Date(Date.now() + 5000).toUTCString() }), 1);
    expect(date).to.be.within(3000, 5000);
    // no header: exponential from 0.5 s, jittered down by at most a quarter, capped at 8 s
    expect(retryWaitMs(err(500, {}), 1)).to.be.within(375, 500);
    expect(retryWaitMs(err(500, {}), 3)).to.be.within(1500, 2000);
    expect(retryWaitMs(err(500, {}), 9)).to.be.within(6000, 8000);
  });

  it("bench --editor CONFIG.json: ok, refused, ok after a 429 (Retry-After honoured) and after a 500; nothing lost; latency and usage in the rows", async () => {
    const suite = await loadSuite("sample");
    const four = suite.samples.slice(0, 4);
    [api.rateLimited, api.broken, api.refused] = [four[0].instruction, four[1].instruction, four[2].instruction];
    const dir = tempDir("editor-");
    const config = path.join(dir, "gpt-image.json");
    writeFileSync(config, JSON.stringify({ model: "gpt-image-1", baseURL: api.url, label: "gpt-image-1", concurrency: 2, quality: "low", input_fidelity: "high", extraBody: { moderation: "low" } }));
    const out = path.join(dir, "run");
    const r = await runCli(["bench", "--suite", "sample", "--limit", "4", "--editor", config, "--backend", "local", "--out", out], { ...JUDGE_ENV, REWARD_EDIT_EDITOR_API_KEY: EDITOR_KEY });
    expect(r.code, r.stderr).to.equal(0);

    // the requests: the official client's multipart, the editor's key (never the judge's), the pass-through fields
    expect(api.seen).to.have.length(6);
    for (const s of api.seen) {
      expect(s.auth).to.equal(`Bearer ${EDITOR_KEY}`);
      expect(s.model).to.equal("gpt-image-1");
      expect(s.fields).to.deep.equal({ quality: "low", input_fidelity: "high", moderation: "low" });
      const sample = four.find((x) => x.instruction === s.prompt)!;
      const m = await sharp(sample.image).metadata();
      expect([s.image.width, s.image.height, s.image.type]).to.deep.equal([m.width, m.height, "image/png"]);
    }
    const times = (p: string) => api.seen.filter((s) => s.prompt === p).map((s) => s.at);
    const [first, second] = times(api.rateLimited);
    expect(second - first, "the retry waited for Retry-After: 1").to.be.at.least(950);
    expect(times(api.broken)).to.have.length(2);
    expect(times(api.refused), "a refusal is not retried").to.have.length(1);

    const rows = readRows(path.join(out, "results.jsonl"));
    expect(rows).to.have.length(4);
    const row = (i: number) => rows.find((x) => x.sample === four[i].id)!;
    expect(row(0)).to.deep.include({ status: "ok" });
    expect(row(0).editor).to.deep.include({ kind: "openai", name: `gpt-image-1@${api.url}`, attempts: 2 });
    expect(row(0).editor!.usage).to.deep.equal({ input_tokens: 323, input_tokens_details: { image_tokens: 194, text_tokens: 129 }, output_tokens: 1056, total_tokens: 1379 });
    expect(row(0).editor!.latencyMs).to.be.at.least(950);
    expect(row(0).latency.editMs).to.equal(row(0).editor!.latencyMs);
    expect(row(1)).to.deep.include({ status: "ok" });
    expect(row(1).editor!.attempts).to.equal(2);
    expect(row(2)).to.deep.include({ status: "refused" });
    expect(row(2).error).to.match(/^Your request was rejected as a result of our safety system/);
    expect(row(2).editor!.attempts).to.equal(1);
    expect(row(2).scores).to.equal(undefined);
    expect(row(3)).to.deep.include({ status: "ok" });
    expect(row(3).editor!.attempts).to.equal(1);
    // the ok edits are the server's (the negated source), stored and scored
    for (const i of [0, 1, 3]) {
      const x = row(i);
      expect(x.scores!.quality.status).to.equal("scored");
      const got = await sharp(path.join(out, "images", x.edited!)).removeAlpha().raw().toBuffer();
      const want = await sharp(await sharp(readFileSync(four[i].image)).negate({ alpha: false }).png().toBuffer()).removeAlpha().raw().toBuffer();
      expect(got.equals(want), x.key).to.equal(true);
    }

    // resumed: every row is there, nothing is asked again
    const before = api.seen.length;
    const again = await runCli(["bench", "--suite", "sample", "--limit", "4", "--editor", config, "--backend", "local", "--out", out], { ...JUDGE_ENV, REWARD_EDIT_EDITOR_API_KEY: EDITOR_KEY });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stderr).to.contain("0 edits run, 4 resumed");
    expect(api.seen.length).to.equal(before);
  });

  it("bad editor specs, a missing key and --sweep without reward inputs (the bundled baseline, an openai editor) are one line each", async () => {
    const dir = tempDir("editor-bad-");
    const requests = api.seen.length;
    const file = path.join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ model: "x", concurrency: 0, colour: "red" }));
    // independent refusals: started together
    const [noKey, bad, both, baseline, remote, typo] = await Promise.all([
      runCli(["bench", ...oneSample, "--editor", "openai:gpt-image-1", "--backend", "local", "--out", path.join(dir, "a")], { ...JUDGE_ENV, REWARD_EDIT_EDITOR_API_KEY: "" }),
      runCli(["bench", ...oneSample, "--editor", file, "--out", path.join(dir, "b")], JUDGE_ENV),
      runCli(["bench", ...oneSample, "--model", TINY, "--editor", "openai:x", "--out", path.join(dir, "c")]),
      runCli(["bench", ...oneSample, "--model", BASELINE_MODEL, "--sweep", "following", "--out", path.join(dir, "d")]),
      runCli(["bench", ...oneSample, "--editor", `openai:gpt-image-1@${api.url}`, "--sweep", "quality", "--out", path.join(dir, "e")], { REWARD_EDIT_EDITOR_API_KEY: EDITOR_KEY }),
      runCli(["bench", ...oneSample, "--sweep", "speed", "--out", path.join(dir, "f")]),
    ]);
    for (const r of [noKey, bad, both, baseline, remote, typo]) {
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr.trim().split("\n"), r.stderr).to.have.length(1);
    }
    expect(noKey.stderr).to.contain("REWARD_EDIT_EDITOR_API_KEY").and.contain("OPENAI_API_KEY is not used");
    expect(bad.stderr).to.match(/editor configuration: .*concurrency/);
    expect(both.stderr.trim()).to.match(/give one of --model, --editor and --outputs, not --model and --editor$/);
    expect(baseline.stderr.trim()).to.equal("reward-edit: --sweep needs an editor with reward inputs: reward-edit-synthetic-baseline has none");
    expect(remote.stderr.trim()).to.equal("reward-edit: --sweep needs an editor with reward inputs: gpt-image-1 has none");
    expect(typo.stderr.trim()).to.match(/--sweep must be following, preserving, quality/);
    expect(api.seen.length, "no refusal made an edit request").to.equal(requests);
  });

  describe("this project's own server, through its OpenAI route", () => {
    let s: RunningServer;
    const KEY = "server-key";
    before(async () => {
      s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, apiKeys: [KEY] }, {});
    });
    after(() => s.stop());

    it("bench --editor openai:MODEL@BASE_URL edits every sample through POST /v1/images/edits", async () => {
      const out = path.join(tempDir("own-server-"), "run");
      const config = path.join(path.dirname(out), "own.json");
      // the project's own fields ride along as extra body fields: two steps keep it quick
      writeFileSync(config, JSON.stringify({ model: "reward-edit", baseURL: `${s.url}/v1`, label: "own-server", rewardEdit: true, extraBody: { steps: "2" } }));
      const r = await runCli(["bench", "--suite", "sample", "--limit", "2", "--editor", config, "--backend", "local", "--out", out], { ...JUDGE_ENV, REWARD_EDIT_EDITOR_API_KEY: KEY });
      expect(r.code, r.stderr).to.equal(0);
      const rows = readRows(path.join(out, "results.jsonl"));
      expect(rows.map((x) => [x.status, x.model, x.editor!.kind, x.editor!.attempts])).to.deep.equal([
        ["ok", "own-server", "openai", 1],
        ["ok", "own-server", "openai", 1],
      ]);
      for (const x of rows) {
        const src = await sharp(x.image).metadata();
        const got = await sharp(path.join(out, "images", x.edited!)).metadata();
        expect([got.width, got.height]).to.deep.equal([src.width, src.height]);
        expect(x.scores!.quality.status).to.equal("scored");
      }
      expect(r.stdout).to.match(/^own-server \/ best \(scored\): /m);

      // a wrong key is a failed edit, recorded, not a crash
      const denied = path.join(path.dirname(out), "denied");
      const d = await runCli(["bench", "--suite", "sample", "--limit", "1", "--editor", `openai:reward-edit@${s.url}/v1`, "--backend", "local", "--out", denied], { REWARD_EDIT_EDITOR_API_KEY: "wrong" });
      expect(d.code, d.stderr).to.equal(0);
      const [row] = readRows(path.join(denied, "results.jsonl"));
      expect(row).to.deep.include({ status: "edit_failed" });
      expect(row.error).to.match(/^401 /);
    });
  });
});
