/** Turns what a user asked for (explicit numbers and/or a preset) into pipeline options; shared by CLI and server. */
import type { EditOptions, Rewards } from "../editor/index.js";
import { type Preset, getPreset } from "./presets/index.js";

/** How an edit is sampled: the scheduler and the ways of spending fewer UNet evaluations (issue 20). */
export type SamplingOptions = Pick<EditOptions, "scheduler" | "karrasSigmas" | "guidanceInterval" | "adaptiveGuidance" | "cacheInterval">;

export interface RequestedParams extends SamplingOptions {
  rewards?: Rewards;
  preset?: string;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
}

export class ParamConflictError extends Error {
  readonly field = "preset";
}

export type ResolvedParams = Pick<EditOptions, "rewards" | "steps" | "textGuidance" | "imageGuidance"> & {
  preset: string | null;
  sampling: SamplingOptions;
};

/** Explicit values win over the preset's; rewards and preset together are ambiguous and refused. */
export function resolveParams(req: RequestedParams, presets: Record<string, Preset>): ResolvedParams {
  if (req.rewards && req.preset) throw new ParamConflictError("give either rewards or preset, not both");
  const p = req.preset ? getPreset(presets, req.preset) : undefined;
  const sampling: SamplingOptions = {
    scheduler: req.scheduler ?? p?.scheduler,
    karrasSigmas: req.karrasSigmas ?? p?.karras_sigmas,
    guidanceInterval: req.guidanceInterval ?? p?.guidance_interval,
    adaptiveGuidance: req.adaptiveGuidance ?? p?.adaptive_guidance,
    cacheInterval: req.cacheInterval ?? p?.cache_interval,
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
