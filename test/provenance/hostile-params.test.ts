/**
 * A result's parameters are whatever its file says: the XMP copy is unsigned, so anyone can write
 * one. Files crafted here carry hostile rewardedit:Parameters XMP (the way src/provenance/xmp.ts
 * writes it, without a C2PA manifest); every reader (the like upload, `edit --like`, `inspect`,
 * /v1/scores) checks them like a request and answers one clear 400 / one line, never a 500 or a crash.
 */
import { expect } from "chai";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { DIGITAL_SOURCE_TYPE } from "../../src/provenance/index.js";
import { insertXmp, xmpPacket } from "../../src/provenance/xmp.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY, runCli, tempDir } from "../helpers.js";
import { baseForm } from "../support/forms.js";

const quiet = pino({ level: "silent" });
const PHOTO = path.join(PHOTOS, "coffee.png");
const photo = readFileSync(PHOTO);

/** What a real result of the tiny model records (checked below to be accepted as it is). */
const VALID = {
  instruction: "make the mug red",
  rewards: [5, 5, 5],
  rewards_applied: true,
  preset: null,
  feedback: null,
  steps: 2,
  text_guidance: 7.5,
  image_guidance: 1.5,
  seed: 3,
  scheduler: "euler-a",
  karras_sigmas: false,
  guidance_interval: null,
  adaptive_guidance: null,
  cache_interval: 1,
  detail: "keep",
  mask_mode: null,
  mask_sha256: null,
  working_size: false,
  working_width: 64,
  working_height: 96,
  format: "png",
  model: { name: "tiny-random", digest: null },
  source_sha256: createHash("sha256").update(photo).digest("hex"),
};

/** The coffee photo carrying `json` as its rewardedit:Parameters XMP, and no C2PA manifest. */
const crafted = (json: string) =>
  insertXmp(Buffer.from(photo), "png", xmpPacket({ digitalSourceType: DIGITAL_SOURCE_TYPE, creatorTool: "reward-edit 0.1.0", parameters: json }));
const withField = (key: string, value: unknown) => crafted(JSON.stringify({ ...VALID, [key]: value }));
/** `steps` as an n-deep array: JSON.parse would build it, and walking it (res.json, zod) overflows the stack. */
const deepSteps = (n: number) => `{"steps":${"[".repeat(n)}${"]".repeat(n)}}`;
const DEEP = deepSteps(200_000);

/** Each hostile file and the field its rejection must name. */
const HOSTILE: Array<[string, Buffer, RegExp]> = [
  ["rewards as a string", withField("rewards", "5,5,5"), /embedded rewards is invalid/],
  ["guidance_interval as a string", withField("guidance_interval", "0,1"), /embedded guidance_interval is invalid/],
  ["guidance_interval backwards", withField("guidance_interval", [5, 1]), /embedded guidance_interval is invalid: .*lo < hi/],
  ["steps 200,000 levels deep", crafted(DEEP), /embedded parameters is invalid: 400010 characters of JSON; at most 16384 are read/],
  ["steps 5,000 levels deep", crafted(deepSteps(5_000)), /embedded parameters is invalid: JSON nested deeper than 8 levels/],
  ["steps out of range", withField("steps", 5000), /embedded steps is invalid/],
  ["an unknown scheduler", withField("scheduler", "rm -rf"), /embedded scheduler is invalid/],
  ["a 600-character instruction", withField("instruction", "x".repeat(600)), /embedded instruction is invalid: at most 500 characters/],
  ["a model that is a string", withField("model", "tiny"), /embedded model is invalid/],
  ["parameters that are not JSON", crafted("{not json"), /embedded parameters is invalid: not valid JSON/],
  ["parameters that are an array", crafted("[1,2,3]"), /embedded parameters is invalid/],
];

