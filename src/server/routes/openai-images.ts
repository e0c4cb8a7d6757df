/**
 * POST /v1/images/edits: the OpenAI images edit request and answer, so code and tools written
 * against OpenAI's API (the official clients among them) edit with this server unchanged. Reward
 * levels, presets and the project's other edit fields travel as extra body fields; errors have
 * OpenAI's shape, {"error": {message, type, param, code}}.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import sharp from "sharp";
import { z } from "zod";
import { OUTPUT_FORMATS } from "../../../editor/index.js";
import type { ServerConfig } from "../../config/server.js";
import type { Marker } from "../../provenance/index.js";
import type { editSubmission } from "../edit-submission.js";
import { AppError, type ErrorBody } from "../errors.js";
import { checkImageSize, checkMask, editSchema, parseForm } from "../validation.js";

/** OpenAI's own fields; `quality`, `background`, `input_fidelity`, `output_compression` and `partial_images` are accepted and have no effect here. */
const openAiFields = z.strictObject({
  prompt: z.string(),
  model: z.string().max(128).optional(),
  n: z.string().optional(),
  size: z.string().optional(),
  response_format: z.enum(["b64_json", "url"]).default("b64_json"),
  output_format: z.enum(OUTPUT_FORMATS).default("png"),
  user: z.string().max(256).optional(),
  quality: z.enum(["standard", "hd", "low", "medium", "high", "auto"]).optional(),
  background: z.enum(["opaque", "auto"], { message: 'background "transparent" is not supported: edits come back opaque' }).optional(),
  input_fidelity: z.enum(["high", "low"]).optional(),
  output_compression: z.string().optional(),
  partial_images: z.string().optional(),
  stream: z.enum(["false"], { message: "streaming is not supported; send stream=false or leave it out" }).optional(),
});

/** The project's fields that may ride along as extra body fields (instruction, n and the formats are OpenAI's). */
const EXTRA_FIELDS = ["rewards", "preset", "seed", "steps", "text_guidance", "image_guidance", "scheduler", "karras_sigmas", "guidance_interval", "adaptive_guidance", "cache_interval", "detail", "mask_mode"] as const;

/** Our field names back to OpenAI's, for `param`. */
const PARAM_NAMES: Record<string, string> = { instruction: "prompt", candidates: "n" };

function parseSize(size: string | undefined): { width: number; height: number } | null {
  if (size === undefined || size === "auto") return null;
  const m = /^(\d{2,4})x(\d{2,4})$/.exec(size);
  const width = Number(m?.[1]);
  const height = Number(m?.[2]);
  if (!m || width < 16 || height < 16 || width > 4096 || height > 4096) {
    throw new AppError(400, "invalid_value", 'size must be "auto" or WIDTHxHEIGHT, each side 16..4096', "size");
  }
  return { width, height };
}

export interface OpenAiImagesDeps {
  config: ServerConfig;
  submission: ReturnType<typeof editSubmission>;
  upload: (fields: string[]) => RequestHandler;
  marker: Marker;
}

export function openAiImagesRouter(d: OpenAiImagesDeps): express.Router {
  const { config, submission, upload, marker } = d;
  const router = express.Router();
  const files = (req: Request) => (req.files ?? {}) as Record<string, Express.Multer.File[]>;

  router.post("/edits", upload(["image", "image[]", "mask"]), (req: Request, res: Response, next: NextFunction) => {
    (async () => {
      const body = (req.body ?? {}) as Record<string, string>;
      const own = Object.fromEntries(Object.entries(body).filter(([k]) => !(EXTRA_FIELDS as readonly string[]).includes(k)));
      const extras = Object.fromEntries(Object.entries(body).filter(([k]) => (EXTRA_FIELDS as readonly string[]).includes(k)));
      const o = parseForm(openAiFields, own);
      const size = parseSize(o.size);
      if (size && o.response_format === "url") throw new AppError(400, "invalid_value", "a size other than auto needs response_format b64_json (a url serves the stored result at its own size)", "size");
      const form = parseForm(editSchema(config), { instruction: o.prompt, candidates: o.n ?? "1", output_format: o.output_format, ...extras });
      const images = [...(files(req).image ?? []), ...(files(req)["image[]"] ?? [])];
      if (images.length > 1) throw new AppError(400, "invalid_value", "one image per edit", "image");
      const { image, pixels, width, height } = await checkImageSize(images[0], "image", config.maxPixels);
      const mask = await checkMask(files(req).mask?.[0], "alpha", config.maxPixels);
      if (size && Math.abs(size.width / size.height - width / height) > 0.01 * (width / height)) {
        throw new AppError(400, "invalid_value", `size ${size.width}x${size.height} does not keep the image's shape (${width}x${height}); use "auto" or the same aspect ratio`, "size");
      }
      const submitted = await submission.submitForm(form, { image, pixels, mask }, { responseFormat: "image", owner: res.locals.owner ?? null });
      const job = await submission.awaitEdit(submitted, res);
      const out = job.output!;
      const base = `${req.protocol}://${req.get("host")}`;
      const data = await Promise.all(
        out.candidates.map(async (c, k) => {
          if (o.response_format === "url") return { url: `${base}/v1/jobs/${job.id}/result?candidate=${k}`, revised_prompt: null };
          let bytes: Buffer = Buffer.from(c.image);
          if (size && (size.width !== out.width || size.height !== out.height)) {
            const scaled = await sharp(bytes).resize(size.width, size.height, { fit: "fill" }).toFormat(o.output_format).toBuffer();
            bytes = await marker.markResized(bytes, scaled, o.output_format, size);
          }
          return { b64_json: bytes.toString("base64"), revised_prompt: null };
        }),
      );
      res.json({
        created: Math.floor(job.createdAt / 1000),
        data,
        output_format: o.output_format,
        size: size ? `${size.width}x${size.height}` : `${out.width}x${out.height}`,
      });
    })().catch(next);
  });
  return router;
}

const ERROR_TYPES: Record<number, string> = { 401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error" };

/** OpenAI's error shape, for every failure under /v1/images (the official clients read it into their APIError). */
export const openAiErrorBody: ErrorBody = (e) => {
  const type = e.status >= 500 ? "server_error" : (ERROR_TYPES[e.status] ?? "invalid_request_error");
  const param = e.field && e.field !== "body" ? (PARAM_NAMES[e.field] ?? e.field) : null;
  return { error: { message: e.message.replace(/^instruction:/, "prompt:").replace(/^candidates:/, "n:"), type, param, code: e.code } };
};
