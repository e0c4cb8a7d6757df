import { expect } from "chai";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { type Rewards, edit, loadModel } from "../../editor/index.js";
import { ROOT } from "../helpers.js";

/** Model folders with a stored PyTorch reference (models/train/reference.py parity). */
const PARITY = path.join(ROOT, "test", "fixtures", "parity");
const MODEL_DIRS: Record<string, string> = {
  "tiny-editor": path.join(ROOT, "test", "fixtures", "tiny-editor"),
  "reward-edit-synthetic": path.join(ROOT, "models", "reward-edit-synthetic"),
  "reward-edit-synthetic-baseline": path.join(ROOT, "models", "reward-edit-synthetic-baseline"),
};

const f32 = (dir: string, name: string) => {
  const b = readFileSync(path.join(dir, `${name}.f32`));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

const maxAbsDiff = (a: Float32Array, b: Float32Array) => {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe("parity with the PyTorch reference", function () {
  this.timeout(120_000);
  for (const name of readdirSync(PARITY)) {
    const ref = path.join(PARITY, name);
    const dir = MODEL_DIRS[name];
    if (!dir || !existsSync(dir)) continue;
    const meta = JSON.parse(readFileSync(path.join(ref, "reference.json"), "utf8"));

    it(`${name}: one UNet call matches PyTorch`, async () => {
      const model = await loadModel(dir);
      try {
        const feeds: Record<string, { type: "float32"; data: Float32Array; dims: number[] }> = {};
        for (const input of model.unet.inputNames) feeds[input] = { type: "float32", data: f32(ref, input), dims: meta.shapes[input] };
        const out = await model.unet.run(feeds);
        const diff = maxAbsDiff(out.out_sample.data, f32(ref, "out_sample"));
        console.log(`      ${name} UNet max |ONNX - PyTorch| = ${diff.toExponential(2)}`);
        expect(diff).to.be.below(1e-4);
      } finally {
        await model.dispose();
      }
    });

    it(`${name}: a whole seeded edit matches PyTorch`, async () => {
      const model = await loadModel(dir);
      try {
        const r = await edit(model, {
          image: readFileSync(path.join(ROOT, meta.image)),
          instruction: meta.instruction,
          seed: meta.seed,
          steps: meta.steps,
          textGuidance: meta.text_guidance,
          imageGuidance: meta.image_guidance,
          rewards: meta.rewards as Rewards,
          scheduler: meta.scheduler,
          keepDecoded: true,
        });
        const diff = maxAbsDiff(r.decoded!.data, f32(ref, "edit"));
        console.log(`      ${name} edit max |TS - PyTorch| = ${diff.toExponential(2)} (image range [-1, 1])`);
        expect(diff).to.be.below(2e-3);
      } finally {
        await model.dispose();
      }
    });
  }
});
