/** POST /v1/scores: an edit scored on following, preserving and quality (judge or local scorer). */
import express from "express";
import { type JudgeScorer, LocalScorer } from "../../../reward/index.js";
import type { ServerConfig } from "../../config/server.js";
import { AppError } from "../errors.js";
import { type Upload, uploadedFiles } from "../upload.js";
import { checkImage, checkMask, parseForm, scoreSchema } from "../validation.js";
import { route } from "./route.js";

export function scoresRouter(d: { config: ServerConfig; judge: JudgeScorer | null; upload: Upload }): express.Router {
  const { config, upload } = d;
  const r = express.Router();
  r.post("/", upload(["source", "edited", "mask"]), route(async (req, res) => {
    const form = parseForm(scoreSchema, req.body);
    const source = await checkImage(uploadedFiles(req).source?.[0], "source", config.maxPixels);
    const edited = await checkImage(uploadedFiles(req).edited?.[0], "edited", config.maxPixels);
    const backend = form.backend ?? (d.judge ? "judge" : "local");
    if (backend === "judge" && !d.judge) throw new AppError(400, "invalid_field", "no judge is configured on this server", "backend");
    const s = backend === "judge" ? d.judge! : new LocalScorer();
    const mask = await checkMask(uploadedFiles(req).mask?.[0], "luminance", config.maxPixels);
    res.json(await s.score({ source, edited, instruction: form.instruction, mask }));
  }));

  return r;
}
