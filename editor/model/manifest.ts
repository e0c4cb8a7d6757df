/**
 * reward-edit.json: what a diffusers ONNX folder does not say on its own. A real export without
 * one is still loadable: it gets Stable Diffusion 1.x's values and no reward inputs.
 */
import { z } from "zod";
import { SCHEDULER_NAMES } from "../schedulers/config.js";

export const RewardInputsSchema = z.strictObject({
  scores_input: z.string().min(1),
  feedback_input: z.string().min(1).optional(),
  perspectives: z.tuple([z.literal("following"), z.literal("preserving"), z.literal("quality")]).default([
    "following",
    "preserving",
    "quality",
  ]),
  range: z.tuple([z.number(), z.number()]).default([0, 5]),
  default_feedback: z.string().default("None; None; None"),
});

/**
 * DeepCache (Ma et al. 2023): the whole UNet also outputs its deep features (the input of the last
 * up block); `shallow` is a graph of the outer blocks alone that takes them back, so steps between
 * full ones skip the deep blocks.
 */
export const DeepCacheSchema = z.strictObject({
  shallow: z.string().regex(/^[\w-]+\/[\w.-]+\.onnx$/),
  /** The UNet's extra output and the shallow graph's extra input. */
  features: z.string().min(1),
  /** Where the UNet is split, in words. */
  split: z.string().default(""),
});

/**
 * What the model is for, so the page and /v1/models can tell a user before they try a photo on a
 * model that has only seen synthetic scenes.
 */
export const DomainSchema = z.strictObject({
  /** "synthetic": trained only on generated scenes; "photos": on real photographs. */
  kind: z.enum(["synthetic", "photos"]),
  description: z.string().min(1),
  /** Side length, in pixels, the model edits at. */
  working_size: z.number().int().positive(),
  /** The instruction kinds it knows, each with an example phrasing. */
  instructions: z.array(z.string().min(1)).default([]),
  /** One-click examples: images inside the model folder (relative paths) with an instruction. */
  examples: z
    .array(z.strictObject({ image: z.string().regex(/^examples\/[\w.-]+\.(png|jpe?g|webp)$/), instruction: z.string().min(1) }))
    .default([]),
});

/**
 * Live previews (editor/pipeline/preview.ts): a linear map from the scaled latent's channels to
 * RGB in [-1, 1], fitted by least squares from this folder's VAE decoder (models/train/preview_fit.py).
 */
export const PreviewSchema = z.strictObject({
  /** One [r, g, b] row per latent channel. */
  factors: z.array(z.tuple([z.number(), z.number(), z.number()])).min(1),
  bias: z.tuple([z.number(), z.number(), z.number()]).default([0, 0, 0]),
  /** How the map was obtained and how well it fits, for the record. */
  fit: z.record(z.string(), z.unknown()).optional(),
});

export const ManifestSchema = z.object({
  format: z.string().default("reward-edit/1"),
  name: z.string().default("unnamed"),
  description: z.string().default(""),
  licence: z.string().default("unknown"),
  /** Long side of the images the model was trained on. */
  resolution: z.number().int().positive().default(512),
  /** Image sides are rounded to a multiple of this. */
  size_multiple: z.number().int().positive().default(64),
  latent_channels: z.number().int().positive().default(4),
  /** Image pixels per latent pixel along a side (8 for the SD VAE). */
  latent_downscale: z.number().int().positive().default(8),
  scaling_factor: z.number().positive().default(0.18215),
  defaults: z
    .object({
      steps: z.number().int().positive().default(30),
      text_guidance: z.number().default(7.5),
      image_guidance: z.number().default(1.5),
      scheduler: z.enum(SCHEDULER_NAMES).default("euler-a"),
    })
    .prefault({}),
  rewards: RewardInputsSchema.optional(),
  deep_cache: DeepCacheSchema.optional(),
  domain: DomainSchema.optional(),
  preview: PreviewSchema.optional(),
  /** TAESD's decoder (models/convert/taesd.py), for `decoder: "tiny"`: scaled latents in, [-1, 1] RGB out. */
  preview_decoder: z.string().regex(/^[\w-]+\/[\w.-]+\.onnx$/).optional(),
  training: z.record(z.string(), z.unknown()).optional(),
  /** Where the weights came from (the converter's record; `hub`: repository, subfolder, commit), so /v1/models can say what is served. */
  source: z.record(z.string(), z.unknown()).optional(),
});

export type Manifest = z.infer<typeof ManifestSchema>;
export type RewardInputs = z.infer<typeof RewardInputsSchema>;
export type Domain = z.infer<typeof DomainSchema>;
export type DeepCache = z.infer<typeof DeepCacheSchema>;
export type Preview = z.infer<typeof PreviewSchema>;

export function parseManifest(raw: unknown): Manifest {
  const r = ManifestSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`reward-edit.json: ${issues}`);
  }
  return r.data;
}
