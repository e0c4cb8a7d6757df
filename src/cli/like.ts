/** `edit --like RESULT`: the flags a result was made with, under the flags given on the command line. */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { type RecordedParameters } from "../provenance/index.js";
import { LikeError, recordedParameters } from "../provenance/like.js";
import { CliError } from "./errors.js";

/** Commander's option keys set from the recorded values (the explicit flags keep theirs). */
function recordedFlags(p: RecordedParameters): Record<string, string | boolean | undefined> {
  return {
    instruction: p.instruction,
    rewards: p.rewards_applied && p.rewards ? p.rewards.join(",") : undefined,
    steps: String(p.steps),
    textGuidance: String(p.text_guidance),
    imageGuidance: String(p.image_guidance),
    seed: String(p.seed),
    scheduler: p.scheduler,
    karras: p.karras_sigmas || undefined,
    guidanceInterval: p.guidance_interval?.join(","),
    adaptiveGuidance: p.adaptive_guidance === null ? undefined : String(p.adaptive_guidance),
    cacheInterval: String(p.cache_interval),
    feedback: p.feedback ?? undefined,
    workingSize: p.working_size || undefined,
    detail: p.detail,
    // an auto mask records the mode it ran in, but --mask-mode goes with --mask-in only
    maskMode: p.mask_sha256 ? (p.mask_mode ?? undefined) : undefined,
    autoMask: p.auto_mask ? true : undefined,
    background: p.background,
    backgroundColour: p.background_colour,
  };
}

export async function applyLike(file: string, o: Record<string, unknown>, cmd: Command): Promise<RecordedParameters> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new CliError(`cannot read --like ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let p: RecordedParameters;
  try {
    p = await recordedParameters(bytes, "--like");
  } catch (err) {
    if (err instanceof LikeError) throw new CliError(`${err.message.replace(/^--like: /, `--like ${file}: `)}`);
    throw err;
  }
  const explicit = (key: string) => cmd.getOptionValueSource(key) === "cli";
  // a preset given now replaces the recorded numbers it would set
  const presetKeys = new Set(["rewards", "steps", "textGuidance", "imageGuidance", "scheduler", "karras", "guidanceInterval", "adaptiveGuidance", "cacheInterval"]);
  for (const [key, value] of Object.entries(recordedFlags(p))) {
    if (value === undefined || explicit(key) || (explicit("preset") && presetKeys.has(key))) continue;
    o[key] = value;
  }
  if (p.instruction_withheld && !o.instruction) {
    throw new CliError(`--like ${file} does not record its instruction (REWARD_EDIT_PROVENANCE_PARAMETERS=off where it was made): give --instruction`);
  }
  return p;
}
