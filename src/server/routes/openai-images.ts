/**
 * POST /v1/images/edits: the OpenAI images edit request and answer, so code and tools written
 * against OpenAI's API (the official clients among them) edit with this server unchanged. Reward
 * levels, presets and the project's other edit fields travel as extra body fields; errors have
 * OpenAI's shape, {"error": {message, type, param, code}}.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import sharp from "sharp";
import { z } from "zod";
import { BACKGROUNDS, OUTPUT_FORMATS } from "../../../editor/index.js";
import type { ServerConfig } from "../../config/server.js";
import type { Marker } from "../../provenance/index.js";
import type { editSubmission } from "../edit-submission.js";
import { AppError, type ErrorBody, toAppError } from "../errors.js";
import type { JobQueue, JobView } from "../queue/types.js";
import type { ResponseBody } from "../responses.js";
import { checkImageSize, checkMask, editSchema, parseForm } from "../validation.js";

/**
 * OpenAI's own fields; `quality`, `input_fidelity` and `output_compression` are accepted and have
 * no effect here. `background` is OpenAI's: auto (default) and transparent keep a transparent
 * source's alpha, opaque flattens it (onto the extra field background_colour, default white);
 * transparent with output_format jpeg is a 400, as OpenAI's. `stream` with `partial_images`
 * streams the edit (streamEdit).
 */
export const openAiFields = z.strictObject({
  prompt: z.string(),
  model: z.string().max(128).optional(),
  n: z.string().optional(),
  size: z.string().optional(),
  response_format: z.enum(["b64_json", "url"]).default("b64_json"),
  output_format: z.enum(OUTPUT_FORMATS).default("png"),
  user: z.string().max(256).optional(),
  quality: z.enum(["standard", "hd", "low", "medium", "high", "auto"]).optional(),
  background: z.enum(BACKGROUNDS).optional(),
  input_fidelity: z.enum(["high", "low"]).optional(),
  output_compression: z.string().optional(),
  // plain digits only: Number() would also read "", "0x2" and "1e0"
  partial_images: z.string().regex(/^[0-3]$/, "must be an integer in 0..3, written as one decimal digit").optional(),
  stream: z.enum(["false", "true"], { message: 'stream must be "true" or "false"' }).optional(),
});

/** The project's fields that may ride along as extra body fields (instruction, n and the formats are OpenAI's). */
const EXTRA_FIELDS = ["rewards", "preset", "seed", "steps", "text_guidance", "image_guidance", "scheduler", "karras_sigmas", "guidance_interval", "adaptive_guidance", "cache_interval", "vae_tiling", "resolution", "decoder", "detail", "mask_mode", "auto_mask", "background_colour"] as const;

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
  /** For the live previews a streamed edit sends as partial images. */
  queue: JobQueue;
}

export function openAiImagesRouter(d: OpenAiImagesDeps): express.Router {
  const { config, submission, upload, marker, queue } = d;
  const router = express.Router();
  const files = (req: Request) => (req.files ?? {}) as Record<string, Express.Multer.File[]>;

  // a retry with the Idempotency-Key of an edit already made gets its answer again, a stream as the
  // stream it was (idempotency.ts)
  router.post("/edits", upload(["image", "image[]", "mask"]), submission.idempotency.guard("POST /v1/images/edits", "sync"), (req: Request, res: Response, next: NextFunction) => {
    (async () => {
      const body = (req.body ?? {}) as Record<string, string>;
      const own = Object.fromEntries(Object.entries(body).filter(([k]) => !(EXTRA_FIELDS as readonly string[]).includes(k)));
      const extras = Object.fromEntries(Object.entries(body).filter(([k]) => (EXTRA_FIELDS as readonly string[]).includes(k)));
      const o = parseForm(openAiFields, own);
      // OpenAI documents partial_images for streamed responses only; without stream=true it would be silently dropped
      if (o.partial_images !== undefined && o.stream !== "true") throw new AppError(400, "invalid_value", "partial_images applies to a streamed edit: send stream=true with it, or leave it out", "partial_images");
      const size = parseSize(o.size);
      if (size && o.response_format === "url") throw new AppError(400, "invalid_value", "a size other than auto needs response_format b64_json (a url serves the stored result at its own size)", "size");
      const form = parseForm(editSchema(config), { instruction: o.prompt, candidates: o.n ?? "1", output_format: o.output_format, ...(o.background ? { background: o.background } : {}), ...extras });
      const images = [...(files(req).image ?? []), ...(files(req)["image[]"] ?? [])];
      if (images.length > 1) throw new AppError(400, "invalid_value", "one image per edit", "image");
      const { image, pixels, width, height } = await checkImageSize(images[0], "image", config.maxPixels);
      const mask = await checkMask(files(req).mask?.[0], "alpha", config.maxPixels);
      if (size && Math.abs(size.width / size.height - width / height) > 0.01 * (width / height)) {
        throw new AppError(400, "invalid_value", `size ${size.width}x${size.height} does not keep the image's shape (${width}x${height}); use "auto" or the same aspect ratio`, "size");
      }
      const stream = o.stream === "true" ? streamOptions(o, form.candidates) : null;
      const submitted = await submission.submitForm(form, { image, pixels, mask }, { responseFormat: "image", owner: res.locals.owner ?? null });
      await submission.idempotency.submitted(res, submitted);
      if (stream) {
        await streamEdit({ res, queue, submission, marker, submitted, partials: stream.partials, format: o.output_format, size: size ?? { width, height }, resize: size !== null });
        return;
      }
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
        background: await backgroundOf(out.candidates[0].image),
        output_format: o.output_format,
        size: size ? `${size.width}x${size.height}` : `${out.width}x${out.height}`,
      } satisfies ResponseBody<"OpenAiImages">);
    })().catch(next);
  });
  return router;
}

