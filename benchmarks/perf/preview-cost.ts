/**
 * What a live preview costs against a sampling step (docs/progress.md):
 *   node dist/benchmarks/perf/preview-cost.js [MODEL_DIR]
 * The preview of a step is the x0 estimate (one pass over the latent), the linear latent->RGB map
 * and a PNG encoding; it is timed on the bundled model's 32x32 latent (a 64 px edit) and on a
 * 64x64x4 latent, the size of a 512 px Stable Diffusion edit, whose step is timed in
 * docs/performance.md (no SD-size model ships here).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type LatentEstimate, edit, latentRgb, loadModel, previewMapFor, previewPng } from "../../editor/index.js";
import { predictOriginal } from "../../editor/schedulers/base.js";
import { BUNDLED_MODEL } from "../../src/paths.js";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** x0 + map + PNG of a latent of this size, timed over `n` rounds (ms each, median). */
async function previewOf(size: number, n: number, map: NonNullable<ReturnType<typeof previewMapFor>>) {
  const plane = 4 * size * size;
  const eps = Float32Array.from({ length: plane }, () => Math.random() * 2 - 1);
  const x = Float32Array.from({ length: plane }, () => Math.random() * 2 - 1);
  const x0 = new Float32Array(plane);
  const e: LatentEstimate = { step: 1, steps: 1, x0, channels: 4, height: size, width: size, content: { left: 0, top: 0, width: size, height: size } };
  const times = { x0: [] as number[], map: [] as number[], png: [] as number[], bytes: 0 };
  for (let r = 0; r < n; r++) {
    const t0 = performance.now();
    for (let k = 0; k < plane; k++) x0[k] = predictOriginal("epsilon", eps[k], x[k] * 1.5, 1.1);
    const t1 = performance.now();
    latentRgb(e, map);
    const t2 = performance.now();
    const { png } = await previewPng(e, map);
    const t3 = performance.now();
    times.x0.push(t1 - t0);
    times.map.push(t2 - t1);
    // previewPng maps again: its PNG share is the rest
    times.png.push(t3 - t2 - (t2 - t1));
    times.bytes = png.length;
  }
  return { x0_ms: median(times.x0), map_ms: median(times.map), png_ms: median(times.png), total_ms: median(times.x0) + 2 * median(times.map) + median(times.png), png_bytes: times.bytes };
}

const dir = process.argv[2] ?? BUNDLED_MODEL;
const model = await loadModel(dir);
const map = previewMapFor(model.manifest)!;
const image = await readFile(path.join(dir, "examples", "lemon-on-wood.png")).catch(() => readFile(path.join(BUNDLED_MODEL, "examples", "lemon-on-wood.png")));
const run = async (withPreview: boolean) => {
  const stepMs: number[] = [];
  let last = 0;
  const pending: Promise<unknown>[] = [];
  const t = performance.now();
  await edit(model, {
    image,
    instruction: "make the background blue",
    seed: 1,
    steps: 20,
    onStep: () => {
      const now = performance.now();
      if (last) stepMs.push(now - last);
      last = now;
    },
    onEstimate: withPreview ? (e) => void pending.push(previewPng(e, map)) : undefined,
  });
  await Promise.all(pending);
  return { step_ms: median(stepMs), edit_ms: performance.now() - t };
};
await run(false); // warm-up
const plain: number[] = [];
const previewed: number[] = [];
for (let r = 0; r < 5; r++) {
  plain.push((await run(false)).step_ms);
  previewed.push((await run(true)).step_ms);
}
const small = await previewOf(32, 200, map);
const large = await previewOf(64, 200, map);
console.log(JSON.stringify({
  model: model.manifest.name,
  map: map.source,
  step_ms_64px: median(plain),
  step_ms_64px_with_previews: median(previewed),
  preview_32x32_latent: small,
  preview_share_of_64px_step: small.total_ms / median(plain),
  preview_64x64_latent: large,
  sd15_step_ms_512px: 18_700,
  preview_share_of_512px_step: large.total_ms / 18_700,
}, null, 2));
await model.dispose();
