/**
 * Request validation: one zod schema per form, unknown fields refused, every failure an
 * AppError naming its field. Image formats are decided by content (sharp), not by name.
 */
import sharp, { type Metadata } from "sharp";
import { z } from "zod";
import { BACKGROUNDS, DETAIL_MODES, MASK_MODES, OUTPUT_FORMATS, SCHEDULER_NAMES, VAE_TILING_MODES, DECODERS } from "../../editor/index.js";
import { type MaskConvention, MaskInputError, decodeMask, encodeMask } from "../../raster/mask.js";
import { SCORING_PROTOCOLS } from "../../reward/judge/config.js";
import type { ServerConfig } from "../config/server.js";
import { PARAM_RANGES, parseSigmaInterval } from "../edit-params.js";
import { MAX_SCORE_INSTRUCTION_LENGTH } from "../limits.js";
import { AppError } from "./errors.js";
import { decodableFormats } from "./formats.js";

const rewardsField = z
  .string()
  .transform((s, ctx) => {
    const t = s.trim();
    let parts: unknown[];
    try {
      parts = t.startsWith("[") ? (JSON.parse(t) as unknown[]) : t.split(",");
    } catch {
      parts = [];
    }
    // a JSON array takes numbers only: true, null or [5] are not levels
    const nums = Array.isArray(parts)
      ? parts.map((p) => (typeof p === "number" ? p : typeof p === "string" && p.trim() !== "" ? Number(p) : Number.NaN))
      : [];
    if (nums.length !== 3 || nums.some((n) => !Number.isFinite(n))) {
      ctx.addIssue({ code: "custom", message: "rewards must be three numbers: following,preserving,quality" });
      return z.NEVER;
    }
    if (nums.some((n) => n < PARAM_RANGES.reward.min || n > PARAM_RANGES.reward.max)) {
      ctx.addIssue({ code: "custom", message: `each reward must be in ${PARAM_RANGES.reward.min}..${PARAM_RANGES.reward.max}` });
      return z.NEVER;
    }
    return nums as [number, number, number];
  });

const num = (min: number, max: number, int = false) =>
  z
    .string()
    .trim()
    .min(1, "must not be empty")
    .transform(Number)
    .pipe(int ? z.number().int().min(min).max(max) : z.number().min(min).max(max));

/** A field with its range from the shared table (edit-params.ts). */
const ranged = (r: { min: number; max: number; integer: boolean }) => num(r.min, r.max, r.integer);

const intervalField = z.string().transform((s, ctx) => {
  const interval = parseSigmaInterval(s);
  if (!interval) {
    ctx.addIssue({ code: "custom", message: "guidance_interval must be two sigmas lo,hi with 0 <= lo < hi" });
    return z.NEVER;
  }
  return interval;
});

const booleanField = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");

export function editSchema(c: ServerConfig) {
  return z.strictObject({
    instruction: z.string().trim().min(1, "instruction is required").max(c.maxInstructionLength, `at most ${c.maxInstructionLength} characters`),
    rewards: rewardsField.optional(),
    preset: z.string().min(1).max(64).optional(),
    steps: num(PARAM_RANGES.steps.min, Math.min(c.maxSteps, PARAM_RANGES.steps.max), true).optional(),
    text_guidance: ranged(PARAM_RANGES.text_guidance).optional(),
    image_guidance: ranged(PARAM_RANGES.image_guidance).optional(),
    seed: ranged(PARAM_RANGES.seed).optional(),
    scheduler: z.enum(SCHEDULER_NAMES).optional(),
    karras_sigmas: booleanField.optional(),
    guidance_interval: intervalField.optional(),
    adaptive_guidance: ranged(PARAM_RANGES.adaptive_guidance).optional(),
    cache_interval: ranged(PARAM_RANGES.cache_interval).optional(),
    vae_tiling: z.enum(VAE_TILING_MODES).optional(),
    resolution: ranged(PARAM_RANGES.resolution).optional(),
    decoder: z.enum(DECODERS).optional(),
    output_format: z.enum(OUTPUT_FORMATS).default("png"),
    candidates: num(1, c.maxCandidates, true).default(1),
    refine_rounds: num(1, c.maxRefineRounds, true).default(1),
    response_format: z.enum(["image", "json"]).default("image"),
    detail: z.enum(DETAIL_MODES).default("keep"),
    mask_mode: z.enum(MASK_MODES).optional(),
    background: z.enum(BACKGROUNDS).optional(),
    background_colour: z.string().regex(/^#[0-9a-fA-F]{6}$/, "must be a colour #rrggbb").optional(),
    /** Confine the edit to where the instruction acts (the editor's relevance map); an uploaded mask wins. */
    auto_mask: booleanField.optional(),
  });
}
export type EditForm = z.infer<ReturnType<typeof editSchema>>;

export const scoreSchema = z.strictObject({
  instruction: z.string().trim().min(1, "instruction is required").max(MAX_SCORE_INSTRUCTION_LENGTH, `at most ${MAX_SCORE_INSTRUCTION_LENGTH} characters`),
  backend: z.enum(["judge", "local"]).optional(),
  protocol: z.enum(SCORING_PROTOCOLS).optional(),
});

export function parseForm<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue.code === "unrecognized_keys" ? issue.keys[0] : String(issue.path[0] ?? "body");
  const message = issue.code === "unrecognized_keys" ? `unknown field "${field}"` : `${field}: ${issue.message}`;
  throw new AppError(400, issue.code === "unrecognized_keys" ? "unknown_field" : "invalid_field", message, field);
}

