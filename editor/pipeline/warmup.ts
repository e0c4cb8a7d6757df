/**
 * A loaded model is not yet one that can edit: a graph may still fail on its first run (a shape
 * the export did not allow, an operator the provider lacks) and ONNX Runtime does part of its
 * set-up on that run. A server reports itself ready only after this: one edit through every graph
 * the folder has, on the thinnest image the working size allows (the model's resolution by one
 * size multiple), so it costs a fraction of a real edit.
 */
import sharp from "sharp";
import type { EditorModel } from "../model/folder.js";
import { edit } from "./pipeline.js";

export async function warmUp(model: EditorModel): Promise<{ ms: number }> {
  const t0 = performance.now();
  const m = model.manifest;
  const image = await sharp({ create: { width: m.resolution, height: m.size_multiple, channels: 3, background: { r: 128, g: 120, b: 110 } } })
    .png()
    .toBuffer();
  await edit(model, {
    image,
    instruction: "warm up",
    // two steps, so a DeepCache folder's shallow graph runs too
    steps: 2,
    seed: 0,
    cacheInterval: model.unetShallow ? 2 : 1,
    detail: "off",
    workingSize: true,
    // nothing a user edits: kept out of the encode cache
    encodeCache: null,
  });
  return { ms: performance.now() - t0 };
}
