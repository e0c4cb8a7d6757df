/**
 * Content credentials (issue 32): every result of every route carries a C2PA manifest that the
 * reference reader (c2pa-rs, the same WebAssembly build the service signs with) validates, and
 * XMP that ExifTool reads. Certificates are an operator's, made with openssl in the test.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import OpenAI, { toFile } from "openai";
import { pino } from "pino";
import sharp from "sharp";
import { readStore } from "../../src/provenance/c2pa.js";
import { DIGITAL_SOURCE_TYPE } from "../../src/provenance/index.js";
import { readProvenance } from "../../src/provenance/reader.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY, runCli, tempDir } from "../helpers.js";
import { baseForm } from "../support/forms.js";
import { type TestPki, makePki } from "./pki.js";

const quiet = pino({ level: "silent" });
const PHOTO = path.join(PHOTOS, "coffee.png");
const photo = readFileSync(PHOTO);
const FORMATS = ["png", "jpeg", "webp"] as const;
const pixels = (b: Buffer | string) => sharp(b).raw().toBuffer();

/** ExifTool's reading of the XMP marks, as a stock agency's ingest would see them. */
function exiftool(file: string): Record<string, string> {
  const out = execFileSync("exiftool", ["-j", "-XMP-iptcExt:DigitalSourceType", "-XMP-xmp:CreatorTool", "-XMP-rewardedit:Parameters", file], { encoding: "utf8" });
  return (JSON.parse(out) as Array<Record<string, string>>)[0];
}

/** What the reference reader says about one result, with the test CA as trust anchor. */
async function verify(bytes: Buffer, pki: TestPki) {
  const anchors = readFileSync(pki.ca, "utf8");
  const report = await readProvenance(bytes, anchors);
  const mime = `image/${report.format}` as "image/png";
  const view = (await readStore(mime, bytes, anchors))!;
  const actions = (view.active!.assertions!.find((a) => a.label === "c2pa.actions.v2")!.data as { actions: Array<{ action: string; digitalSourceType?: string; softwareAgent?: { name: string } }> }).actions;
  return { report, actions, ingredients: view.active!.ingredients ?? [] };
}