describe("hostile parameters in a result's XMP: checked like a request, never trusted (finding 9)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  before(async () => {
    s = await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, maxSteps: 100 }, {});
  });
  after(() => s?.stop());
  const post = (p: string, fields: Record<string, string>, files: Record<string, Buffer>) => fetch(`${s.url}${p}`, { method: "POST", body: baseForm(fields, files) });

  it("/v1/edits: a crafted file with valid parameters is taken (the same edit as asking for them)", async () => {
    const like = await post("/v1/edits", {}, { image: photo, like: withField("steps", 2) });
    expect(like.status, await like.clone().text()).to.equal(200);
    const asked = await post("/v1/edits", { instruction: "make the mug red", rewards: "5,5,5", steps: "2", seed: "3", text_guidance: "7.5", image_guidance: "1.5" }, { image: photo });
    expect(asked.status).to.equal(200);
  });

  it("/v1/edits: each hostile like is a 400 naming like and the embedded field, never a 500", async () => {
    for (const [name, file, message] of HOSTILE) {
      const r = await post("/v1/edits", {}, { image: photo, like: file });
      const body = (await r.json()) as { error: { code: string; field: string; message: string } };
      expect(r.status, `${name}: ${JSON.stringify(body)}`).to.equal(400);
      expect(body.error.field, name).to.equal("like");
      expect(body.error.message, name).to.match(/^like: the like image's /);
      expect(body.error.message, name).to.match(message);
    }
  });

  it("/v1/edits: a like value over this server's own limit (REWARD_EDIT_MAX_STEPS) says it came from the like image; a field the caller sends replaces it", async () => {
    const file = withField("steps", 150);
    const r = await post("/v1/edits", {}, { image: photo, like: file });
    expect(r.status).to.equal(400);
    const body = (await r.json()) as { error: { field: string; message: string } };
    expect(body.error.field).to.equal("like");
    expect(body.error.message).to.match(/^like: the like image's embedded steps is invalid: .*100/);
    const own = await post("/v1/edits", { steps: "2" }, { image: photo, like: file });
    expect(own.status, await own.clone().text()).to.equal(200);
    // the caller's own bad value is still the caller's
    const mine = await post("/v1/edits", { steps: "abc" }, { image: photo, like: file });
    expect(((await mine.json()) as { error: { field: string } }).error.field).to.equal("steps");
  });

  it("the server's caps are the shared ones: a 501-character instruction on /v1/edits, 2,001 on /v1/scores (a judge's prompt, not CLIP's) are a 400 naming instruction", async () => {
    for (const [route, length, files] of [["/v1/edits", 501, { image: photo }], ["/v1/scores", 2001, { source: photo, edited: photo }]] as const) {
      const r = await post(route, { instruction: "x".repeat(length) }, files);
      expect(r.status, route).to.equal(400);
      expect(((await r.json()) as { error: { field: string; message: string } }).error).to.deep.include({ field: "instruction", message: `instruction: at most ${length - 1} characters` });
    }
  });

  it("/v1/scores: hostile parameters are reported as a problem (200, no 500); crafted valid ones are labelled unsigned; a signed result is labelled signed", async () => {
    type Provenance = { parameters: unknown; parameters_signed: boolean; parameters_source: string | null; parameters_problem: { field: string; message: string } | null; parameters_note?: string };
    const score = async (edited: Buffer) => {
      const r = await post("/v1/scores", { instruction: "make the mug red", backend: "local" }, { source: photo, edited });
      expect(r.status, await r.clone().text()).to.equal(200);
      return ((await r.json()) as { provenance: Provenance }).provenance;
    };
    const deep = await score(crafted(DEEP));
    expect(deep).to.deep.include({ parameters: null, parameters_signed: false, parameters_source: "xmp" });
    expect(deep.parameters_problem!.message).to.match(/characters of JSON/);
    expect((await score(crafted(deepSteps(5_000)))).parameters_problem!.message).to.match(/nested deeper/);
    const string = await score(withField("rewards", "5,5,5"));
    expect(string.parameters).to.equal(null);
    expect(string.parameters_problem!.field).to.equal("rewards");
    const unsigned = await score(withField("steps", 2));
    expect(unsigned).to.deep.include({ parameters_signed: false, parameters_source: "xmp", parameters_problem: null });
    expect(unsigned.parameters).to.include({ steps: 2, seed: 3 });
    expect(unsigned.parameters_note).to.match(/not covered by a valid C2PA signature/);
    // a result this server made and signed (the installation's own certificate)
    const made = await post("/v1/edits", { instruction: "make the mug red", steps: "2" }, { image: photo });
    const signed = await score(Buffer.from(await made.arrayBuffer()));
    expect(signed).to.deep.include({ parameters_signed: true, parameters_source: "c2pa", parameters_problem: null });
    expect(signed).to.not.have.property("parameters_note");
  });

  it("the CLI: edit --like of a hostile file is one line, exit 1; inspect prints the problem and labels the parameters unsigned", async () => {
    const dir = tempDir();
    // three of the cases (each is a process start): a wrong type, the 200,000-deep one, a text over its cap
    for (const [name, file, message] of HOSTILE.filter(([n]) => /^(rewards as a string|steps 200,000|a 600)/.test(n))) {
      const f = path.join(dir, `${name.replace(/\W+/g, "-")}.png`);
      writeFileSync(f, file);
      const r = await runCli(["edit", "--like", f, "--image", PHOTO, "--model", TINY, "--out", path.join(dir, "out.png")], { REWARD_EDIT_C2PA: "off" });
      expect(r.code, `${name}: ${r.stderr}`).to.equal(1);
      const lines = r.stderr.trim().split("\n");
      expect(lines, name).to.have.length(1);
      expect(lines[0], name).to.match(new RegExp(`^reward-edit: --like ${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: the like image's `));
      expect(lines[0], name).to.match(message);
      expect(r.stderr).to.not.match(/\n\s+at /);
    }
    const deep = path.join(dir, "deep.png");
    writeFileSync(deep, crafted(DEEP));
    const shown = await runCli(["inspect", deep]);
    expect(shown.code, shown.stderr).to.equal(0);
    const report = JSON.parse(shown.stdout) as { parameters: unknown; parameters_signed: boolean; parameters_problem: { field: string } };
    expect(report).to.deep.include({ parameters: null, parameters_signed: false });
    expect(report.parameters_problem.field).to.equal("parameters");
    const valid = path.join(dir, "valid.png");
    writeFileSync(valid, withField("steps", 2));
    const ok = JSON.parse((await runCli(["inspect", valid])).stdout) as { parameters: { steps: number }; parameters_signed: boolean; parameters_note: string };
    expect(ok.parameters.steps).to.equal(2);
    expect(ok.parameters_signed).to.equal(false);
    expect(ok.parameters_note).to.match(/unsigned/);
  });
});
