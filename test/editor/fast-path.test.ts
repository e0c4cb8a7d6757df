import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import {
  type EditOptions,
  type EditorModel,
  EditInputError,
  type HostTensor,
  InstructPix2PixDenoiser,
  createScheduler,
  edit,
  loadModel,
  parseSchedulerConfig,
} from "../../editor/index.js";
import { TINY, TINY_NO_REWARDS } from "../helpers.js";

const BUNDLED = path.resolve(TINY, "..", "..", "..", "models", "reward-edit-synthetic");
const SCENE = path.resolve(TINY, "..", "..", "..", "models", "heldout-v2", "shapes", "syn-0000-source.png");

/** Records every UNet / shallow-graph call's batch, without changing what runs. */
function spy(model: EditorModel) {
  const calls: Array<{ graph: "unet" | "shallow"; batch: number }> = [];
  const wrap = (s: EditorModel["unet"], graph: "unet" | "shallow") => {
    const real = s.run.bind(s);
    (s as { run: typeof real }).run = async (feeds: Record<string, HostTensor>) => {
      calls.push({ graph, batch: feeds.sample.dims[0] });
      return real(feeds);
    };
  };
  wrap(model.unet, "unet");
  if (model.unetShallow) wrap(model.unetShallow, "shallow");
  return {
    calls,
    restore() {
      delete (model.unet as { run?: unknown }).run;
      if (model.unetShallow) delete (model.unetShallow as { run?: unknown }).run;
    },
  };
}

