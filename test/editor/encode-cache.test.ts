import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { EncodeCache, type EditorModel, type EditOptions, type Session, edit, loadModel } from "../../editor/index.js";
import { PHOTOS, TINY } from "../helpers.js";

/** Counts a session's runs by wrapping its run method on the instance. */
function counting(s: Session): { count: () => number; restore: () => void } {
  let n = 0;
  const real = s.run.bind(s);
  (s as { run: Session["run"] }).run = (feeds, options) => {
    n++;
    return real(feeds, options);
  };
  return { count: () => n, restore: () => delete (s as { run?: unknown }).run };
}

describe("encode cache: source latent and text embeddings between edits (tiny model, real ONNX sessions)", function () {
  this.timeout(60_000);
  let model: EditorModel;
  let photo: Buffer;
  let other: Buffer;
  before(async () => {
    model = await loadModel(TINY);
    photo = readFileSync(path.join(PHOTOS, "coffee.png"));
    other = readFileSync(path.join(PHOTOS, "astronaut.png"));
  });
  after(() => model.dispose());

  const base = (o: Partial<EditOptions> = {}): EditOptions => ({ image: photo, instruction: "make the mug red", steps: 3, seed: 5, ...o });

  it("a second edit of the same photo and instruction runs neither encoder, and gives the uncached edit's pixels", async () => {
    const cache = new EncodeCache();
    const vae = counting(model.vaeEncoder);
    const text = counting(model.textEncoder);
    try {
      const uncached = await edit(model, base({ encodeCache: null }));
      expect([vae.count(), text.count()]).to.deep.equal([1, 1]);
      const first = await edit(model, base({ encodeCache: cache }));
      expect([vae.count(), text.count()]).to.deep.equal([2, 2]);
      expect(first.timings.cached).to.deep.equal({ latent: false, text: false });
      // best-of-N's candidates: other seeds, same photo and instruction
      const second = await edit(model, base({ encodeCache: cache, seed: 6 }));
      const again = await edit(model, base({ encodeCache: cache }));
      expect([vae.count(), text.count()]).to.deep.equal([2, 2]);
      expect(again.timings.cached).to.deep.equal({ latent: true, text: true });
      expect(Buffer.compare(again.image, first.image)).to.equal(0);
      expect(Buffer.compare(first.image, uncached.image)).to.equal(0);
      expect(Buffer.compare(second.image, first.image)).to.not.equal(0);
      expect(cache.stats()).to.include({ entries: 2, hits: 4, misses: 2, evictions: 0 });
    } finally {
      vae.restore();
      text.restore();
    }
  });

  it("keys the latent by photo and the embeddings by prompt: a new instruction re-runs only the text encoder, a new photo only the VAE", async () => {
    const cache = new EncodeCache();
    const vae = counting(model.vaeEncoder);
    const text = counting(model.textEncoder);
    try {
      await edit(model, base({ encodeCache: cache }));
      const reworded = await edit(model, base({ encodeCache: cache, instruction: "make the mug blue" }));
      expect([vae.count(), text.count()]).to.deep.equal([1, 2]);
      expect(reworded.timings.cached).to.deep.equal({ latent: true, text: false });
      await edit(model, base({ encodeCache: cache, image: other }));
      expect([vae.count(), text.count()]).to.deep.equal([2, 2]);
      // the feedback text is a prompt of the batch: another one is another embedding
      await edit(model, base({ encodeCache: cache, feedback: "Too dark; None; None" }));
      expect(text.count()).to.equal(3);
    } finally {
      vae.restore();
      text.restore();
    }
  });

  it("the model's own cache serves edits that pass none (best-of-N, refinement, n share it)", async () => {
    const vae = counting(model.vaeEncoder);
    try {
      const instruction = `make the mug green ${Date.now()}`;
      await edit(model, base({ instruction }));
      const r = await edit(model, base({ instruction, seed: 9 }));
      expect(vae.count()).to.be.at.most(1);
      expect(r.timings.cached).to.deep.equal({ latent: true, text: true });
    } finally {
      vae.restore();
    }
  });

  it("stays within its byte bound, evicting the least recently used entry first", async () => {
    // a 600x400 photo at the tiny model's 64 px is a 4x24x32 latent (12 KiB); the three-prompt embedding is larger
    const probe = new EncodeCache();
    await edit(model, base({ encodeCache: probe }));
    const bytes = probe.stats().bytes;
    const cache = new EncodeCache(bytes + 1);
    const vae = counting(model.vaeEncoder);
    try {
      await edit(model, base({ encodeCache: cache }));
      expect(cache.stats()).to.include({ entries: 2, evictions: 0 });
      await edit(model, base({ encodeCache: cache, image: other }));
      const s = cache.stats();
      expect(s.bytes).to.be.at.most(cache.maxBytes);
      expect(s.evictions).to.be.greaterThan(0);
      // the coffee latent went first (oldest): editing it again runs the VAE encoder again
      const before = vae.count();
      await edit(model, base({ encodeCache: cache }));
      expect(vae.count()).to.equal(before + 1);
      expect(cache.stats().bytes).to.be.at.most(cache.maxBytes);
    } finally {
      vae.restore();
    }
  });

  it("concurrent edits of one photo share one encoder run", async () => {
    const cache = new EncodeCache();
    const vae = counting(model.vaeEncoder);
    try {
      const [a, b] = await Promise.all([edit(model, base({ encodeCache: cache })), edit(model, base({ encodeCache: cache }))]);
      expect(vae.count()).to.equal(1);
      expect(Buffer.compare(a.image, b.image)).to.equal(0);
    } finally {
      vae.restore();
    }
  });

  it("refuses a bound that is not a byte count", () => {
    expect(() => new EncodeCache(-1)).to.throw(RangeError);
    expect(() => new EncodeCache(Number.NaN)).to.throw(RangeError);
  });
});
