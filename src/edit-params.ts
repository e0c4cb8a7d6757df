/** Turns what a user asked for (explicit numbers and/or a preset) into pipeline options; shared by CLI and server. */
import type { EditOptions, Rewards } from "../editor/index.js";
import { type Preset, getPreset } from "./presets/index.js";

export { MAX_FEEDBACK_LENGTH, MAX_INSTRUCTION_LENGTH } from "./limits.js";

/**
 * The ranges of the numeric settings, one table for every way in: CLI flags, the HTTP form
 * (validation.ts; steps there is capped lower by REWARD_EDIT_MAX_STEPS) and the parameters a
 * result records, which `--like` and the `like` upload read back.
 */
export const PARAM_RANGES = {
  steps: { min: 1, max: 1000, integer: true },
  text_guidance: { min: 0, max: 30, integer: false },
  image_guidance: { min: 0, max: 30, integer: false },
  seed: { min: 0, max: 2 ** 32 - 1, integer: true },
  adaptive_guidance: { min: 0, max: 1, integer: false },
  cache_interval: { min: 1, max: 50, integer: true },
  resolution: { min: 64, max: 2048, integer: true },
  reward: { min: 0, max: 5, integer: false },
} as const;

/**
 * How an edit is sampled: the scheduler, the ways of spending fewer UNet evaluations (issue 20), the
 * auto mask that confines sampling to where the instruction acts, and what a transparent source's
 * result keeps (background; both issue 41), which travel the same way to every editor (CLI, jobs,
 * batch, refinement).
 */
export type SamplingOptions = Pick<
  EditOptions,
  "scheduler" | "karrasSigmas" | "guidanceInterval" | "adaptiveGuidance" | "cacheInterval" | "vaeTiling" | "resolution" | "decoder" | "background" | "backgroundColour"
> & {
  autoMask?: boolean;
};

export interface RequestedParams extends SamplingOptions {
  rewards?: Rewards;
  preset?: string;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
}

/** "lo,hi" as the CLI and the API take a guidance interval: two sigmas, 0 <= lo < hi; null when it is not one. */
export function parseSigmaInterval(text: string): [number, number] | null {
  const parts = text.split(",").map((p) => p.trim());
  const nums = parts.map(Number);
  if (parts.length !== 2 || parts.some((p) => p === "") || nums.some((n) => !Number.isFinite(n) || n < 0) || !(nums[0] < nums[1])) return null;
  return [nums[0], nums[1]];
}

export class ParamConflictError extends Error {
  readonly field = "preset";
}

export type ResolvedParams = Pick<EditOptions, "rewards" | "steps" | "textGuidance" | "imageGuidance"> & {
  preset: string | null;
  sampling: SamplingOptions;
};

/** What the serving model can do that a preset may ask for. */
export interface ModelAbilities {
  /** The folder has DeepCache's outer UNet graph (reward-edit.json deep_cache). */
  deepCache: boolean;
}

/**
 * Explicit values win over the preset's; rewards and preset together are ambiguous and refused.
 * A preset's cache_interval applies only to a model that can reuse deep features, so one preset
 * serves every model; an explicit cache_interval on such a model is refused by the pipeline.
 */
export function resolveParams(req: RequestedParams, presets: Record<string, Preset>, model: ModelAbilities = { deepCache: true }): ResolvedParams {
  if (req.rewards && req.preset) throw new ParamConflictError("give either rewards or preset, not both");
  const p = req.preset ? getPreset(presets, req.preset) : undefined;
  const sampling: SamplingOptions = {
    scheduler: req.scheduler ?? p?.scheduler,
    karrasSigmas: req.karrasSigmas ?? p?.karras_sigmas,
    guidanceInterval: req.guidanceInterval ?? p?.guidance_interval,
    adaptiveGuidance: req.adaptiveGuidance ?? p?.adaptive_guidance,
    cacheInterval: req.cacheInterval ?? (model.deepCache ? p?.cache_interval : undefined),
    vaeTiling: req.vaeTiling ?? p?.vae_tiling,
    resolution: req.resolution ?? p?.resolution,
    decoder: req.decoder ?? p?.decoder,
    background: req.background,
    backgroundColour: req.backgroundColour,
    autoMask: req.autoMask ?? p?.auto_mask,
  };
  return {
    preset: p?.name ?? null,
    rewards: req.rewards ?? p?.rewards,
    steps: req.steps ?? p?.steps,
    textGuidance: req.textGuidance ?? p?.text_guidance,
    imageGuidance: req.imageGuidance ?? p?.image_guidance,
    // only what was set, so a job message and a JSON echo carry no undefined keys
    sampling: Object.fromEntries(Object.entries(sampling).filter(([, v]) => v !== undefined)) as SamplingOptions,
  };
}
