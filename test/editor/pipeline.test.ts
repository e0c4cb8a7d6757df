import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { type EditorModel, type EditOptions, EditInputError, SCHEDULER_NAMES, edit, loadModel, prepareImage, workingSize } from "../../editor/index.js";
import * as images from "../fixtures/images.js";
import { PHOTOS, TINY, TINY_NO_REWARDS } from "../helpers.js";

describe("InstructPix2Pix pipeline (tiny test model, real ONNX sessions)", function () {
  this.timeout(60_000);
  let model: EditorModel;
  let photo: Buffer;
  before(async () => {
    model = await loadModel(TINY);
    photo = readFileSync(path.join(PHOTOS, "coffee.png"));
  });
  after(() => model.dispose());

  const base = (o: Partial<EditOptions> = {}): EditOptions => ({ image: photo, instruction: "make the mug red", steps: 4, seed: 42, ...o });

  it("same seed and inputs give byte-identical images; another seed differs", async () => {
    const a = await edit(model, base());
    const b = await edit(model, base());
    const c = await edit(model, base({ seed: 43 }));
    expect(Buffer.compare(a.image, b.image)).to.equal(0);
    expect(Buffer.compare(a.image, c.image)).to.not.equal(0);
    expect(a.parameters).to.include({ seed: 42, steps: 4, rewardsApplied: true, scheduler: "euler-a" });
  });

  it("runs the three guidance branches as ONE batched UNet call per step, rewards in every branch", async () => {
    const calls: Array<Record<string, number[]>> = [];
    const seen: number[][] = [];
    const realRun = model.unet.run.bind(model.unet);
    (model.unet as { run: typeof realRun }).run = async (feeds) => {
      calls.push(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.dims])));
      seen.push(Array.from(feeds.reward_scores.data as Float32Array));
      return realRun(feeds);
    };
    try {
      await edit(model, base({ steps: 5, rewards: [4, 2.5, 3] }));
    } finally {
      delete (model.unet as { run?: unknown }).run;
    }
    expect(calls).to.have.length(5);
    expect(calls[0].sample).to.deep.equal([3, 8, 24, 32]); // 600x400 -> 64x43, mirror-padded to 64x48 -> 32x24 latents
    expect(calls[0].encoder_hidden_states[0]).to.equal(3);
    expect(calls[0].feedback_embeds[0]).to.equal(3);
    expect(seen[0]).to.deep.equal([4, 2.5, 3, 4, 2.5, 3, 4, 2.5, 3]);
  });

  it("runs a single branch when guidance is off (text scale <= 1)", async () => {
    const r = await edit(model, base({ textGuidance: 1 }));
    expect(r.timings.unetBatch).to.equal(1);
  });

  it("reward levels change the result", async () => {
    const a = await edit(model, base({ rewards: [5, 5, 5] }));
    const b = await edit(model, base({ rewards: [1, 1, 1] }));
    expect(Buffer.compare(a.image, b.image)).to.not.equal(0);
  });

  it("calls back once per step and stops within one step when aborted", async () => {
    const steps: number[] = [];
    const ctrl = new AbortController();
    let err: unknown;
    await edit(model, base({ steps: 10, signal: ctrl.signal, onStep: (p) => {
      steps.push(p.step);
      if (p.step === 3) ctrl.abort();
    } })).catch((e) => (err = e));
    expect((err as Error).name).to.equal("AbortError");
    expect(steps).to.deep.equal([1, 2, 3]);
  });

  it("every scheduler edits", async () => {
    for (const scheduler of SCHEDULER_NAMES) {
      const r = await edit(model, base({ scheduler }));
      expect(r.parameters.scheduler).to.equal(scheduler);
    }
  });

  const awkward: Array<[string, () => Promise<Buffer>, number, number]> = [
    ["odd-sized PNG", () => images.png(123, 77), 123, 77],
    ["EXIF-rotated JPEG", () => images.rotatedJpeg(60, 30), 30, 60],
    ["PNG with alpha", () => images.rgbaPng(50, 50), 50, 50],
    ["greyscale PNG", () => images.greyPng(40, 70), 40, 70],
    ["CMYK JPEG", () => images.cmykJpeg(64, 48), 64, 48],
    ["16-bit PNG", () => images.png16(33, 33), 33, 33],
    ["animated GIF (first frame)", () => images.animatedGif(48, 32), 48, 32],
  ];
  for (const [name, make, w, h] of awkward) {
    it(`normalises a ${name} and returns it at the input's own upright size`, async () => {
      const r = await edit(model, base({ image: await make(), steps: 2 }));
      const meta = await sharp(r.image).metadata();
      // a transparent input keeps its alpha (issue 41); every other comes back RGB
      expect([meta.width, meta.height, meta.format, meta.channels]).to.deep.equal([w, h, "png", name === "PNG with alpha" ? 4 : 3]);
      expect(r.parameters.workingWidth % model.manifest.size_multiple).to.equal(0);
    });
  }

  it("can return the model's working size and other formats", async () => {
    const r = await edit(model, base({ workingSize: true, format: "webp" }));
    const meta = await sharp(r.image).metadata();
    expect([meta.format, meta.width, meta.height]).to.deep.equal(["webp", 64, 43]); // the padding is cut off again
  });

  it("rejects bad inputs naming the field", async () => {
    const cases: Array<[Partial<EditOptions>, string]> = [
      [{ rewards: [6, 5, 5] }, "rewards"],
      [{ rewards: [5, 5] as never }, "rewards"],
      [{ steps: 0 }, "steps"],
      [{ seed: -1 }, "seed"],
      [{ instruction: "  " }, "instruction"],
      [{ textGuidance: Number.NaN }, "text_guidance"],
    ];
    for (const [o, field] of cases) {
      let err: unknown;
      await edit(model, base(o)).catch((e) => (err = e));
      expect(err, field).to.be.instanceOf(EditInputError);
      expect((err as EditInputError).field).to.equal(field);
    }
  });

  it("a model without reward inputs edits and reports rewards as not applied", async () => {
    const plain = await loadModel(TINY_NO_REWARDS);
    try {
      const r = await edit(plain, base({ rewards: [1, 2, 3] }));
      expect(r.parameters.rewardsApplied).to.equal(false);
      expect(r.parameters.rewards).to.equal(null);
    } finally {
      await plain.dispose();
    }
  });
});

