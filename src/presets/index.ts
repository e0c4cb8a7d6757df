/** Named reward presets: one data file (presets.json) shared by the CLI, the server and the page. */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { DECODERS, SCHEDULER_NAMES, VAE_TILING_MODES } from "../../editor/index.js";

const Reward = z.number().min(0).max(5);
export const PresetSchema = z.strictObject({
  description: z.string().min(1),
  rewards: z.tuple([Reward, Reward, Reward]),
  steps: z.number().int().positive().optional(),
  text_guidance: z.number().positive().optional(),
  image_guidance: z.number().positive().optional(),
  scheduler: z.enum(SCHEDULER_NAMES).optional(),
  karras_sigmas: z.boolean().optional(),
  /** Sigma interval (lo, hi] in which the guidance branches run. */
  guidance_interval: z.tuple([z.number().min(0), z.number().positive()]).refine(([lo, hi]) => lo < hi, "lo must be below hi").optional(),
  adaptive_guidance: z.number().gt(0).max(1).optional(),
  cache_interval: z.number().int().min(1).max(50).optional(),
  /** Tiled VAE encode and decode: auto (above a 512 px working size), on or off. */
  vae_tiling: z.enum(VAE_TILING_MODES).optional(),
  /** Long side of the working size (the model's resolution when absent). */
  resolution: z.number().int().min(64).max(2048).optional(),
  /** full: the folder's VAE decoder; tiny: its TAESD decoder (preview_decoder). */
  decoder: z.enum(DECODERS).optional(),
  /** Confine the edit to where the instruction acts (the editor's relevance map; an uploaded mask wins). */
  auto_mask: z.boolean().optional(),
});
export type Preset = z.infer<typeof PresetSchema> & { name: string };

const file = new URL("../../../src/presets/presets.json", import.meta.url);

/** Presets from presets.json, or from another file of the same shape (a Kubernetes ConfigMap). */
export function loadPresets(path: string | URL = file): Record<string, Preset> {
  const raw = z.record(z.string(), PresetSchema).parse(JSON.parse(readFileSync(path, "utf8")));
  return Object.fromEntries(Object.entries(raw).map(([name, p]) => [name, { name, ...p }]));
}

export class UnknownPresetError extends Error {
  constructor(name: string, known: string[]) {
    super(`unknown preset "${name}"; known: ${known.join(", ")}`);
  }
}

export function getPreset(presets: Record<string, Preset>, name: string): Preset {
  // own entries only: "constructor" or "__proto__" must not find Object's properties
  const p = Object.hasOwn(presets, name) ? presets[name] : undefined;
  if (!p) throw new UnknownPresetError(name, Object.keys(presets));
  return p;
}
