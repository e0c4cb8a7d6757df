/**
 * How a result was made, as recorded in it (C2PA assertion and XMP) and read back by `inspect`
 * and `--like`: snake_case like the HTTP API, every value the pipeline actually used.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { BACKGROUNDS, type Background, DETAIL_MODES, type EditResult, MASK_MODES, OUTPUT_FORMATS, type OutputFormat, type Rewards, SCHEDULER_NAMES } from "../../editor/index.js";
import { MAX_FEEDBACK_LENGTH, MAX_INSTRUCTION_LENGTH, PARAM_RANGES, parseSigmaInterval } from "../edit-params.js";

export const PARAMETERS_LABEL = "org.reward-edit.parameters";

export interface RecordedParameters {
  /** Absent when REWARD_EDIT_PROVENANCE_PARAMETERS=off. */
  instruction?: string;
  instruction_withheld?: true;
  rewards: Rewards | null;
  rewards_applied: boolean;
  preset: string | null;
  feedback?: string | null;
  steps: number;
  text_guidance: number;
  image_guidance: number;
  seed: number;
  scheduler: string;
  karras_sigmas: boolean;
  guidance_interval: [number, number] | null;
  adaptive_guidance: number | null;
  cache_interval: number;
  detail: string;
  mask_mode: string | null;
  /** Present when the edit asked for an auto mask (relevance.ts); mask_mode is then the mode it ran in. */
  auto_mask?: { applied: boolean; reason: string; coverage: number };
  /** sha256 of the edit mask as the pipeline took it (normalised PNG); null without one. */
  mask_sha256: string | null;
  working_size: boolean;
  working_width: number;
  working_height: number;
  format: OutputFormat;
  /** What became of a transparent source's alpha (issue 41); absent in results made before it. */
  background?: Background;
  background_colour?: string;
  model: { name: string; digest: string | null };
  /** sha256 of the photo that was edited (the C2PA parent ingredient is identified by it too). */
  source_sha256: string;
  /** Set on a round of a refinement: its input was the previous round's result when from = "last". */
  refine?: { round: number; from: "source" | "last" };
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** What the output paths know about an edit, turned into the recorded form. */
export interface EditFacts {
  parameters: EditResult["parameters"];
  preset?: string | null;
  maskSha256?: string | null;
  workingSize?: boolean;
  format: OutputFormat;
  model: { name: string; digest: string | null };
  source: Uint8Array;
  refine?: { round: number; from: "source" | "last" };
}

export function recordParameters(f: EditFacts, withInstruction: boolean): RecordedParameters {
  const p = f.parameters;
  return {
    ...(withInstruction ? { instruction: p.instruction, feedback: p.feedback } : { instruction_withheld: true as const }),
    rewards: p.rewards,
    rewards_applied: p.rewardsApplied,
    preset: f.preset ?? null,
    steps: p.steps,
    text_guidance: p.textGuidance,
    image_guidance: p.imageGuidance,
    seed: p.seed,
    scheduler: p.scheduler,
    karras_sigmas: p.karrasSigmas,
    guidance_interval: p.guidanceInterval,
    adaptive_guidance: p.adaptiveGuidance,
    cache_interval: p.cacheInterval,
    detail: p.detail,
    mask_mode: p.maskMode,
    ...(p.autoMask ? { auto_mask: p.autoMask } : {}),
    mask_sha256: f.maskSha256 ?? null,
    working_size: f.workingSize ?? false,
    working_width: p.workingWidth,
    working_height: p.workingHeight,
    format: f.format,
    ...(p.background ? { background: p.background, background_colour: p.backgroundColour } : {}),
    model: f.model,
    source_sha256: sha256(f.source),
    ...(f.refine ? { refine: f.refine } : {}),
  };
}

/*
 * Reading parameters back. A result's parameters are whatever its file says: the XMP copy is
 * unsigned (anyone can write it), and even a signed manifest may come from someone else's
 * certificate. So they are checked like a request before `--like`, the like upload, `inspect`
 * or /v1/scores use them: the same ranges (edit-params.ts), the same enumerations, bounded size.
 */

/** Far above what a result records (about 1 KB), far below what could hurt to parse. */
export const MAX_PARAMETERS_BYTES = 16_384;
/** The recorded form nests three levels deep (model, refine, arrays); anything deeper is not ours. */
const MAX_PARAMETERS_DEPTH = 8;

