/** Marking a worker's results: the facts every edit of a job shares, then one signature per image. */
import type { EditResult, EditorModel } from "../../../editor/index.js";
import { decodeMask } from "../../../raster/mask.js";
import { type ProvenanceSetup, createMarker, maskDigest, modelDigest } from "../../provenance/index.js";
import type { EditJobRequest } from "./protocol.js";

export function workerMarker(setup: ProvenanceSetup, model: EditorModel) {
  const marker = createMarker(setup);
  return async (r: EditJobRequest, res: EditResult, refine?: { round: number; from: "source" | "last" }): Promise<Uint8Array> => {
    if (!marker.enabled) return new Uint8Array(res.image);
    const mask = r.editMask ? await decodeMask(Buffer.from(r.editMask)) : undefined;
    const marked = await marker.markResult(res.image, res.format, {
      parameters: res.parameters,
      preset: r.preset,
      maskSha256: maskDigest(mask),
      format: res.format,
      model: { name: model.manifest.name, digest: await modelDigest(model.dir) },
      source: r.image,
      refine,
    });
    return new Uint8Array(marked);
  };
}
