/** Turns what a user asked for (explicit numbers and/or a preset) into pipeline options; shared by CLI and server. */
import type { EditOptions, Rewards } from "../editor/index.js";
import { type Preset, getPreset } from "./presets/index.js";

export interface RequestedParams {
  rewards?: Rewards;
  preset?: string;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
}

export class ParamConflictError extends Error {
  readonly field = "preset";
}

/** Explicit values win over the preset's; rewards and preset together are ambiguous and refused. */
export function resolveParams(
  req: RequestedParams,
  presets: Record<string, Preset>,
): Pick<EditOptions, "rewards" | "steps" | "textGuidance" | "imageGuidance"> & { preset: string | null } {
  if (req.rewards && req.preset) throw new ParamConflictError("give either rewards or preset, not both");
  const p = req.preset ? getPreset(presets, req.preset) : undefined;
  return {
    preset: p?.name ?? null,
    rewards: req.rewards ?? p?.rewards,
    steps: req.steps ?? p?.steps,
    textGuidance: req.textGuidance ?? p?.text_guidance,
    imageGuidance: req.imageGuidance ?? p?.image_guidance,
  };
}
