/** The edit settings `edit` and `batch` share: one definition of the flags, one parser. */
import { resolveModelDir } from "../pull/resolve.js";
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { BACKGROUNDS, type Background, DETAIL_MODES, type DetailMode, MASK_MODES, type MaskMode, DECODERS, type Decoder, SCHEDULER_NAMES, type SchedulerName, VAE_TILING_MODES, type VaeTiling, declaresDeepCache, parseHexColour } from "../../editor/index.js";
import { type EditMask, MaskInputError, decodeMask } from "../../raster/mask.js";
import { MAX_FEEDBACK_LENGTH, PARAM_RANGES, type RequestedParams, type ResolvedParams, resolveParams } from "../edit-params.js";
import { textTooLong } from "../limits.js";
import { defaultModelDir } from "../paths.js";
import { loadPresets } from "../presets/index.js";
import { CliError, parseInterval, parseNumber, parseRewards } from "./errors.js";

export function addEditFlags(cmd: Command): Command {
  return cmd
    .option("--model <dir>", "model folder or hub:REPO[/SUBFOLDER][@REV] (default: the bundled editor)")
    .option("--rewards <F,P,Q>", "desired following, preserving, quality levels, each 0..5")
    .option("--preset <name>", "named preset: best, faithful, bold, draft, fast (GET /v1/presets describes them)")
    .option("--steps <n>", "denoising steps")
    .option("--text-guidance <x>", "text guidance scale")
    .option("--image-guidance <y>", "image guidance scale")
    .option("--seed <s>", "random seed (same seed + inputs = same image)")
    .option("--scheduler <name>", `one of ${SCHEDULER_NAMES.join(", ")}`)
    .option("--karras", "Karras sigma spacing (dpmpp-2m, unipc)")
    .option("--guidance-interval <lo,hi>", "run the guidance branches only for noise levels sigma in (lo, hi]; the conditioned branch alone outside")
    .option("--adaptive-guidance <cos>", "stop the guidance branches once the full and image-only predictions agree to this cosine (0..1)")
    .option("--cache-interval <n>", "DeepCache: the whole UNet every n-th step, its outer blocks on cached deep features in between")
    .option("--resolution <px>", "long side the model edits at, e.g. 768 or 1024 (default: the model's; not --working-size, which returns that size)")
    .option("--decoder <name>", "full: the model's VAE decoder; tiny: its TAESD decoder (preview_decoder; about 1 % of the work, quality unmeasured)")
    .option("--vae-tiling <mode>", `${VAE_TILING_MODES.join(", ")}: the VAE on overlapping tiles (less memory); auto above a 512 px working size`)
    .option("--feedback <text>", "reward feedback text (default: the model's, \"None; None; None\")")
    .option("--working-size", "return the image at the model's working size")
    .option("--detail <mode>", "keep: compose at full resolution, keeping the source's pixels and fine detail; off: resize the whole result", "keep")
    .option("--mask-in <file>", "where the edit may happen: an image, white = may change, black = must not, grey = partly (any size; scaled to the photo)")
    .option("--mask-mode <mode>", `with --mask-in: ${MASK_MODES.join(" or ")} (blend confines the edit during sampling too; paste only pastes)`)
    .option("--background <mode>", "a transparent source (cutout): auto keeps its alpha in PNG/WebP, transparent keeps it (not with JPEG), opaque flattens onto --background-colour")
    .option("--background-colour <#rrggbb>", "what a transparent source is flattened onto when the result is opaque (default #ffffff)")
    .option("--auto-mask", "keep everything the instruction does not name: a mask from the editor's own relevance map (none for a global edit; --mask-in wins)");
}

export interface EditFlags {
  modelDir: string;
  /** What the flags asked for, before presets: a batch row's own rewards or preset replace these. */
  requested: RequestedParams;
  deepCache: boolean;
  params: ResolvedParams;
  seed?: number;
  feedback?: string;
  workingSize: boolean;
  detail: DetailMode;
  editMask?: EditMask;
  maskMode?: MaskMode;
}