describe("working size of a photo (long side to the resolution, padded to the size multiple)", () => {
  it("SD scale: a 3000x2000 photo is scaled to 512x341 and mirror-padded to 512x384, centred", () => {
    expect(workingSize(3000, 2000, { resolution: 512, multiple: 64 })).to.deep.equal({
      width: 512,
      height: 384,
      content: { left: 0, top: 21, width: 512, height: 341 },
    });
    expect(workingSize(512, 512, { resolution: 512, multiple: 64 }).content).to.deep.equal({ left: 0, top: 0, width: 512, height: 512 });
    expect(workingSize(2000, 3000, { resolution: 512, multiple: 64 })).to.include({ width: 384, height: 512 });
  });

  it("the padding mirrors the photo's own edge rows, not a flat colour", async () => {
    const img = await sharp({ create: { width: 60, height: 40, channels: 3, background: "#000" } })
      .composite([{ input: { create: { width: 60, height: 2, channels: 3, background: "#fff" } }, top: 0, left: 0 }])
      .png()
      .toBuffer();
    const p = await prepareImage(img, { resolution: 64, multiple: 16 });
    expect([p.width, p.height, p.content.top, p.content.height]).to.deep.equal([64, 48, 2, 43]);
    const red = (x: number, y: number) => p.pixels[y * p.width + x];
    expect(red(30, 2)).to.be.above(0.9); // the photo's white top row
    expect(red(30, 0)).to.be.above(0.9); // mirrored above it
    expect(red(30, 47)).to.be.below(-0.9); // the black bottom, mirrored below
  });
});
