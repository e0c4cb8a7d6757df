/**
 * `--like RESULT` and the `like` upload: a result's recorded parameters turned back into the edit
 * settings that made it, so the same source gives the same pixels. What the caller gives
 * explicitly wins (e.g. another seed for a variation).
 */
import type { RecordedParameters } from "./parameters.js";
import { readProvenance } from "./reader.js";

export class LikeError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

/**
 * The like image's parameters, checked (reader.ts). `field` is how the caller named the image
 * ("like", "--like"); a failure says the bad value came from that image, since the caller
 * never sent it.
 */
export async function recordedParameters(bytes: Uint8Array, field = "like"): Promise<RecordedParameters> {
  const report = await readProvenance(bytes);
  const bad = report.parameters_problem;
  if (bad) throw new LikeError(`${field}: the like image's embedded ${bad.field} is invalid: ${bad.message}`, field);
  const p = report.parameters;
  if (!p) throw new LikeError(`${field}: the image carries no reward-edit parameters (made elsewhere, with REWARD_EDIT_C2PA=off, or its metadata stripped)`, field);
  return p;
}

/** The recorded settings as the HTTP form spells them (strings, snake_case); only those the API takes. */
export function likeFormFields(p: RecordedParameters): Record<string, string> {
  const f: Record<string, string> = {
    steps: String(p.steps),
    text_guidance: String(p.text_guidance),
    image_guidance: String(p.image_guidance),
    seed: String(p.seed),
    scheduler: p.scheduler,
    karras_sigmas: String(p.karras_sigmas),
    cache_interval: String(p.cache_interval),
    detail: p.detail,
    output_format: p.format,
  };
  if (p.instruction !== undefined) f.instruction = p.instruction;
  if (p.rewards_applied && p.rewards) f.rewards = p.rewards.join(",");
  if (p.guidance_interval) f.guidance_interval = p.guidance_interval.join(",");
  if (p.adaptive_guidance !== null) f.adaptive_guidance = String(p.adaptive_guidance);
  if (p.mask_mode) f.mask_mode = p.mask_mode;
  if (p.background) f.background = p.background;
  if (p.background_colour) f.background_colour = p.background_colour;
  if (p.auto_mask) f.auto_mask = "true";
  return f;
}