describe("content credentials: C2PA and XMP on every result (issue 32)", function () {
  this.timeout(60_000);
  let pki: TestPki;
  let s: RunningServer;
  const env = () => ({ REWARD_EDIT_C2PA_CERT: pki.chain, REWARD_EDIT_C2PA_KEY: pki.key });
  before(async () => {
    pki = makePki();
    s = await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1 }, env());
  });
  after(() => s?.stop());
  const post = (p: string, fields: Record<string, string>, files?: Record<string, Buffer | undefined>) => fetch(`${s.url}${p}`, { method: "POST", body: baseForm(fields, files) });

  it("/v1/edits in PNG, JPEG and WebP: the manifest validates and is Trusted under the operator's CA, with the actions, source type, signer and XMP", async () => {
    const dir = tempDir();
    for (const format of FORMATS) {
      const res = await post("/v1/edits", { instruction: "make the mug red", steps: "2", seed: "4", output_format: format });
      expect(res.status, format).to.equal(200);
      const bytes = Buffer.from(await res.arrayBuffer());
      const { report, actions, ingredients } = await verify(bytes, pki);
      expect(report.format).to.equal(format);
      expect(report.c2pa, format).to.include({ ours: true, valid: true, trusted: true, state: "Trusted", digital_source_type: DIGITAL_SOURCE_TYPE });
      expect(report.c2pa!.failures).to.deep.equal([]);
      expect(report.c2pa!.signer!.common_name).to.equal("Test ES256 signer");
      expect(actions.map((a) => a.action)).to.deep.equal(["c2pa.opened", "c2pa.edited"]);
      expect(actions[1]).to.deep.include({ digitalSourceType: DIGITAL_SOURCE_TYPE, softwareAgent: { name: "reward-edit", version: "0.1.0" } });
      // the source is the parent ingredient by its hash; no copy of it travels in the result
      expect(ingredients).to.have.length(1);
      expect(ingredients[0]).to.include({ relationship: "parentOf" });
      expect(report.parameters).to.include({ instruction: "make the mug red", seed: 4, steps: 2, format });
      expect(report.parameters!.model.name).to.equal("tiny-random");
      expect(report.parameters!.model.digest).to.match(/^sha256:[0-9a-f]{64}$/);
      const file = path.join(dir, `r.${format}`);
      writeFileSync(file, bytes);
      const x = exiftool(file);
      expect(x.DigitalSourceType, format).to.equal(DIGITAL_SOURCE_TYPE);
      expect(x.CreatorTool).to.equal("reward-edit 0.1.0");
      expect(JSON.parse(x.Parameters).seed).to.equal(4);
    }
  });

  it("a changed pixel byte breaks the hard binding", async () => {
    const res = await post("/v1/edits", { instruction: "make the mug red", steps: "2", seed: "4", output_format: "jpeg" });
    const bytes = Buffer.from(await res.arrayBuffer());
    // inside the entropy-coded scan, just before the end-of-image marker
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 40] ^= 0x01;
    const r = await readProvenance(flipped, readFileSync(pki.ca, "utf8"));
    expect(r.c2pa!.valid).to.equal(false);
    expect(r.c2pa!.state).to.equal("Invalid");
    expect(r.c2pa!.failures.map((f) => f.code)).to.include("assertion.dataHash.mismatch");
  });

  it("/v1/jobs results and the OpenAI route (b64_json, url and a resized size) are marked too", async () => {
    const queued = await post("/v1/jobs", { instruction: "make the mug red", steps: "2", seed: "2", output_format: "webp" });
    const { id } = (await queued.json()) as { id: string };
    let state = "queued";
    for (let i = 0; i < 300 && state !== "succeeded"; i++) {
      state = ((await (await fetch(`${s.url}/v1/jobs/${id}`)).json()) as { state: string }).state;
      await new Promise((r) => setTimeout(r, 50));
    }
    const job = Buffer.from(await (await fetch(`${s.url}/v1/jobs/${id}/result`)).arrayBuffer());
    expect((await verify(job, pki)).report.c2pa).to.include({ valid: true, trusted: true });

    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none" });
    const image = await toFile(photo, "coffee.png");
    const base = { image, prompt: "make the mug red", steps: 2, seed: 3 } as unknown as OpenAI.ImageEditParamsNonStreaming;
    const b64 = await client.images.edit({ ...base, output_format: "jpeg" });
    const resized = await client.images.edit({ ...base, size: "300x200" } as OpenAI.ImageEditParamsNonStreaming);
    const url = await client.images.edit({ ...base, response_format: "url" } as OpenAI.ImageEditParamsNonStreaming);
    const fromUrl = Buffer.from(await (await fetch(url.data![0].url!)).arrayBuffer());
    for (const [name, bytes] of [["b64_json", Buffer.from(b64.data![0].b64_json!, "base64")], ["size", Buffer.from(resized.data![0].b64_json!, "base64")], ["url", fromUrl]] as const) {
      const { report, actions } = await verify(bytes, pki);
      expect(report.c2pa, name).to.include({ valid: true, trusted: true, digital_source_type: DIGITAL_SOURCE_TYPE });
      expect(actions.map((a) => a.action), name).to.deep.equal(name === "size" ? ["c2pa.opened", "c2pa.edited", "c2pa.resized"] : ["c2pa.opened", "c2pa.edited"]);
    }
    expect((await sharp(Buffer.from(resized.data![0].b64_json!, "base64")).metadata()).width).to.equal(300);
  });

  it("/v1/edits with a like upload repeats the edit: the same pixels; /v1/scores says which image is ours and intact", async () => {
    const first = Buffer.from(await (await post("/v1/edits", { instruction: "make the mug blue", rewards: "4,3,5", steps: "3", seed: "11" })).arrayBuffer());
    const again = await post("/v1/edits", {}, { image: photo, like: first });
    expect(again.status).to.equal(200);
    const bytes = Buffer.from(await again.arrayBuffer());
    expect((await pixels(bytes)).equals(await pixels(first))).to.equal(true);
    expect((await readProvenance(bytes)).parameters).to.include({ instruction: "make the mug blue", seed: 11 });
    // an explicit field wins over the recorded one
    const other = await post("/v1/edits", { seed: "12" }, { image: photo, like: first });
    expect((await pixels(Buffer.from(await other.arrayBuffer()))).equals(await pixels(first))).to.equal(false);
    const notOurs = await post("/v1/edits", {}, { image: photo, like: photo });
    expect(notOurs.status).to.equal(400);
    expect(((await notOurs.json()) as { error: { field: string } }).error.field).to.equal("like");

    const score = async (edited: Buffer) => {
      const r = await post("/v1/scores", { instruction: "make the mug blue" }, { source: photo, edited });
      expect(r.status).to.equal(200);
      return ((await r.json()) as { provenance: Awaited<ReturnType<typeof readProvenance>> }).provenance;
    };
    expect((await score(first)).c2pa).to.include({ ours: true, valid: true });
    expect((await score(photo)).c2pa).to.equal(null);
  });

  it("the CLI: edit and batch results are marked, inspect prints the parameters, --like gives the same pixels", async () => {
    const dir = tempDir();
    const out = path.join(dir, "a.webp");
    const r = await runCli(["edit", "--image", PHOTO, "--instruction", "make the mug red", "--model", TINY, "--steps", "3", "--seed", "7", "--scheduler", "ddim", "--out", out], env());
    expect(r.code, r.stderr).to.equal(0);
    expect(exiftool(out).DigitalSourceType).to.equal(DIGITAL_SOURCE_TYPE);
    const inspect = await runCli(["inspect", out, "--trust", pki.ca], env());
    expect(inspect.code, inspect.stderr).to.equal(0);
    const shown = JSON.parse(inspect.stdout);
    expect(shown.c2pa).to.include({ ours: true, valid: true, trusted: true });
    expect(shown.parameters).to.include({ instruction: "make the mug red", seed: 7, steps: 3, scheduler: "ddim", detail: "keep", format: "webp", working_size: false });
    expect(shown.parameters.rewards).to.deep.equal([5, 5, 5]);
    const like = path.join(dir, "b.webp");
    const again = await runCli(["edit", "--like", out, "--image", PHOTO, "--model", TINY, "--out", like], env());
    expect(again.code, again.stderr).to.equal(0);
    expect((await pixels(like)).equals(await pixels(out))).to.equal(true);

    const input = tempDir();
    for (const n of ["p1", "p2"]) writeFileSync(path.join(input, `${n}.png`), photo);
    const batchOut = path.join(dir, "batch");
    const b = await runCli(["batch", "--input", input, "--instruction", "make the mug red", "--model", TINY, "--steps", "2", "--format", "jpeg", "--no-score", "--out", batchOut], env());
    expect(b.code, b.stderr).to.equal(0);
    for (const n of ["p1.jpg", "p2.jpg"]) {
      const { report } = await verify(readFileSync(path.join(batchOut, n)), pki);
      expect(report.c2pa, n).to.include({ valid: true, trusted: true });
    }
  });

  it("REWARD_EDIT_PROVENANCE_PARAMETERS=off leaves the instruction out and keeps the AI mark; REWARD_EDIT_C2PA=off embeds nothing", async () => {
    const dir = tempDir();
    const withheld = path.join(dir, "w.png");
    expect((await runCli(["edit", "--image", PHOTO, "--instruction", "a secret brief", "--model", TINY, "--steps", "2", "--seed", "1", "--out", withheld], { ...env(), REWARD_EDIT_PROVENANCE_PARAMETERS: "off" })).code).to.equal(0);
    const bytes = readFileSync(withheld);
    expect(bytes.includes("a secret brief")).to.equal(false);
    const r = await readProvenance(bytes);
    expect(r.c2pa).to.include({ valid: true, digital_source_type: DIGITAL_SOURCE_TYPE });
    expect(r.parameters).to.include({ instruction_withheld: true, seed: 1 });
    expect(r.parameters).to.not.have.property("instruction");
    const noInstruction = await runCli(["edit", "--like", withheld, "--image", PHOTO, "--model", TINY, "--out", path.join(dir, "x.png")]);
    expect(noInstruction.code).to.equal(1);
    expect(noInstruction.stderr.trim().split("\n")).to.have.length(1);
    expect(noInstruction.stderr).to.match(/does not record its instruction.*--instruction/);

    const off = path.join(dir, "off.png");
    const plain = await runCli(["edit", "--image", PHOTO, "--instruction", "a secret brief", "--model", TINY, "--steps", "2", "--seed", "1", "--out", off], { REWARD_EDIT_C2PA: "off" });
    expect(plain.code, plain.stderr).to.equal(0);
    expect(await readProvenance(readFileSync(off))).to.deep.include({ c2pa: null, xmp: null, parameters: null });
    expect(exiftool(off)).to.not.have.any.keys("DigitalSourceType", "CreatorTool");
    // the same pixels as the marked result: marking changes the file, never the image
    expect((await pixels(off)).equals(await pixels(withheld))).to.equal(true);
  });

  it("none of the source's own metadata reaches the result: no EXIF (GPS, camera, author), no IPTC, no XMP of its own; orientation is applied", async () => {
    const dir = tempDir();
    const src = path.join(dir, "src.jpg");
    await sharp(photo).jpeg().toFile(src);
    execFileSync("exiftool", ["-q", "-overwrite_original", "-GPSLatitude=48.8584", "-GPSLatitudeRef=N", "-GPSLongitude=2.2945", "-GPSLongitudeRef=E", "-Make=TestCam", "-Artist=Jane Doe", "-XMP-dc:Creator=Jane Doe", "-IPTC:Keywords=mug", "-Orientation#=6", src]);
    const out = path.join(dir, "out.jpg");
    expect((await runCli(["edit", "--image", src, "--instruction", "make the mug red", "--model", TINY, "--steps", "1", "--out", out], env())).code).to.equal(0);
    const tags = JSON.parse(execFileSync("exiftool", ["-j", "-G1", "-EXIF:all", "-GPS:all", "-IPTC:all", "-XMP:all", out], { encoding: "utf8" }))[0] as Record<string, string>;
    expect(Object.keys(tags).filter((k) => k !== "SourceFile").sort()).to.deep.equal(["XMP-iptcExt:DigitalSourceType", "XMP-rewardedit:Parameters", "XMP-xmp:CreatorTool"]);
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height, meta.orientation]).to.deep.equal([400, 600, undefined]);
  });

  it("PS256 (RSA) certificates sign too; without any, the installation's own certificate signs: valid, not trusted, made once", async () => {
    const dir = tempDir();
    const rsa = path.join(dir, "rsa.jpg");
    expect((await runCli(["edit", "--image", PHOTO, "--instruction", "x", "--model", TINY, "--steps", "1", "--out", rsa], { REWARD_EDIT_C2PA_CERT: pki.rsaChain, REWARD_EDIT_C2PA_KEY: pki.rsaKey })).code).to.equal(0);
    const { report } = await verify(readFileSync(rsa), pki);
    expect(report.c2pa).to.include({ valid: true, trusted: true });
    expect(report.c2pa!.signer).to.include({ alg: "Ps256", common_name: "Test PS256 signer" });

    const cache = tempDir();
    const own = async (name: string) => {
      const r = await runCli(["edit", "--image", PHOTO, "--instruction", "x", "--model", TINY, "--steps", "1", "--out", path.join(dir, name)], { REWARD_EDIT_CACHE: cache });
      expect(r.code, r.stderr).to.equal(0);
      return { r, p: await readProvenance(readFileSync(path.join(dir, name)), readFileSync(pki.ca, "utf8")) };
    };
    const a = await own("s1.png");
    expect(a.r.stderr).to.match(/self-signed certificate \(.*installation-signer\.pem\).*not by a trusted issuer/);
    expect(a.p.c2pa).to.include({ valid: true, trusted: false, state: "Valid" });
    const b = await own("s2.png");
    expect(b.r.stderr).to.not.contain("self-signed");
    expect(b.p.c2pa!.signer).to.deep.equal(a.p.c2pa!.signer);
  });

  it("a certificate that cannot sign stops start-up in one line: corrupt, wrong key type, a key that does not match", async () => {
    const dir = tempDir();
    const corrupt = path.join(dir, "corrupt.pem");
    writeFileSync(corrupt, readFileSync(pki.chain, "utf8").replace(/^(-----BEGIN CERTIFICATE-----\n.{10})./m, "$1!"));
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ REWARD_EDIT_C2PA_CERT: corrupt, REWARD_EDIT_C2PA_KEY: pki.key }, /^reward-edit: REWARD_EDIT_C2PA_CERT: not a readable X\.509 certificate/],
      [{ REWARD_EDIT_C2PA_CERT: pki.key, REWARD_EDIT_C2PA_KEY: pki.key }, /REWARD_EDIT_C2PA_CERT: no PEM certificate/],
      [{ REWARD_EDIT_C2PA_CERT: pki.edChain, REWARD_EDIT_C2PA_KEY: pki.edKey }, /REWARD_EDIT_C2PA_KEY: a ed25519 key; .*ES256 .*PS256/],
      [{ REWARD_EDIT_C2PA_CERT: pki.ca, REWARD_EDIT_C2PA_KEY: path.join(pki.dir, "ca.key") }, /the first certificate is a CA certificate/],
      [{ REWARD_EDIT_C2PA_CERT: pki.chain, REWARD_EDIT_C2PA_KEY: pki.otherKey }, /REWARD_EDIT_C2PA_KEY does not match the certificate in REWARD_EDIT_C2PA_CERT/],
      [{ REWARD_EDIT_C2PA_CERT: pki.chain }, /REWARD_EDIT_C2PA_KEY is not set/],
      [{ REWARD_EDIT_C2PA_CERT: path.join(dir, "missing.pem"), REWARD_EDIT_C2PA_KEY: pki.key }, /REWARD_EDIT_C2PA_CERT: cannot read .*ENOENT/],
    ];
    for (const [e, message] of cases) {
      const r = await runCli(["edit", "--image", PHOTO, "--instruction", "x", "--model", TINY, "--steps", "1", "--out", path.join(dir, "o.png")], e);
      expect(r.code, JSON.stringify(e)).to.equal(1);
      expect(r.stderr.trim().split("\n"), r.stderr).to.have.length(1);
      expect(r.stderr).to.match(message);
    }
    // `serve`, as a pod runs it: one line on stderr, nothing else, exit 1
    const pod = await runCli(["serve", "--port", "0", "--model", TINY], { REWARD_EDIT_C2PA_CERT: pki.chain, REWARD_EDIT_C2PA_KEY: pki.otherKey, HOST: "127.0.0.1" });
    expect(pod.code).to.equal(1);
    expect(pod.stderr.trim().split("\n")).to.have.length(1);
    expect(pod.stderr).to.match(/^reward-edit: REWARD_EDIT_C2PA_KEY does not match the certificate/);
    expect(pod.stdout).to.equal("");
    // the server refuses to start, before any worker loads
    let err: Error | undefined;
    await startServer(quiet, { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1 }, { REWARD_EDIT_C2PA_CERT: pki.chain, REWARD_EDIT_C2PA_KEY: pki.otherKey }).then(
      (x) => x.stop(),
      (e: Error) => (err = e),
    );
    expect(err?.message).to.match(/^REWARD_EDIT_C2PA_KEY does not match/);
    expect(err?.message).to.not.contain("\n");
  });
});
