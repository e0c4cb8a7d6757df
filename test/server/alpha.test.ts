/**
 * Cutouts stay cutouts over HTTP (issue 41, item 3): /v1/edits and the OpenAI-compatible
 * /v1/images/edits (called by the official client) return a transparent PNG or WebP with the
 * source's alpha, pixel for pixel; background opaque fills with background_colour; transparent
 * JPEG is a 400 naming background. A mask and the C2PA signature work on such results.
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import OpenAI, { type APIError, toFile } from "openai";
import { pino } from "pino";
import sharp from "sharp";
import { readProvenance } from "../../src/provenance/reader.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { TINY } from "../helpers.js";
import { makePki, type TestPki } from "../provenance/pki.js";
import { baseForm } from "../support/forms.js";
import { CUTOUT, alphaDiffers, cutoutPng, cutoutRgba, cutoutWebp } from "../support/cutout.js";

/** Pixels fully transparent in the source whose result colour is not `colour`. */
function offColour(rgb: Buffer, colour: [number, number, number]): number {
  const src = cutoutRgba();
  let n = 0;
  for (let i = 0; i < src.length / 4; i++) if (src[4 * i + 3] === 0 && (rgb[3 * i] !== colour[0] || rgb[3 * i + 1] !== colour[1] || rgb[3 * i + 2] !== colour[2])) n++;
  return n;
}

describe("transparent cutouts over HTTP: /v1/edits and /v1/images/edits (issue 41)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  let pki: TestPki;
  let client: OpenAI;
  let png: Buffer;
  let webp: Buffer;
  before(async () => {
    pki = makePki();
    png = await cutoutPng();
    webp = await cutoutWebp();
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1 }, { REWARD_EDIT_C2PA_CERT: pki.chain, REWARD_EDIT_C2PA_KEY: pki.key });
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => s?.stop());
  const post = (fields: Record<string, string>, files: Record<string, Buffer>) =>
    fetch(`${s.url}/v1/edits`, { method: "POST", body: baseForm({ instruction: "make the mug red", steps: "2", seed: "6", ...fields }, files) });

  it("/v1/edits: a PNG and a WebP cutout come back transparent, alpha pixel for pixel, signed and verifying", async () => {
    for (const [image, format] of [[png, "png"], [webp, "webp"]] as const) {
      const res = await post({ output_format: format }, { image });
      expect(res.status, format).to.equal(200);
      const bytes = Buffer.from(await res.arrayBuffer());
      const meta = await sharp(bytes).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).to.deep.equal([format, CUTOUT.width, CUTOUT.height, 4]);
      expect(await alphaDiffers(bytes, image), format).to.equal(0);
      const report = await readProvenance(bytes, readFileSync(pki.ca, "utf8"));
      expect(report.c2pa, format).to.include({ ours: true, valid: true, trusted: true });
    }
  });

  it("/v1/edits: background=opaque with background_colour gives no alpha and that colour where the source was transparent", async () => {
    const res = await post({ background: "opaque", background_colour: "#00ff00" }, { image: webp });
    expect(res.status).to.equal(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect((await sharp(bytes).metadata()).hasAlpha).to.equal(false);
    expect(offColour(await sharp(bytes).raw().toBuffer(), [0, 255, 0])).to.equal(0);
  });

  it("/v1/edits: JPEG + transparent, a bad background and a bad background_colour are 400s naming the field", async () => {
    for (const [fields, field] of [
      [{ output_format: "jpeg", background: "transparent" }, "background"],
      [{ background: "clear" }, "background"],
      [{ background: "opaque", background_colour: "green" }, "background_colour"],
    ] as const) {
      const res = await post(fields, { image: png });
      expect(res.status, JSON.stringify(fields)).to.equal(400);
      expect(((await res.json()) as { error: { field: string } }).error.field).to.equal(field);
    }
  });

  it("/v1/edits with a mask: outside it the cutout's RGBA exactly, the alpha everywhere, and the signature verifies", async () => {
    const { width: W, height: H } = CUTOUT;
    const left = Buffer.alloc(W * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W / 2; x++) left[y * W + x] = 255;
    const mask = await sharp(left, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer();
    const res = await post({}, { image: png, mask });
    expect(res.status).to.equal(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(await alphaDiffers(bytes, png)).to.equal(0);
    const got = await sharp(bytes).ensureAlpha().raw().toBuffer();
    const src = cutoutRgba();
    let outside = 0;
    for (let y = 0; y < H; y++)
      for (let x = W / 2; x < W; x++) {
        const i = 4 * (y * W + x);
        if (!got.subarray(i, i + 4).equals(src.subarray(i, i + 4))) outside++;
      }
    expect(outside).to.equal(0);
    expect((await readProvenance(bytes, readFileSync(pki.ca, "utf8"))).c2pa).to.include({ valid: true, trusted: true });
  });

  it("the OpenAI route: background transparent keeps the alpha and says so; opaque fills with background_colour; transparent JPEG is a 400 with param background", async () => {
    const image = async () => toFile(png, "cutout.png", { type: "image/png" });
    const extra = { steps: "2", seed: "2" } as object;
    const t = await client.images.edit({ image: await image(), prompt: "make the mug red", background: "transparent", output_format: "webp", ...extra } as OpenAI.ImageEditParamsNonStreaming);
    expect(t.background).to.equal("transparent");
    const bytes = Buffer.from(t.data![0].b64_json!, "base64");
    expect((await sharp(bytes).metadata()).format).to.equal("webp");
    expect(await alphaDiffers(bytes, png)).to.equal(0);
    const o = await client.images.edit({ image: await image(), prompt: "make the mug red", background: "opaque", ...({ ...extra, background_colour: "#0000ff" } as object) } as OpenAI.ImageEditParamsNonStreaming);
    expect(o.background).to.equal("opaque");
    const flat = Buffer.from(o.data![0].b64_json!, "base64");
    expect((await sharp(flat).metadata()).hasAlpha).to.equal(false);
    expect(offColour(await sharp(flat).raw().toBuffer(), [0, 0, 255])).to.equal(0);
    const err = (await client.images.edit({ image: await image(), prompt: "x", background: "transparent", output_format: "jpeg", ...extra } as OpenAI.ImageEditParamsNonStreaming).catch((e) => e)) as APIError;
    expect(err.status).to.equal(400);
    expect((err.error as { param: string }).param).to.equal("background");
  });
});
