import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { EditInputError, type EditorModel, LatentBlender, createScheduler, edit, loadModel, parseSchedulerConfig } from "../../editor/index.js";
import { decodeMask } from "../../raster/mask.js";
import { JudgeScorer, LocalScorer } from "../../reward/index.js";
import { ROOT } from "../helpers.js";
import { FakeJudge } from "../support/fake-judge.js";

const BUNDLED = path.join(ROOT, "models", "reward-edit-synthetic");
const SCENE = readFileSync(path.join(ROOT, "models", "heldout-v2", "scenes", "syn-0003-source.png"));

/** A greyscale mask PNG of w x h whose columns [x0, x1) are `value` and the rest black. */
function columns(w: number, h: number, x0: number, x1: number, value = 255): Promise<Buffer> {
  const m = Buffer.alloc(w * h);
  for (let y = 0; y < h; y++) for (let x = x0; x < x1; x++) m[y * w + x] = value;
  return sharp(m, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
}

async function rgb(png: Buffer) {
  return sharp(png).removeAlpha().raw().toBuffer();
}

/** Pixels of columns [x0, x1) that differ between two 64x64 images. */
function changed(a: Buffer, b: Buffer, x0: number, x1: number, w = 64): number {
  let n = 0;
  for (let i = 0; i < a.length / 3; i++) {
    const x = i % w;
    if (x >= x0 && x < x1 && (a[i * 3] !== b[i * 3] || a[i * 3 + 1] !== b[i * 3 + 1] || a[i * 3 + 2] !== b[i * 3 + 2])) n++;
  }
  return n;
}

describe("edit masks (issue 21): white may change, black must not", function () {
  this.timeout(60_000);
  let model: EditorModel;
  before(async () => {
    model = await loadModel(BUNDLED);
  });
  after(() => model.dispose());
  const base = { image: SCENE, instruction: "make the background blue", seed: 5, steps: 8 };

  for (const maskMode of ["blend", "paste"] as const) {
    it(`${maskMode}: outside the mask every pixel is the source's, inside the edit happens`, async () => {
      const r = await edit(model, { ...base, editMask: await columns(64, 64, 0, 32), maskMode });
      expect(r.parameters.maskMode).to.equal(maskMode);
      const src = await rgb(SCENE);
      const out = await rgb(r.image);
      expect(changed(src, out, 32, 64)).to.equal(0);
      expect(changed(src, out, 0, 32)).to.be.greaterThan(32 * 64 * 0.3);
      expect(r.keptFraction).to.be.at.least(0.5);
    });
  }

  it("blend confines the edit during sampling: its result inside the mask differs from paste's", async () => {
    const mask = await columns(64, 64, 0, 32);
    const blend = await rgb((await edit(model, { ...base, editMask: mask, maskMode: "blend" })).image);
    const paste = await rgb((await edit(model, { ...base, editMask: mask, maskMode: "paste" })).image);
    expect(changed(blend, paste, 0, 32)).to.be.greaterThan(100);
  });

  it("a mask of any size is scaled to the photo, with the same outside kept", async () => {
    const r = await edit(model, { ...base, editMask: await columns(8, 8, 0, 4) });
    expect(changed(await rgb(SCENE), await rgb(r.image), 32, 64)).to.equal(0);
  });

  it("an all-white mask is the same as none; all black, empty or not an image is an input error naming mask", async () => {
    const none = await edit(model, base);
    const white = await edit(model, { ...base, editMask: await columns(16, 16, 0, 16) });
    expect(white.parameters.maskMode).to.equal(null);
    expect(white.image.equals(none.image)).to.equal(true);
    for (const [label, bytes, message] of [
      ["all black", await columns(16, 16, 0, 0), /all black/],
      ["empty", Buffer.alloc(0), /empty/],
      ["not an image", Buffer.from("not a png"), /cannot be decoded/],
    ] as const) {
      const err = await edit(model, { ...base, editMask: bytes }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, label).to.be.instanceOf(EditInputError);
      expect((err as EditInputError).field, label).to.equal("mask");
      expect((err as EditInputError).message, label).to.match(message);
    }
  });

  it("grey marks a partial edit: the result lies between source and the full edit", async () => {
    const full = await rgb((await edit(model, { ...base, editMask: await columns(64, 64, 0, 32), maskMode: "paste" })).image);
    const half = await rgb((await edit(model, { ...base, editMask: await columns(64, 64, 0, 32, 128), maskMode: "paste" })).image);
    const src = await rgb(SCENE);
    let between = 0;
    let moved = 0;
    for (let i = 0; i < 64 * 64; i++) {
      if (i % 64 >= 24) continue; // away from the feathered edge
      for (let c = 0; c < 3; c++) {
        const k = i * 3 + c;
        if (full[k] === src[k]) continue;
        moved++;
        const d = Math.abs(half[k] - (src[k] + full[k]) / 2);
        if (d <= 1.5) between++;
      }
    }
    expect(moved).to.be.greaterThan(500);
    expect(between / moved).to.be.greaterThan(0.99);
  });
});

describe("LatentBlender: outside the mask the source latent at the sampler's noise level", () => {
  for (const name of ["euler-a", "dpmpp-2m"] as const) {
    it(`${name}: the level after each step, and the clean source after the last`, () => {
      const s = createScheduler(name, parseSchedulerConfig({}));
      s.setTimesteps(4);
      const src = Float32Array.from([1, -2]);
      const noise = Float32Array.from([0.5, 0.25]);
      const b = new LatentBlender(Float32Array.from([0]), src, noise, s);
      const ve = name === "euler-a";
      for (let i = 0; i < 4; i++) {
        const x = Float32Array.from([9, 9]);
        b.apply(x, i);
        const sigma = i < 3 ? s.noiseLevel(i + 1) : 0;
        const a = ve ? 1 : 1 / Math.sqrt(sigma * sigma + 1);
        const sd = ve ? sigma : sigma / Math.sqrt(sigma * sigma + 1);
        expect(x[0]).to.be.closeTo(a * 1 + sd * 0.5, 1e-5);
        expect(x[1]).to.be.closeTo(a * -2 + sd * 0.25, 1e-5);
      }
    });
  }

  it("inside the mask (1) the sample is untouched; a half mask averages", () => {
    const s = createScheduler("ddim", parseSchedulerConfig({}));
    s.setTimesteps(2);
    const b = new LatentBlender(Float32Array.from([1, 0.5]), Float32Array.from([0, 0]), Float32Array.from([0, 0]), s);
    const x = Float32Array.from([3, 3]);
    b.apply(x, 1); // after the last step: the clean source, 0
    expect(Array.from(x)).to.deep.equal([3, 1.5]);
  });
});

describe("scorers judge preservation outside a mask", function () {
  this.timeout(30_000);
  const source = SCENE;
  let edited: Buffer;
  let leftMask: Buffer;
  before(async () => {
    // the left half repainted red, the right half untouched
    const raw = await rgb(SCENE);
    for (let i = 0; i < 64 * 64; i++) if (i % 64 < 32) raw.set([220, 30, 30], i * 3);
    edited = await sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
    leftMask = await columns(64, 64, 0, 32);
  });

  it("local: a change only inside the mask preserves fully; without the mask it does not", async () => {
    const s = new LocalScorer();
    const withMask = await s.score({ source, edited, instruction: "make the left red", mask: leftMask });
    const without = await s.score({ source, edited, instruction: "make the left red" });
    expect(withMask.perspectives.preserving.score).to.equal(5);
    expect(withMask.perspectives.preserving.reason).to.match(/outside the mask/);
    expect(without.perspectives.preserving.score).to.be.below(3);
    expect((await decodeMask(leftMask)).coverage).to.equal(0.5);
  });

  it("judge: the preservation question carries the mask as a third image and says how to read it", async () => {
    const judge = await new FakeJudge().start();
    try {
      const scorer = new JudgeScorer({ baseURL: judge.url, apiKey: "k", model: "m", protocol: "mrc", timeoutMs: 5_000, concurrency: 3, passes: 1, maxRetries: 0, temperature: 0, imageSide: 64 });
      const r = await scorer.score({ source, edited, instruction: "make the left red", mask: leftMask });
      expect(r.promptVersion).to.match(/\+mask$/);
      const preserving = judge.requests.find((q) => FakeJudge.perspective(q) === "preserving")!;
      const parts = preserving.body.messages.find((m) => m.role === "user")!.content as Array<{ type: string; text?: string }>;
      expect(parts.filter((p) => p.type === "image_url")).to.have.length(3);
      expect(parts.map((p) => p.text ?? "").join(" ")).to.match(/outside the white area only/);
      for (const q of judge.requests.filter((x) => FakeJudge.perspective(x) !== "preserving")) {
        const c = q.body.messages.find((m) => m.role === "user")!.content as Array<{ type: string }>;
        expect(c.filter((p) => p.type === "image_url").length).to.be.below(3);
      }
    } finally {
      await judge.stop();
    }
  });
});