/** OpenAI's answer field: whether the image came back with an alpha channel (a transparent source's). */
async function backgroundOf(image: Uint8Array): Promise<"transparent" | "opaque"> {
  return (await sharp(image).metadata()).hasAlpha ? "transparent" : "opaque";
}

/** stream=true: one image, as base64, with 0..3 partial images. */
function streamOptions(o: z.infer<typeof openAiFields>, candidates: number): { partials: number } {
  if (candidates !== 1) throw new AppError(400, "invalid_value", "a streamed edit makes one image: n must be 1", "n");
  if (o.response_format === "url") throw new AppError(400, "invalid_value", "a streamed edit sends its image as b64_json; response_format url does not stream", "response_format");
  return { partials: Number(o.partial_images ?? "0") };
}

/** The usage block OpenAI's completed event carries; an edit here is not counted in tokens. */
const NO_USAGE = { input_tokens: 0, input_tokens_details: { image_tokens: 0, text_tokens: 0 }, output_tokens: 0, total_tokens: 0 };

/**
 * The answer to stream=true, as OpenAI streams an edit: `image_edit.partial_image` events (the
 * live previews, docs/progress.md, spread evenly over the steps and scaled to the result's size),
 * then `image_edit.completed`. Nothing is written until the first event, so an edit that fails
 * before it still answers OpenAI's JSON error; one that fails after ends the stream with an
 * `error` event, which the official clients raise as an APIError. Like OpenAI, a quick edit may
 * send fewer partial images than asked for.
 */
async function streamEdit(d: {
  res: Response;
  queue: JobQueue;
  submission: ReturnType<typeof editSubmission>;
  marker: Marker;
  submitted: JobView;
  partials: number;
  format: (typeof OUTPUT_FORMATS)[number];
  size: { width: number; height: number };
  resize: boolean;
}): Promise<void> {
  const { res, format, size } = d;
  const created = Math.floor(d.submitted.createdAt / 1000);
  // partial images are previews, always opaque; the completed event says what the result is
  const common = { created_at: created, output_format: format, size: `${size.width}x${size.height}`, background: "opaque", quality: "auto" };
  const send = (type: string, data: Record<string, unknown>) => {
    if (res.writableEnded || res.destroyed) return;
    if (!res.headersSent) {
      res.status(200).set({ "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache, no-transform", "x-accel-buffering": "no" });
      res.flushHeaders();
    }
    res.write(`event: ${type}
data: ${JSON.stringify({ type, ...data })}

`);
  };
  let index = 0;
  let chain = Promise.resolve();
  const unwatch = d.queue.watch(d.submitted.id, (u) => {
    if (u.kind !== "progress" || !u.progress.preview || index >= d.partials) return;
    const p = u.progress;
    // partial k of n stands for the image k+1 n+1-ths of the way through the steps
    if (p.preview!.step < Math.ceil((p.steps * (index + 1)) / (d.partials + 1))) return;
    const k = index++;
    const png = Buffer.from(p.preview!.url.slice(p.preview!.url.indexOf(",") + 1), "base64");
    chain = chain
      .then(() => sharp(png).resize(size.width, size.height, { fit: "fill" }).toFormat(format).toBuffer())
      .then((img) => send("image_edit.partial_image", { b64_json: img.toString("base64"), partial_image_index: k, ...common }))
      .catch(() => {});
  });
  let job: JobView;
  try {
    job = await d.submission.awaitEdit(d.submitted, res);
  } catch (err) {
    unwatch();
    await chain;
    if (!res.headersSent) throw err;
    send("error", openAiErrorBody(toAppError(err)) as Record<string, unknown>);
    res.end();
    return;
  }
  unwatch();
  await chain;
  const out = job.output!;
  let bytes: Buffer = Buffer.from(out.candidates[0].image);
  if (d.resize && (size.width !== out.width || size.height !== out.height)) {
    const scaled = await sharp(bytes).resize(size.width, size.height, { fit: "fill" }).toFormat(format).toBuffer();
    bytes = await d.marker.markResized(bytes, scaled, format, size);
  }
  send("image_edit.completed", { b64_json: bytes.toString("base64"), ...common, background: await backgroundOf(bytes), size: `${d.resize ? size.width : out.width}x${d.resize ? size.height : out.height}`, usage: NO_USAGE });
  res.end();
}

const ERROR_TYPES: Record<number, string> = { 401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error" };

/** OpenAI's error shape, for every failure under /v1/images (the official clients read it into their APIError). */
export const openAiErrorBody: ErrorBody = (e) => {
  const type = e.status >= 500 ? "server_error" : (ERROR_TYPES[e.status] ?? "invalid_request_error");
  // an unknown field is named as the client spelt it: a field sent as "candidates" is not OpenAI's n
  const param = e.field && e.field !== "body" ? (e.code === "unknown_field" ? e.field : (PARAM_NAMES[e.field] ?? e.field)) : null;
  return { error: { message: e.message.replace(/^instruction:/, "prompt:").replace(/^candidates:/, "n:"), type, param, code: e.code } };
};
