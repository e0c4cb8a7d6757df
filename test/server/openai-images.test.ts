import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import OpenAI, { type APIError, toFile } from "openai";
import { pino } from "pino";
import sharp from "sharp";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";
import { expectResponse } from "../support/responses.js";

const KEY = "test-key-openai";

/** RGBA mask in OpenAI's convention: the left half transparent (edit there), the right half opaque. */
async function leftHalfMask(width: number, height: number): Promise<Buffer> {
  const rgba = Buffer.alloc(width * height * 4, 255);
  for (let y = 0; y < height; y++) for (let x = 0; x < width / 2; x++) rgba[(y * width + x) * 4 + 3] = 0;
  return sharp(rgba, { raw: { width, height, channels: 4 } }).png().toBuffer();
}

describe("OpenAI-compatible POST /v1/images/edits, called by the official openai client (issue 21)", function () {
  this.timeout(120_000);
  let s: RunningServer;
  let client: OpenAI;
  const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, apiKeys: [KEY] }, {});
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  after(() => s.stop());

  it("images.edit answers in OpenAI's shape: created and data[].b64_json, an image of the photo's size", async () => {
    const meta = await sharp(photo).metadata();
    const before = Math.floor(Date.now() / 1000);
    // reward levels and the step count travel as extra body fields, as the client allows
    const r = await client.images.edit({
      image: await toFile(photo, "coffee.png", { type: "image/png" }),
      prompt: "make the mug red",
      model: "reward-edit",
      user: "catalogue-team",
      ...({ rewards: "5,4,5", steps: "2", seed: "7" } as object),
    } as OpenAI.ImageEditParamsNonStreaming);
    expectResponse("OpenAiImages", r);
    expect(r.created).to.be.within(before - 1, before + 120);
    expect(r.data).to.have.length(1);
    const out = await sharp(Buffer.from(r.data![0].b64_json!, "base64")).metadata();
    expect([out.format, out.width, out.height]).to.deep.equal(["png", meta.width, meta.height]);
  });

  it("n gives n images (seeds seed..seed+n-1); response_format url names each stored result; extra fields reach the edit", async () => {
    const base = { image: await toFile(photo, "coffee.png", { type: "image/png" }), prompt: "make the mug red", n: 2, ...({ steps: "2", seed: "11", rewards: "5,4,5" } as object) };
    const b64 = await client.images.edit({ ...base, image: await toFile(photo, "c.png", { type: "image/png" }) } as OpenAI.ImageEditParamsNonStreaming);
    expect(b64.data).to.have.length(2);
    expect(b64.data![0].b64_json).to.not.equal(b64.data![1].b64_json);
    const urls = await client.images.edit({ ...base, response_format: "url" } as OpenAI.ImageEditParamsNonStreaming);
    expect(urls.data).to.have.length(2);
    expectResponse("OpenAiImages", urls);
    for (const [k, d] of urls.data!.entries()) {
      expect(d.url).to.match(new RegExp(`^${s.url}/v1/jobs/[0-9a-f-]+/result\\?candidate=${k}$`));
      const got = await fetch(d.url!, { headers: { authorization: `Bearer ${KEY}` } });
      expect(got.status).to.equal(200);
      expect(got.headers.get("x-reward-edit-seed")).to.equal(String(11 + k));
      // the extra body fields reached the edit
      expect(JSON.parse(got.headers.get("x-reward-edit-parameters")!)).to.deep.include({ rewards: [5, 4, 5], steps: 2 });
      // the same seed, the same edit: the url serves what b64_json carried
      const pixels = (b: Buffer) => sharp(b).raw().toBuffer();
      expect((await pixels(Buffer.from(await got.arrayBuffer()))).equals(await pixels(Buffer.from(b64.data![k].b64_json!, "base64")))).to.equal(true);
    }
  });

  it("a mask in OpenAI's convention (transparent = edit) leaves every opaque pixel exactly as it was", async () => {
    const meta = await sharp(photo).metadata();
    const W = meta.width!;
    const H = meta.height!;
    const r = await client.images.edit({
      image: await toFile(photo, "coffee.png", { type: "image/png" }),
      mask: await toFile(await leftHalfMask(W, H), "mask.png", { type: "image/png" }),
      prompt: "make the mug red",
      ...({ steps: "3", seed: "3" } as object),
    } as OpenAI.ImageEditParamsNonStreaming);
    const got = await sharp(Buffer.from(r.data![0].b64_json!, "base64")).removeAlpha().raw().toBuffer();
    const src = await sharp(photo).removeAlpha().raw().toBuffer();
    let rightDiffer = 0;
    let leftDiffer = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const i = (y * W + x) * 3;
        const same = got[i] === src[i] && got[i + 1] === src[i + 1] && got[i + 2] === src[i + 2];
        if (x >= W / 2 && !same) rightDiffer++;
        if (x < W / 2 && !same) leftDiffer++;
      }
    expect(rightDiffer, "pixels changed under the opaque half").to.equal(0);
    expect(leftDiffer, "pixels changed under the transparent half").to.be.greaterThan(0);
  });

  it("errors reach the client as its own APIError subclasses, with OpenAI's status, param and code", async () => {
    const image = async () => toFile(photo, "coffee.png", { type: "image/png" });
    const caught = async (p: Promise<unknown>) => p.then(() => expect.fail("no error"), (e: unknown) => e);

    const tooMany = (await caught(client.images.edit({ image: await image(), prompt: "make it red", n: 99 }))) as APIError;
    expect(tooMany).to.be.instanceOf(OpenAI.BadRequestError);
    expect([tooMany.status, tooMany.param, tooMany.type]).to.deep.equal([400, "n", "invalid_request_error"]);

    const empty = (await caught(client.images.edit({ image: await image(), prompt: "  " }))) as APIError;
    expect([empty.status, empty.param]).to.deep.equal([400, "prompt"]);

    const opaque = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 1 } } }).png().toBuffer();
    const noEdit = (await caught(client.images.edit({ image: await image(), prompt: "make it red", mask: await toFile(opaque, "m.png") }))) as APIError;
    expect([noEdit.status, noEdit.param]).to.deep.equal([400, "mask"]);
    expect(noEdit.message).to.match(/opaque/);

    const unknown = (await caught(client.images.edit({ image: await image(), prompt: "make it red", ...({ colour: "red" } as object) } as OpenAI.ImageEditParamsNonStreaming))) as APIError;
    expect([unknown.status, unknown.param, unknown.code]).to.deep.equal([400, "colour", "unknown_field"]);

    const stranger = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    const denied = (await caught(stranger.images.edit({ image: await image(), prompt: "make it red" }))) as APIError;
    expect(denied).to.be.instanceOf(OpenAI.AuthenticationError);
    expect(denied.status).to.equal(401);

    // and the raw body is OpenAI's error object
    const raw = await fetch(`${s.url}/v1/images/edits`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: "{}" });
    expect(raw.status).to.equal(415);
    const body = (await raw.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body.error).sort()).to.deep.equal(["code", "message", "param", "type"]);
    expectResponse("OpenAiError", body);
  });

  it("form fields are read strictly: partial_images is one decimal digit 0..3 and only with stream=true; an unknown field is named as sent (finding 14)", async () => {
    /** The raw multipart form, as curl -F sends it: every value exactly as written here. */
    const post = async (fields: Record<string, string>) => {
      const form = new FormData();
      form.append("image", new Blob([photo], { type: "image/png" }), "coffee.png");
      form.append("prompt", "make the mug red");
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      const r = await fetch(`${s.url}/v1/images/edits`, { method: "POST", headers: { authorization: `Bearer ${KEY}` }, body: form });
      return { status: r.status, error: expectResponse("OpenAiError", await r.json()).error };
    };
    // Number() reads "" as 0, "0x2" as 2 and "1e0" as 1: none of them is a partial image count
    for (const v of ["", "0x2", "1e0", "9", "-1", "1.0", " 1", "+1", "01"]) {
      const r = await post({ stream: "true", partial_images: v });
      expect([r.status, r.error.param, r.error.code], JSON.stringify(v)).to.deep.equal([400, "partial_images", "invalid_field"]);
      expect(r.error.message).to.equal("partial_images: must be an integer in 0..3, written as one decimal digit");
    }
    // OpenAI documents partial_images for streamed responses: asked for without stream=true it is refused, not dropped
    for (const fields of [{ partial_images: "2" }, { partial_images: "0", stream: "false" }, { partial_images: "9" }] as Array<Record<string, string>>) {
      const r = await post(fields);
      expect([r.status, r.error.param], JSON.stringify(fields)).to.deep.equal([400, "partial_images"]);
    }
    expect((await post({ partial_images: "2" })).error.message).to.match(/send stream=true/);
    // an unknown field is named as the client spelt it, even where the route's own name for a field is the same word
    for (const name of ["candidates", "instruction", "colour"]) {
      const r = await post({ [name]: "2" });
      expect([r.status, r.error.param, r.error.code, r.error.message], name).to.deep.equal([400, name, "unknown_field", `unknown field "${name}"`]);
    }
    // OpenAI's own n and prompt still come back under their names
    expect((await post({ n: "0" })).error.param).to.equal("n");
  });
});