describe("fewer UNet evaluations (issue 20; bundled editor, real ONNX sessions)", function () {
  this.timeout(60_000);
  let model: EditorModel;
  const image = readFileSync(SCENE);
  before(async () => {
    model = await loadModel(BUNDLED);
  });
  after(() => model.dispose());
  const base = (o: Partial<EditOptions> = {}): EditOptions => ({ image, instruction: "make the mug red", steps: 10, seed: 5, scheduler: "dpmpp-2m", workingSize: true, ...o });

  it("image guidance 1 runs two branches, and the result is the three-branch formula's", async () => {
    // the denoiser at one step against the formula on a batch-3 call of the same UNet
    const lat = model.manifest.latent_channels;
    const [h, w] = [32, 32];
    const P = lat * h * w;
    const imageLatent = Float32Array.from({ length: P }, (_, k) => Math.sin(k));
    const dim = model.unet.inputs.find((i) => i.name === "encoder_hidden_states")!.shape[2] as number;
    const text = Float32Array.from({ length: 77 * dim }, (_, k) => Math.cos(k) * 0.1);
    const empty = Float32Array.from({ length: 77 * dim }, (_, k) => Math.sin(k * 0.3) * 0.1);
    const feedback = new Float32Array(dim).fill(0.01);
    const rewards = { scoresInput: "reward_scores", scores: [5, 5, 5] as [number, number, number], feedbackInput: "feedback_embeds", feedback };
    const mk = (image: number) =>
      new InstructPix2PixDenoiser({ unet: model.unet, latentShape: { channels: lat, height: h, width: w }, imageLatent, textEmbedding: text, emptyEmbedding: empty, embeddingDims: [77, dim], scales: { text: 3, image }, rewards });
    const x = Float32Array.from({ length: P }, (_, k) => Math.cos(k * 0.7));
    const two = mk(1);
    const eps2 = Float32Array.from(await two.predict(x, 500, 4));
    expect(two.last.branches).to.equal(2);
    // the same three branches by hand: eps_u + sT (eps_f - eps_i) + 1 * (eps_i - eps_u)
    const three = mk(1.0000001);
    await three.predict(x, 500, 4);
    expect(three.last.branches).to.equal(3);
    const feeds: Record<string, HostTensor> = {
      sample: { type: "float32", data: new Float32Array(3 * 2 * P), dims: [3, 2 * lat, h, w] },
      timestep: { type: "float32", data: new Float32Array([500, 500, 500]), dims: [3] },
      encoder_hidden_states: { type: "float32", data: new Float32Array(3 * 77 * dim), dims: [3, 77, dim] },
      reward_scores: { type: "float32", data: new Float32Array(9).fill(5), dims: [3, 3] },
      feedback_embeds: { type: "float32", data: new Float32Array(3 * dim).fill(0.01), dims: [3, dim] },
    };
    const s = feeds.sample.data as Float32Array;
    for (let b = 0; b < 3; b++) s.set(x, 2 * b * P);
    s.set(imageLatent, P);
    s.set(imageLatent, 3 * P);
    const e = feeds.encoder_hidden_states.data as Float32Array;
    e.set(text, 0);
    e.set(empty, 77 * dim);
    e.set(empty, 2 * 77 * dim);
    const out = (await model.unet.run(feeds)).out_sample.data;
    let worst = 0;
    for (let k = 0; k < P; k++) {
      const want = out[2 * P + k] + 3 * (out[k] - out[P + k]) + (out[P + k] - out[2 * P + k]);
      worst = Math.max(worst, Math.abs(want - eps2[k]));
    }
    expect(worst).to.be.below(1e-4);
  });

  it("a guidance interval runs every branch only at the steps whose sigma lies inside it", async () => {
    const interval: [number, number] = [1, 15];
    const s = createScheduler("dpmpp-2m", parseSchedulerConfig(model.schedulerConfig));
    s.setTimesteps(10);
    const inside = Array.from({ length: 10 }, (_, i) => s.noiseLevel(i)).filter((sigma) => sigma > 1 && sigma <= 15).length;
    expect(inside).to.be.within(1, 9);
    const sp = spy(model);
    let r;
    try {
      r = await edit(model, base({ guidanceInterval: interval }));
    } finally {
      sp.restore();
    }
    expect(sp.calls.map((c) => c.batch)).to.deep.equal([...Array(inside).fill(3), ...Array(10 - inside).fill(1)]);
    expect(r.timings.unetEvaluations).to.equal(3 * inside + (10 - inside));
    expect(r.parameters.guidanceInterval).to.deep.equal(interval);
  });

  it("adaptive guidance stops the extra branches for good once they agree", async () => {
    const sp = spy(model);
    try {
      // any agreement passes a threshold this low: three branches once, then one
      const r = await edit(model, base({ adaptiveGuidance: 1e-6 }));
      expect(sp.calls.map((c) => c.batch)).to.deep.equal([3, ...Array(9).fill(1)]);
      expect(r.timings.unetEvaluations).to.equal(12);
      sp.calls.length = 0;
      // a threshold of 1 is never passed by two different predictions
      const all = await edit(model, base({ adaptiveGuidance: 1 }));
      expect(all.timings.unetEvaluations).to.equal(30);
    } finally {
      sp.restore();
    }
  });

  it("DeepCache: the whole UNet every n-th step, the shallow graph between, with a matching batch", async () => {
    const sp = spy(model);
    let r;
    try {
      r = await edit(model, base({ cacheInterval: 3, imageGuidance: 1 }));
    } finally {
      sp.restore();
    }
    expect(sp.calls.map((c) => c.graph)).to.deep.equal(["unet", "shallow", "shallow", "unet", "shallow", "shallow", "unet", "shallow", "shallow", "unet"]);
    expect(sp.calls.every((c) => c.batch === 2)).to.equal(true);
    expect(r.timings).to.include({ unetEvaluations: 8, shallowEvaluations: 12 });
  });

  it("cached features serve a step with fewer branches; a step with more runs the whole UNet", async () => {
    // DPM++ 10 steps on this schedule: sigma 14.6, 8.30, 5.09, 3.32, 2.28, 1.62, ... so (2, 10] guides
    // steps 1-4 only: step 1 needs three branches where step 0 cached one (whole UNet), and step 5
    // needs one where step 4 cached three (the cache's first branch serves it)
    const s = createScheduler("dpmpp-2m", parseSchedulerConfig(model.schedulerConfig));
    s.setTimesteps(10);
    const inside = Array.from({ length: 10 }, (_, i) => s.noiseLevel(i) > 2 && s.noiseLevel(i) <= 10);
    expect(inside).to.deep.equal([false, true, true, true, true, false, false, false, false, false]);
    const sp = spy(model);
    try {
      await edit(model, base({ cacheInterval: 2, guidanceInterval: [2, 10] }));
    } finally {
      sp.restore();
    }
    expect(sp.calls.map((c) => `${c.graph}${c.batch}`)).to.deep.equal([
      "unet1", "unet3", "unet3", "shallow3", "unet3", "shallow1", "unet1", "shallow1", "unet1", "shallow1",
    ]);
  });

  it("the outer graph on the deep features of the same input is the whole UNet, bit for bit", async () => {
    const dim = model.unet.inputs.find((i) => i.name === "encoder_hidden_states")!.shape[2] as number;
    const feeds: Record<string, HostTensor> = {
      sample: { type: "float32", data: Float32Array.from({ length: 2 * 8 * 32 * 32 }, (_, k) => Math.sin(k * 0.01)), dims: [2, 8, 32, 32] },
      timestep: { type: "float32", data: new Float32Array([700, 700]), dims: [2] },
      encoder_hidden_states: { type: "float32", data: Float32Array.from({ length: 2 * 77 * dim }, (_, k) => Math.cos(k) * 0.1), dims: [2, 77, dim] },
      reward_scores: { type: "float32", data: new Float32Array(6).fill(4), dims: [2, 3] },
      feedback_embeds: { type: "float32", data: new Float32Array(2 * dim).fill(0.02), dims: [2, dim] },
    };
    const full = await model.unet.run(feeds);
    const shallowFeeds: Record<string, HostTensor> = { deep_features: { type: "float32", data: full.deep_features.data, dims: full.deep_features.dims } };
    for (const i of model.unetShallow!.inputs) if (i.name in feeds) shallowFeeds[i.name] = feeds[i.name];
    const out = (await model.unetShallow!.run(shallowFeeds)).out_sample.data;
    expect(Array.from(out)).to.deep.equal(Array.from(full.out_sample.data));
  });

  it("cache interval 1 is the plain edit, byte for byte", async () => {
    const a = await edit(model, base());
    const b = await edit(model, base({ cacheInterval: 1 }));
    expect(Buffer.compare(a.image, b.image)).to.equal(0);
    expect(b.timings.shallowEvaluations).to.equal(0);
  });

  it("bad fast-path options are refused, each naming its field", async () => {
    const field = async (o: Partial<EditOptions>) => {
      const err = await edit(model, base(o)).catch((e) => e);
      expect(err).to.be.instanceOf(EditInputError);
      return (err as EditInputError).field;
    };
    expect(await field({ guidanceInterval: [5, 1] })).to.equal("guidance_interval");
    expect(await field({ guidanceInterval: [-1, 1] })).to.equal("guidance_interval");
    expect(await field({ adaptiveGuidance: 0 })).to.equal("adaptive_guidance");
    expect(await field({ adaptiveGuidance: 1.5 })).to.equal("adaptive_guidance");
    expect(await field({ cacheInterval: 0 })).to.equal("cache_interval");
    expect(await field({ cacheInterval: 2.5 })).to.equal("cache_interval");
    expect(await field({ scheduler: "euler-a", karrasSigmas: true })).to.equal("karras_sigmas");
  });

  it("a folder without a shallow graph refuses cache_interval with a message that says so", async () => {
    const { copyFolder } = await import("../helpers.js");
    const { rmSync, readFileSync: rf, writeFileSync } = await import("node:fs");
    const dir = copyFolder(TINY_NO_REWARDS);
    rmSync(path.join(dir, "unet_shallow"), { recursive: true });
    const m = JSON.parse(rf(path.join(dir, "reward-edit.json"), "utf8"));
    delete m.deep_cache;
    writeFileSync(path.join(dir, "reward-edit.json"), JSON.stringify(m));
    const old = await loadModel(dir);
    try {
      expect(old.unetShallow).to.equal(undefined);
      const err = await edit(old, base({ cacheInterval: 3 })).catch((e) => e);
      expect(err).to.be.instanceOf(EditInputError);
      expect((err as EditInputError).message).to.match(/shallow UNet graph.*convert it again/);
    } finally {
      await old.dispose();
    }
  });
});
