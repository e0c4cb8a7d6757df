/** What this server offers: the presets, the loaded model, and the model's example images. */
import path from "node:path";
import express from "express";
import type { Preset } from "../../presets/index.js";
import { AppError } from "../errors.js";
import type { JobQueue } from "../queue/types.js";

export function catalogRouter(d: { queue: JobQueue; presets: Record<string, Preset> }): express.Router {
  const { queue, presets } = d;
  const r = express.Router();
  r.get("/presets", (_req, res) => {
    res.json({ presets: Object.values(presets) });
  });
  r.get("/models", (_req, res) => {
    const m = queue.model;
    res.json({
      models: m
        ? [{ name: m.name, dir: path.basename(m.dir), takes_rewards: m.takesRewards, provider: m.provider, domain: m.manifest.domain ?? null, manifest: m.manifest }]
        : [],
    });
  });
  // the model's one-click example images: only files its manifest lists, so no path reaches outside
  r.get("/models/examples/:file", (req, res, next) => {
    const m = queue.model;
    const image = `examples/${req.params.file}`;
    if (!m?.manifest.domain?.examples.some((e) => e.image === image)) return next(new AppError(404, "not_found", "no such example", "file"));
    res.sendFile(path.join(path.resolve(m.dir), image));
  });
  return r;
}
