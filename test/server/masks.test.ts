import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import sharp from "sharp";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { ROOT } from "../helpers.js";
import { baseForm } from "../support/forms.js";

const BUNDLED = path.join(ROOT, "models", "reward-edit-synthetic");
const SCENE = readFileSync(path.join(ROOT, "models", "heldout-v2", "scenes", "syn-0003-source.png"));

const grey = (w: number, h: number, value: number) => sharp({ create: { width: w, height: h, channels: 3, background: { r: value, g: value, b: value } } }).png().toBuffer();

async function leftHalf(): Promise<Buffer> {
  const m = Buffer.alloc(64 * 64);
  for (let i = 0; i < m.length; i++) if (i % 64 < 32) m[i] = 255;
  return sharp(m, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
}

describe("masks over HTTP: /v1/edits, /v1/jobs, /v1/scores (issue 21)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: BUNDLED, workers: 1 }, {});
  });
  after(() => s.stop());
  const post = (p: string, fields: Record<string, string>, files: Record<string, Buffer>) => fetch(`${s.url}${p}`, { method: "POST", body: baseForm(fields, files) });

  it("a mask that lets nothing change, or is not an image, is a 400 naming mask; mask_mode is checked", async () => {
    const fields = { instruction: "make the background blue", steps: "2" };
    for (const [label, mask, message] of [
      ["all black", await grey(16, 16, 0), /all black/],
      ["not an image", Buffer.from("nope"), /cannot be decoded/],
      ["empty file", Buffer.alloc(0), /empty/],
    ] as const) {
      const r = await post("/v1/edits", fields, { image: SCENE, mask });
      expect(r.status, label).to.equal(400);
      const e = ((await r.json()) as { error: { field: string; message: string } }).error;
      expect(e.field, label).to.equal("mask");
      expect(e.message, label).to.match(message);
    }
    const bad = await post("/v1/edits", { ...fields, mask_mode: "smudge" }, { image: SCENE, mask: await leftHalf() });
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).to.equal("mask_mode");
  });

  it("an all-white mask is the same edit as none", async () => {
    const fields = { instruction: "make the background blue", steps: "4", seed: "9" };
    // pixels, not bytes: each result's C2PA manifest has its own signature
    const none = await sharp(Buffer.from(await (await post("/v1/edits", fields, { image: SCENE })).arrayBuffer())).raw().toBuffer();
    const white = await post("/v1/edits", fields, { image: SCENE, mask: await grey(5, 7, 255) });
    expect(white.status).to.equal(200);
    expect(JSON.parse(white.headers.get("x-reward-edit-parameters")!).maskMode).to.equal(null);
    expect((await sharp(Buffer.from(await white.arrayBuffer())).raw().toBuffer()).equals(none)).to.equal(true);
  });

  it("a queued job keeps its mask: the result keeps the black half exactly, and reports the mode", async () => {
    const r = await post("/v1/jobs", { instruction: "make the background blue", steps: "6", mask_mode: "paste", response_format: "json" }, { image: SCENE, mask: await leftHalf() });
    expect(r.status).to.equal(202);
    const { id } = (await r.json()) as { id: string };
    let state = "queued";
    const deadline = Date.now() + 30_000;
    while (state !== "succeeded" && Date.now() < deadline) {
      state = ((await (await fetch(`${s.url}/v1/jobs/${id}`)).json()) as { state: string }).state;
      if (state === "failed") throw new Error("job failed");
      await new Promise((res) => setTimeout(res, 50));
    }
    const result = (await (await fetch(`${s.url}/v1/jobs/${id}/result`)).json()) as { image: string; parameters: { maskMode: string }; detail: { kept_fraction: number } };
    expect(result.parameters.maskMode).to.equal("paste");
    expect(result.detail.kept_fraction).to.be.at.least(0.5);
    const out = await sharp(Buffer.from(result.image, "base64")).removeAlpha().raw().toBuffer();
    const src = await sharp(SCENE).removeAlpha().raw().toBuffer();
    for (let i = 0; i < 64 * 64; i++) if (i % 64 >= 32) expect(out.subarray(i * 3, i * 3 + 3).equals(src.subarray(i * 3, i * 3 + 3)), `pixel ${i}`).to.equal(true);
  });

  it("/v1/scores takes a mask: preservation outside it", async () => {
    const raw = await sharp(SCENE).removeAlpha().raw().toBuffer();
    for (let i = 0; i < 64 * 64; i++) if (i % 64 < 32) raw.set([220, 30, 30], i * 3);
    const edited = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    const score = async (files: Record<string, Buffer>) =>
      ((await (await post("/v1/scores", { instruction: "make the left red", backend: "local" }, files)).json()) as { perspectives: { preserving: { score: number } } }).perspectives.preserving.score;
    expect(await score({ source: SCENE, edited, mask: await leftHalf() })).to.equal(5);
    expect(await score({ source: SCENE, edited })).to.be.below(3);
  });
});
