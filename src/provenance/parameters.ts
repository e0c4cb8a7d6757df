/**
 * How a result was made, as recorded in it (C2PA assertion and XMP) and read back by `inspect`
 * and `--like`: snake_case like the HTTP API, every value the pipeline actually used.
 */
import { createHash } from "node:crypto";
import type { EditResult, OutputFormat, Rewards } from "../../editor/index.js";

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
  /** sha256 of the edit mask as the pipeline took it (normalised PNG); null without one. */
  mask_sha256: string | null;
  working_size: boolean;
  working_width: number;
  working_height: number;
  format: OutputFormat;
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
    mask_sha256: f.maskSha256 ?? null,
    working_size: f.workingSize ?? false,
    working_width: p.workingWidth,
    working_height: p.workingHeight,
    format: f.format,
    model: f.model,
    source_sha256: sha256(f.source),
    ...(f.refine ? { refine: f.refine } : {}),
  };
}
