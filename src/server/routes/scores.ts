/** POST /v1/scores: an edit scored on following, preserving and quality (judge or local scorer). */
import express from "express";
import { type JudgeScorer, LocalScorer } from "../../../reward/index.js";
import type { ServerConfig } from "../../config/server.js";
import { readProvenance } from "../../provenance/reader.js";
import { AppError } from "../errors.js";
import { type Upload, uploadedFiles } from "../upload.js";
import { checkImage, checkMask, parseForm, scoreSchema } from "../validation.js";
import { route } from "./route.js";

export function scoresRouter(d: { config: ServerConfig; judge: JudgeScorer | null; upload: Upload; trustAnchors?: string }): express.Router {
  const { config, upload } = d;
  const r = express.Router();
  r.post("/", upload(["source", "edited", "mask"]), route(async (req, res) => {
    const form = parseForm(scoreSchema, req.body);
    const source = await checkImage(uploadedFiles(req).source?.[0], "source", config.maxPixels);
    const edited = await checkImage(uploadedFiles(req).edited?.[0], "edited", config.maxPixels);
    const backend = form.backend ?? (d.judge ? "judge" : "local");
    if (backend === "judge" && !d.judge) throw new AppError(400, "invalid_field", "no judge is configured on this server", "backend");
    if (form.protocol && backend !== "judge") throw new AppError(400, "invalid_field", "protocol chooses how the judge scores; the local scorer has none", "protocol");
    const mask = await checkMask(uploadedFiles(req).mask?.[0], "luminance", config.maxPixels);
    const input = { source, edited, instruction: form.instruction, mask };
    const scoring = backend === "judge" ? d.judge!.score(input, { protocol: form.protocol }) : new LocalScorer().score(input);
    const [scores, provenance] = await Promise.all([scoring, readProvenance(edited, d.trustAnchors)]);
    res.json({ ...scores, provenance });
  }));

  return r;
}
