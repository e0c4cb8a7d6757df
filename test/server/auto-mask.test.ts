import { expect } from "chai";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import sharp from "sharp";
import { readProvenance } from "../../src/provenance/reader.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { ROOT, runCli, tempDir } from "../helpers.js";
import { baseForm } from "../support/forms.js";
import { expectResponse } from "../support/responses.js";

const BUNDLED = path.join(ROOT, "models", "reward-edit-synthetic");
const SCENES = path.join(ROOT, "models", "heldout-v2", "scenes");
/** A recolour of one of two objects ("change the clock to dark blue"), and a global edit. */
const RECOLOUR = { image: readFileSync(path.join(SCENES, "syn-0002-source.png")), instruction: "change the clock to dark blue" };
const GLOBAL = { image: readFileSync(path.join(ROOT, "models", "heldout-v2", "backdrops", "syn-0008-source.png")), instruction: "brighten it up" };

const rgb = (png: Buffer) => sharp(png).removeAlpha().raw().toBuffer();

interface JsonResult {
  image: string;
  parameters: { autoMask?: { applied: boolean; reason: string; coverage: number }; maskMode: string | null; seed: number };
  detail: { kept_fraction: number; mask: string | null; relevance?: string };
}

describe("auto_mask through the API, the OpenAI route and batch (issue 41)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: BUNDLED, workers: 1 }, {});
  });
  after(() => s.stop());
  const post = (p: string, fields: Record<string, string>, files: Record<string, Buffer>) => fetch(`${s.url}${p}`, { method: "POST", body: baseForm(fields, files) });

  it("/v1/edits auto_mask=true: the mask used comes back as the mask output, the map beside it, the source exactly outside", async () => {
    const r = await post("/v1/edits", { instruction: RECOLOUR.instruction, auto_mask: "true", seed: "5", steps: "8", response_format: "json" }, { image: RECOLOUR.image });
    expect(r.status).to.equal(200);
    const body = (await r.json()) as JsonResult;
    // the answer, relevance map included, is what /openapi.json describes
    expectResponse("EditResult", body);
    expect(body.parameters.autoMask).to.include({ applied: true, reason: "local" });
    expect(body.parameters.autoMask!.coverage).to.be.within(0.01, 0.5);
    expect(body.parameters.maskMode).to.equal("blend");
    const map = await sharp(Buffer.from(body.detail.relevance!, "base64")).metadata();
    expect([map.width, map.height]).to.deep.equal([64, 64]);
    // wherever the mask output is 0, the pixel is the source's
    const mask = await sharp(Buffer.from(body.detail.mask!, "base64")).extractChannel(0).raw().toBuffer();
    const src = await rgb(RECOLOUR.image);
    const out = await rgb(Buffer.from(body.image, "base64"));
    let zero = 0;
    for (let p = 0; p < 64 * 64; p++) {
      if (mask[p] !== 0) continue;
      zero++;
      expect(out.subarray(3 * p, 3 * p + 3).equals(src.subarray(3 * p, 3 * p + 3)), `pixel ${p}`).to.equal(true);
    }
    expect(zero).to.be.above(0.5 * 64 * 64);
    expect(body.detail.kept_fraction).to.be.above(0.5);
  });

  it("a global edit gets no mask, and the header says why; a bad value is a 400 naming auto_mask", async () => {
    const r = await post("/v1/edits", { instruction: GLOBAL.instruction, auto_mask: "1", seed: "5", steps: "6" }, { image: GLOBAL.image });
    expect(r.status).to.equal(200);
    const params = JSON.parse(r.headers.get("x-reward-edit-parameters")!);
    expect(params.autoMask).to.include({ applied: false, reason: "global" });
    expect(params.maskMode).to.equal(null);
    const bad = await post("/v1/edits", { instruction: GLOBAL.instruction, auto_mask: "yes" }, { image: GLOBAL.image });
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).to.equal("auto_mask");
  });

  it("the OpenAI route takes auto_mask as an extra body field: the same pixels as /v1/edits, recorded in the result", async () => {
    const fields = { seed: "7", steps: "8", auto_mask: "true" };
    const oa = await post("/v1/images/edits", { prompt: RECOLOUR.instruction, ...fields }, { image: RECOLOUR.image });
    expect(oa.status).to.equal(200);
    const png = Buffer.from(((await oa.json()) as { data: { b64_json: string }[] }).data[0].b64_json, "base64");
    const own = (await (await post("/v1/edits", { instruction: RECOLOUR.instruction, ...fields, response_format: "json" }, { image: RECOLOUR.image })).json()) as JsonResult;
    expect((await rgb(png)).equals(await rgb(Buffer.from(own.image, "base64")))).to.equal(true);
    const plain = await post("/v1/images/edits", { prompt: RECOLOUR.instruction, seed: "7", steps: "8" }, { image: RECOLOUR.image });
    const plainPng = Buffer.from(((await plain.json()) as { data: { b64_json: string }[] }).data[0].b64_json, "base64");
    expect((await rgb(png)).equals(await rgb(plainPng)), "auto_mask changed nothing").to.equal(false);
    const recorded = (await readProvenance(png)).parameters;
    expect(recorded?.auto_mask).to.include({ applied: true, reason: "local" });
  });

  it("batch: a manifest row's auto_mask confines that row's edit; the summary records what it did", async () => {
    const dir = tempDir("reward-edit-automask-");
    writeFileSync(path.join(dir, "recolour.png"), RECOLOUR.image);
    writeFileSync(path.join(dir, "global.png"), GLOBAL.image);
    const rows = [
      { image: "recolour.png", instruction: RECOLOUR.instruction, auto_mask: true, seed: 3 },
      { image: "recolour.png", instruction: RECOLOUR.instruction, seed: 3 },
      { image: "global.png", instruction: GLOBAL.instruction, auto_mask: true, seed: 3 },
    ];
    writeFileSync(path.join(dir, "rows.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
    const out = path.join(dir, "out");
    const r = await runCli(["batch", "--input", path.join(dir, "rows.jsonl"), "--out", out, "--steps", "6", "--workers", "1", "--no-score"]);
    expect(r.code, r.stderr).to.equal(0);
    const summary = readFileSync(path.join(out, "summary.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { row: number; output: string; kept_fraction: number; settings: { auto_mask?: { applied: boolean; reason: string } } })
      .sort((a, b) => a.row - b.row);
    expect(summary[0].settings.auto_mask).to.include({ applied: true, reason: "local" });
    expect(summary[1].settings.auto_mask).to.equal(undefined);
    expect(summary[2].settings.auto_mask).to.include({ applied: false, reason: "global" });
    expect(summary[0].kept_fraction).to.be.above(summary[1].kept_fraction);
    const bad = path.join(dir, "bad.jsonl");
    writeFileSync(bad, JSON.stringify({ image: "recolour.png", instruction: "x", auto_mask: "perhaps" }));
    const refused = await runCli(["batch", "--input", bad, "--out", path.join(dir, "out2")]);
    expect(refused.code).to.equal(1);
    expect(refused.stderr.trim().split("\n")).to.have.length(1);
    expect(refused.stderr).to.match(/bad\.jsonl:1: auto_mask/);
  });

  it("the CLI: --auto-mask writes the mask used with --mask and says what it did", async () => {
    const dir = tempDir("reward-edit-automask-cli-");
    const image = path.join(dir, "in.png");
    writeFileSync(image, RECOLOUR.image);
    const r = await runCli(["edit", "--image", image, "--instruction", RECOLOUR.instruction, "--auto-mask", "--steps", "6", "--seed", "2", "--out", path.join(dir, "out.png"), "--mask", path.join(dir, "mask.png")]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/auto mask over \d+\.\d % of the photo/);
    const mask = await sharp(path.join(dir, "mask.png")).extractChannel(0).raw().toBuffer();
    const src = await rgb(RECOLOUR.image);
    const out = await rgb(readFileSync(path.join(dir, "out.png")));
    for (let p = 0; p < 64 * 64; p++) if (mask[p] === 0) expect(out.subarray(3 * p, 3 * p + 3).equals(src.subarray(3 * p, 3 * p + 3))).to.equal(true);
  });
});
