import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import OpenAI, { type APIError, toFile } from "openai";
import { pino } from "pino";
import sharp from "sharp";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { PHOTOS, TINY } from "../helpers.js";
import { expectResponse } from "../support/responses.js";

const KEY = "test-key-openai-stream";

describe("OpenAI streaming on POST /v1/images/edits, iterated by the official openai client (issue 31)", function () {
  this.timeout(60_000);
  let s: RunningServer;
  let client: OpenAI;
  const photo = readFileSync(path.join(PHOTOS, "coffee.png"));
  before(async () => {
    s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: TINY, workers: 1, apiKeys: [KEY], maxSteps: 1000 }, {});
    client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  after(() => s.stop());

  it("stream: true, partial_images: 2 yields image_edit.partial_image events, then image_edit.completed whose image decodes", async () => {
    const meta = await sharp(photo).metadata();
    const stream = await client.images.edit({
      image: await toFile(photo, "coffee.png", { type: "image/png" }),
      prompt: "make the mug red",
      stream: true,
      partial_images: 2,
      ...({ steps: "120", seed: "5" } as object),
    } as OpenAI.ImageEditParamsStreaming);
    const events: OpenAI.ImageEditStreamEvent[] = [];
    for await (const e of stream) events.push(e);
    const types = events.map((e) => e.type);
    expect(types.at(-1)).to.equal("image_edit.completed");
    const partials = events.filter((e): e is OpenAI.ImageEditPartialImageEvent => e.type === "image_edit.partial_image");
    expect(types.slice(0, partials.length).every((t) => t === "image_edit.partial_image"), types.join(",")).to.equal(true);
    expect(partials.length).to.be.within(1, 2);
    for (const p of partials) expectResponse("OpenAiPartialImageEvent", p);
    expectResponse("OpenAiCompletedEvent", events.at(-1));
    expect(partials.map((p) => p.partial_image_index)).to.deep.equal(partials.map((_, i) => i));
    for (const p of [...partials, events.at(-1)!]) {
      const img = await sharp(Buffer.from(p.b64_json, "base64")).metadata();
      expect([img.format, img.width, img.height]).to.deep.equal(["png", meta.width, meta.height]);
      expect(p).to.include({ output_format: "png", size: `${meta.width}x${meta.height}` });
      expect(p.created_at).to.be.a("number");
    }
    const done = events.at(-1) as OpenAI.ImageEditCompletedEvent;
    expect(done.usage).to.include({ total_tokens: 0 });
  });

  it("errors before the first event stay OpenAI's JSON errors (the client raises them)", async () => {
    const err = await client.images
      .edit({ image: await toFile(photo, "coffee.png", { type: "image/png" }), prompt: "make the mug red", stream: true, partial_images: 5 } as OpenAI.ImageEditParamsStreaming)
      .then(() => null, (e: unknown) => e as APIError);
    expect(err?.status).to.equal(400);
    expect((err?.error as { param: string }).param).to.equal("partial_images");
    const n = await client.images
      .edit({ image: await toFile(photo, "coffee.png", { type: "image/png" }), prompt: "make the mug red", stream: true, n: 2 } as OpenAI.ImageEditParamsStreaming)
      .then(() => null, (e: unknown) => e as APIError);
    expect(n?.status).to.equal(400);
    expect((n?.error as { param: string }).param).to.equal("n");
  });
});