/**
 * A like image's recorded settings (as form fields) checked by the request's own schema, so this
 * server's limits (REWARD_EDIT_MAX_STEPS, the instruction length) hold for them too. A failure
 * names the setting and says it came from the like image: the caller did not send it.
 */
export function checkLikeFields(c: ServerConfig, fields: Record<string, string>): void {
  const r = editSchema(c).partial().safeParse(fields);
  if (r.success) return;
  const issue = r.error.issues[0];
  const key = issue.code === "unrecognized_keys" ? issue.keys[0] : String(issue.path[0] ?? "parameters");
  throw new AppError(400, "invalid_field", `like: the like image's embedded ${key} is invalid: ${issue.message}`, "like");
}

/** Checks an uploaded image by its bytes: decodable, a format (and codec) this server decodes, within the pixel limit. */
export async function checkImage(file: Express.Multer.File | undefined, field: string, maxPixels: number): Promise<Buffer> {
  return (await checkImageSize(file, field, maxPixels)).image;
}

/** checkImage, also returning the decoded size in pixels and the upright (EXIF-rotated) size. */
export async function checkImageSize(
  file: Express.Multer.File | undefined,
  field: string,
  maxPixels: number,
): Promise<{ image: Buffer; pixels: number; width: number; height: number }> {
  if (!file) throw new AppError(400, "missing_field", `${field} file is required`, field);
  let meta: Metadata;
  try {
    meta = await sharp(file.buffer, { limitInputPixels: false }).metadata();
  } catch {
    throw new AppError(415, "unsupported_image", `${field} is not a decodable image`, field);
  }
  const can = await decodableFormats();
  const heifCodec = meta.format === "heif" ? String(meta.compression ?? "unknown") : null;
  if (!meta.format || !can.formats.includes(meta.format) || (heifCodec && !can.heifCodecs.includes(heifCodec))) {
    const why = heifCodec
      ? `${heifCodec === "hevc" ? "HEIC (HEVC)" : `HEIF (${heifCodec})`} cannot be decoded by this server's image library`
      : `format ${meta.format ?? "unknown"} is not accepted`;
    throw new AppError(415, "unsupported_image", `${field}: ${why}; send ${can.names.join(", ")}`, field);
  }
  const pixels = (meta.width ?? 0) * (meta.pageHeight ?? meta.height ?? 0);
  if (pixels > maxPixels) throw new AppError(413, "image_too_large", `${field} has ${pixels} pixels; the limit is ${maxPixels}`, field);
  const swap = (meta.orientation ?? 1) >= 5;
  return { image: file.buffer, pixels, width: (swap ? meta.height : meta.width) ?? 0, height: (swap ? meta.width : meta.height) ?? 0 };
}

/**
 * Checks an uploaded mask and normalises it to this project's convention (a greyscale PNG, white
 * = may change). Undefined when there is none, or when it lets every pixel change (the same as none).
 */
export async function checkMask(file: Express.Multer.File | undefined, convention: MaskConvention, maxPixels: number): Promise<Buffer | undefined> {
  if (!file) return undefined;
  if (file.size > 0) {
    try {
      const meta = await sharp(file.buffer, { limitInputPixels: false }).metadata();
      const pixels = (meta.width ?? 0) * (meta.height ?? 0);
      if (pixels > maxPixels) throw new AppError(413, "image_too_large", `mask has ${pixels} pixels; the limit is ${maxPixels}`, "mask");
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError(400, "invalid_field", "mask cannot be decoded: send a PNG, JPEG or WebP image", "mask");
    }
  }
  try {
    const mask = await decodeMask(file.buffer, convention);
    return mask.full ? undefined : encodeMask(mask);
  } catch (err) {
    if (err instanceof MaskInputError) throw new AppError(400, "invalid_field", err.message, "mask");
    throw err;
  }
}