export async function readMaskFile(file: string, flag = "--mask-in"): Promise<EditMask | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new CliError(`cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const m = await decodeMask(bytes);
    return m.full ? undefined : m;
  } catch (err) {
    if (err instanceof MaskInputError) throw new CliError(`${flag} ${file}: ${err.message}`);
    throw err;
  }
}

/** The flags as commander hands them over (strings, booleans for the switches). */
export interface EditFlagValues {
  model?: string;
  rewards?: string;
  preset?: string;
  steps?: string;
  textGuidance?: string;
  imageGuidance?: string;
  seed?: string;
  scheduler?: string;
  karras?: boolean;
  guidanceInterval?: string;
  adaptiveGuidance?: string;
  cacheInterval?: string;
  vaeTiling?: string;
  resolution?: string;
  decoder?: string;
  feedback?: string;
  workingSize?: boolean;
  detail: string;
  maskIn?: string;
  maskMode?: string;
  background?: string;
  backgroundColour?: string;
  autoMask?: boolean;
}

export async function parseEditFlags(o: EditFlagValues): Promise<EditFlags> {
  if (!DETAIL_MODES.includes(o.detail as DetailMode)) throw new CliError(`--detail must be one of ${DETAIL_MODES.join(", ")}, got "${o.detail}"`);
  if (o.scheduler && !SCHEDULER_NAMES.includes(o.scheduler as SchedulerName)) {
    throw new CliError(`--scheduler must be one of ${SCHEDULER_NAMES.join(", ")}, got "${o.scheduler}"`);
  }
  if (o.decoder !== undefined && !DECODERS.includes(o.decoder as Decoder)) throw new CliError(`--decoder must be one of ${DECODERS.join(", ")}, got "${o.decoder}"`);
  if (o.vaeTiling !== undefined && !VAE_TILING_MODES.includes(o.vaeTiling as VaeTiling)) throw new CliError(`--vae-tiling must be one of ${VAE_TILING_MODES.join(", ")}, got "${o.vaeTiling}"`);
  if (o.maskMode !== undefined && !MASK_MODES.includes(o.maskMode as MaskMode)) throw new CliError(`--mask-mode must be one of ${MASK_MODES.join(", ")}, got "${o.maskMode}"`);
  if (o.maskMode !== undefined && o.maskIn === undefined) throw new CliError("--mask-mode needs --mask-in");
  if (o.background !== undefined && !BACKGROUNDS.includes(o.background as Background)) throw new CliError(`--background must be one of ${BACKGROUNDS.join(", ")}, got "${o.background}"`);
  if (o.backgroundColour !== undefined && !parseHexColour(o.backgroundColour)) throw new CliError(`--background-colour must be a colour #rrggbb, got "${o.backgroundColour}"`);
  const feedbackTooLong = o.feedback === undefined ? null : textTooLong("--feedback", o.feedback, MAX_FEEDBACK_LENGTH);
  if (feedbackTooLong) throw new CliError(feedbackTooLong);
  const modelDir = await resolveModelDir(o.model ?? defaultModelDir(), (line) => process.stderr.write(`${line}\n`));
  const deepCache = await declaresDeepCache(modelDir);
  let params: ResolvedParams;
  let requested: RequestedParams;
  try {
    requested = {
        rewards: o.rewards === undefined ? undefined : parseRewards(o.rewards),
        preset: o.preset,
        steps: o.steps === undefined ? undefined : parseNumber("--steps", o.steps, PARAM_RANGES.steps),
        textGuidance: o.textGuidance === undefined ? undefined : parseNumber("--text-guidance", o.textGuidance, PARAM_RANGES.text_guidance),
        imageGuidance: o.imageGuidance === undefined ? undefined : parseNumber("--image-guidance", o.imageGuidance, PARAM_RANGES.image_guidance),
        scheduler: o.scheduler as SchedulerName | undefined,
        karrasSigmas: o.karras ? true : undefined,
        guidanceInterval: o.guidanceInterval === undefined ? undefined : parseInterval("--guidance-interval", o.guidanceInterval),
        adaptiveGuidance: o.adaptiveGuidance === undefined ? undefined : parseNumber("--adaptive-guidance", o.adaptiveGuidance, PARAM_RANGES.adaptive_guidance),
        cacheInterval: o.cacheInterval === undefined ? undefined : parseNumber("--cache-interval", o.cacheInterval, PARAM_RANGES.cache_interval),
        vaeTiling: o.vaeTiling as VaeTiling | undefined,
        decoder: o.decoder as Decoder | undefined,
        resolution: o.resolution === undefined ? undefined : parseNumber("--resolution", o.resolution, PARAM_RANGES.resolution),
        background: o.background as Background | undefined,
        backgroundColour: o.backgroundColour,
        autoMask: o.autoMask ? true : undefined,
    };
    params = resolveParams(requested, loadPresets(), { deepCache });
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError((err as Error).message);
  }
  return {
    modelDir,
    requested,
    deepCache,
    params,
    seed: o.seed === undefined ? undefined : parseNumber("--seed", o.seed, PARAM_RANGES.seed),
    feedback: o.feedback,
    workingSize: Boolean(o.workingSize),
    detail: o.detail as DetailMode,
    editMask: o.maskIn === undefined ? undefined : await readMaskFile(o.maskIn),
    maskMode: o.maskMode as MaskMode | undefined,
  };
}