/** Why embedded parameters were not taken: the field and what is wrong with it. */
export interface ParametersProblem {
  field: string;
  message: string;
}

/**
 * The depth of a JSON text's deepest nesting, counted without parsing (a 200,000-deep array
 * costs one pass and no stack); stops counting once past `limit`.
 */
function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** The embedded JSON text parsed, refused cheaply when too large or too deep to be ours. */
export function parseParametersJson(text: string): { value: unknown } | { problem: ParametersProblem } {
  if (text.length > MAX_PARAMETERS_BYTES) return { problem: { field: "parameters", message: `${text.length} characters of JSON; at most ${MAX_PARAMETERS_BYTES} are read` } };
  if (jsonDepthExceeds(text, MAX_PARAMETERS_DEPTH)) return { problem: { field: "parameters", message: `JSON nested deeper than ${MAX_PARAMETERS_DEPTH} levels` } };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { problem: { field: "parameters", message: "not valid JSON" } };
  }
}

const ranged = (r: { min: number; max: number; integer: boolean }) => (r.integer ? z.number().int().min(r.min).max(r.max) : z.number().min(r.min).max(r.max));
const level = ranged(PARAM_RANGES.reward);
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "must be a sha256 in hex");
const interval = z.tuple([z.number(), z.number()]).refine((v) => parseSigmaInterval(`${v[0]},${v[1]}`) !== null, "must be two sigmas [lo, hi] with 0 <= lo < hi");
const size = z.number().int().min(1).max(65_536);

/** RecordedParameters as a schema: unknown keys (a newer version's) are dropped, known ones checked. */
export const recordedParametersSchema = z.object({
  instruction: z.string().trim().min(1).max(MAX_INSTRUCTION_LENGTH, `at most ${MAX_INSTRUCTION_LENGTH} characters`).optional(),
  instruction_withheld: z.literal(true).optional(),
  rewards: z.tuple([level, level, level]).nullable(),
  rewards_applied: z.boolean(),
  preset: z.string().min(1).max(64).nullable(),
  feedback: z.string().max(MAX_FEEDBACK_LENGTH, `at most ${MAX_FEEDBACK_LENGTH} characters`).nullable().optional(),
  steps: ranged(PARAM_RANGES.steps),
  text_guidance: ranged(PARAM_RANGES.text_guidance),
  image_guidance: ranged(PARAM_RANGES.image_guidance),
  seed: ranged(PARAM_RANGES.seed),
  scheduler: z.enum(SCHEDULER_NAMES),
  karras_sigmas: z.boolean(),
  guidance_interval: interval.nullable(),
  adaptive_guidance: ranged(PARAM_RANGES.adaptive_guidance).nullable(),
  cache_interval: ranged(PARAM_RANGES.cache_interval),
  detail: z.enum(DETAIL_MODES),
  mask_mode: z.enum(MASK_MODES).nullable(),
  auto_mask: z.object({ applied: z.boolean(), reason: z.enum(["local", "global", "painted"]), coverage: z.number().min(0).max(1) }).optional(),
  mask_sha256: hex64.nullable(),
  working_size: z.boolean(),
  working_width: size,
  working_height: size,
  format: z.enum(OUTPUT_FORMATS),
  background: z.enum(BACKGROUNDS).optional(),
  background_colour: z.string().regex(/^#[0-9a-fA-F]{6}$/, "must be #rrggbb").optional(),
  model: z.object({ name: z.string().min(1).max(200), digest: z.string().max(200).nullable() }),
  source_sha256: hex64,
  refine: z.object({ round: z.number().int().min(1).max(1000), from: z.enum(["source", "last"]) }).optional(),
});

/** Embedded parameters (already parsed) checked; the problem names the first bad field. */
export function checkRecordedParameters(value: unknown): { parameters: RecordedParameters } | { problem: ParametersProblem } {
  const r = recordedParametersSchema.safeParse(value);
  if (r.success) return { parameters: r.data as RecordedParameters };
  const issue = r.error.issues[0];
  return { problem: { field: issue.path.length ? issue.path.map(String).join(".") : "parameters", message: issue.message } };
}
