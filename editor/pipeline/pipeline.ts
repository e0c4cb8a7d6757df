/**
 * The InstructPix2Pix editing loop with Multi-Reward Conditioning (DESIGN.md 3-4).
 * `edit()` reads top to bottom as numbered stages, like diffusers' __call__.
 */
import type { EditorModel } from "../model/folder.js";
import type { HostTensor, Session } from "../model/session.js";
import { MULTISTEP_SCHEDULERS, type SchedulerName, createScheduler, parseSchedulerConfig } from "../schedulers/index.js";
import { Generator } from "../tensor/random.js";
import { DETAIL_MODES, type DetailMode, composeFullResolution, maskPng, regionRaster } from "./detail.js";
import { InstructPix2PixDenoiser } from "./guidance.js";
import { type OutputFormat, decodeSource, encodeImage, openImage, resizeRgb, resizeRgba, toRgb8 } from "./image.js";
import { BACKGROUNDS, type Background, DEFAULT_BACKGROUND_COLOUR, flattenRgba, keepsAlpha, parseHexColour, restoreAlpha } from "./alpha.js";
import type { LatentEstimate } from "./preview.js";
import { type EncodeCache, hashParts, modelEncodeCache, modelKey } from "./encode-cache.js";
import { DECODERS, type Decoder, tinyDecoder } from "./tiny-decoder.js";
import { DEFAULT_VAE_TILE, VAE_TILING_MODES, type VaeTiling, checkTileSize, decodeLatent, defaultVaeTiling, encodeLatent, tileFor } from "./vae-tiling.js";
import { predictOriginal } from "../schedulers/base.js";
import { LatentBlender, MASK_MODES, type MaskMode, featheredMask, latentMask, pasteInside } from "./mask.js";
import { type EditMask, MaskInputError, decodeMask } from "../../raster/mask.js";
import { type AutoMaskReport, type RelevanceRule, RELEVANCE_RULE, autoMask as relevanceMask, mapPng } from "./relevance.js";

export type Rewards = [following: number, preserving: number, quality: number];

export interface EditOptions {
  image: Buffer;
  instruction: string;
  /** Desired reward levels; default 5,5,5 (the paper's best setting). Ignored by models without reward inputs. */
  rewards?: Rewards;
  /** Feedback text for the reward branch; default the manifest's ("None; None; None"). */
  feedback?: string;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
  seed?: number;
  scheduler?: SchedulerName;
  /** Karras sigma spacing for the multistep samplers; default the scheduler config's use_karras_sigmas. */
  karrasSigmas?: boolean;
  /**
   * Run the guidance branches only while the noise level (sigma) is in (lo, hi]; outside, the
   * fully conditioned branch alone (Kynkaanniemi et al. 2024). Default: every step.
   */
  guidanceInterval?: [number, number] | null;
  /** Stop the guidance branches once cos(eps_full, eps_img) reaches this (Castillo et al.). Default: never. */
  adaptiveGuidance?: number | null;
  /**
   * DeepCache: run the whole UNet every N-th step and only its outer blocks, on the deep features
   * cached at the last whole step, in between. 1 (default) = every step whole. Needs a folder with
   * a shallow graph (reward-edit.json deep_cache).
   */
  cacheInterval?: number;
  format?: OutputFormat;
  /**
   * A source with transparency (alpha.ts): "auto" (default) keeps its alpha where the format can
   * carry it (PNG, WebP) and flattens a JPEG onto backgroundColour; "transparent" keeps it (and is
   * refused with JPEG); "opaque" flattens the result onto backgroundColour. An opaque source
   * stays opaque whatever this says.
   */
  background?: Background;
  /** "#rrggbb" a transparent source is flattened onto when the result is opaque; default white. */
  backgroundColour?: string;
  /** Return the image at the model's working size instead of the input's size. */
  workingSize?: boolean;
  /**
   * "keep" (default): compose the result at the input's full resolution, keeping the source's
   * pixels where nothing changed and its fine detail through smooth changes (detail.ts);
   * "off": the whole working-size result resized to the input's size.
   */
  detail?: DetailMode;
  /** Also return the blend mask of a "keep" composition as a PNG. */
  mask?: boolean;
  /**
   * Where the edit may happen: an image (white = may change, black = must not, grey = partly;
   * any size, scaled to the photo) or a decoded mask. Outside it the result is the source, exactly.
   */
  editMask?: Buffer | EditMask;
  /**
   * "blend" (default): the edit is confined during sampling too (blended latent diffusion) and
   * pasted with a feather; "paste": sampled as without a mask, then pasted.
   */
  maskMode?: MaskMode;
  /**
   * Confine the edit to where the instruction acts, read from the editor's own UNet (relevance.ts):
   * true: RELEVANCE_RULE; a rule: that one (measurement). A global edit gets no mask; an editMask wins.
   */
  autoMask?: boolean | RelevanceRule;
  /** Called with the relevance map's levels at latent resolution (measurement, display); only with autoMask. */
  onRelevance?: (r: RelevanceView) => void;
  onStep?: (p: StepProgress) => void;
  /**
   * Called after each step with the model's estimate of the clean latent (for previews,
   * preview.ts); computed only when set. The array is reused: copy it to keep it.
   */
  onEstimate?: (e: LatentEstimate) => void;
  signal?: AbortSignal;
  /** Also return the VAE decoder's float output (for parity checks against the PyTorch reference). */
  keepDecoded?: boolean;
  /**
   * Where the source latent and the text embeddings are kept between edits (encode-cache.ts);
   * default the model's own cache, null: none.
   */
  encodeCache?: EncodeCache | null;
  /**
   * Tiled VAE encode and decode (vae-tiling.ts): "auto" above a 512 px working size, "on"
   * whenever the image exceeds a tile, "off" never. Default: auto, or setDefaultVaeTiling's.
   */
  vaeTiling?: VaeTiling;
  /** Tile side in working pixels; default DEFAULT_VAE_TILE. */
  vaeTile?: number;
  /**
   * Long side of the working size, in pixels (a multiple of the manifest's size_multiple);
   * default the manifest's resolution. IP2P-family models edit well up to 768, SD2/SDXL-class
   * ones at 768-1024.
   */
  resolution?: number;
  /**
   * "full" (default): the folder's VAE decoder; "tiny": its TAESD decoder (reward-edit.json
   * preview_decoder), about 1 % of the work, its quality unmeasured without the real weights.
   */
  decoder?: Decoder;
}

export interface RelevanceView {
  /** Per level, |eps_full - eps_img| averaged over channels, [height * width] at latent resolution. */
  maps: Float32Array[];
  levels: number[];
  width: number;
  height: number;
  /** Working pixels per latent cell, and the photo's place in the padded working image. */
  down: number;
  content: { left: number; top: number; width: number; height: number };
}

export interface StepProgress {
  step: number;
  steps: number;
  timestep: number;
}

export interface EditResult {
  image: Buffer;
  format: OutputFormat;
  width: number;
  height: number;
  parameters: {
    instruction: string;
    rewards: Rewards | null;
    rewardsApplied: boolean;
    feedback: string | null;
    steps: number;
    textGuidance: number;
    imageGuidance: number;
    seed: number;
    scheduler: SchedulerName;
    karrasSigmas: boolean;
    guidanceInterval: [number, number] | null;
    adaptiveGuidance: number | null;
    cacheInterval: number;
    model: string;
    workingWidth: number;
    workingHeight: number;
    detail: DetailMode;
    /** Null without a mask (or with one that lets everything change). */
    maskMode: MaskMode | null;
    /** With autoMask: whether the relevance map confined the edit, why, and the share it covers. */
    autoMask?: AutoMaskReport | null;
    /** (always set by edit(); optional for results made elsewhere) */
    vaeTiling?: VaeTiling;
    /** The tile the VAE ran on, in working pixels; 0: the whole image at once. */
    vaeTile?: number;
    decoder?: Decoder;
    background?: Background;
    backgroundColour?: string;
  };
  /** Whether the image carries the source's alpha (a transparent source, PNG or WebP, background not opaque). */
  alpha?: boolean;
  /** Share of the input's pixels returned exactly as they were (null when detail is off). */
  keptFraction: number | null;
  /** The "keep" blend mask, white = edited (when asked for). */
  mask?: Buffer;
  /** With autoMask: the normalised relevance map over the photo at working size, grey PNG (white = where the instruction acts). */
  relevance?: Buffer;
  /**
   * unetCalls: UNet runs; unetBatch: the branches of a fully guided step; unetEvaluations: batch
   * entries over all runs (what the guidance shortcuts save).
   */
  timings: {
    totalMs: number;
    ortMs: number;
    unetCalls: number;
    unetBatch: number;
    unetEvaluations: number;
    /** Shallow-graph evaluations on cached deep features (cacheInterval > 1). */
    shallowEvaluations: number;
    composeMs: number;
    /** Whether the source latent and the text embeddings came from the encode cache. */
    cached: { latent: boolean; text: boolean };
  };
  decoded?: { data: Float32Array; dims: number[] };
}

export class EditInputError extends Error {
  override name = "EditInputError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_REWARDS: Rewards = [5, 5, 5];
export const MAX_SEED = 2 ** 32 - 1;
/** Largest working long side: SDXL-class models' 1024 px, with room. */
export const MAX_RESOLUTION = 2048;

function abortError(): Error {
  return new DOMException("edit cancelled", "AbortError");
}

/** Token ids as the text encoder declares them (int32 or int64), one row per prompt. */
function idsTensor(ids: number[], length: number, session: Session): HostTensor {
  const type = session.inputs.find((i) => i.name === "input_ids")?.type;
  const dims = [ids.length / length, length];
  return type === "int32"
    ? { type: "int32", data: Int32Array.from(ids), dims }
    : { type: "int64", data: BigInt64Array.from(ids, (x) => BigInt(x)), dims };
}

export async function edit(model: EditorModel, o: EditOptions): Promise<EditResult> {
  const t0 = performance.now();
  const sessions = [model.textEncoder, model.vaeEncoder, model.unet, model.vaeDecoder, ...(model.unetShallow ? [model.unetShallow] : [])];
  const ort0 = sessions.reduce((a, s) => a + s.runMs, 0);
  const m = model.manifest;

  // 1. check inputs
  const steps = o.steps ?? m.defaults.steps;
  const textGuidance = o.textGuidance ?? m.defaults.text_guidance;
  const imageGuidance = o.imageGuidance ?? m.defaults.image_guidance;
  const schedulerName = o.scheduler ?? m.defaults.scheduler;
  const rewards = o.rewards ?? DEFAULT_REWARDS;
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw new EditInputError("steps", "steps must be an integer in 1..1000");
  if (!Number.isFinite(textGuidance) || textGuidance < 0 || textGuidance > 30) throw new EditInputError("text_guidance", "text_guidance must be in 0..30");
  if (!Number.isFinite(imageGuidance) || imageGuidance < 0 || imageGuidance > 30) throw new EditInputError("image_guidance", "image_guidance must be in 0..30");
  const [lo, hi] = m.rewards?.range ?? [0, 5];
  if (rewards.length !== 3 || rewards.some((r) => !Number.isFinite(r) || r < lo || r > hi)) {
    throw new EditInputError("rewards", `rewards must be three numbers in ${lo}..${hi}`);
  }
  const seed = o.seed ?? Math.floor(Math.random() * MAX_SEED);
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new EditInputError("seed", `seed must be an integer in 0..${MAX_SEED}`);
  if (typeof o.instruction !== "string" || o.instruction.trim() === "") throw new EditInputError("instruction", "instruction is empty");
  const detail = o.detail ?? "keep";
  if (!DETAIL_MODES.includes(detail)) throw new EditInputError("detail", `detail must be one of ${DETAIL_MODES.join(", ")}`);
  const compose = detail === "keep" && !o.workingSize;
  const maskMode = o.maskMode ?? "blend";
  if (!MASK_MODES.includes(maskMode)) throw new EditInputError("mask_mode", `mask_mode must be one of ${MASK_MODES.join(", ")}`);
  let editMask: EditMask | null = null;
  if (o.editMask) {
    try {
      editMask = Buffer.isBuffer(o.editMask) ? await decodeMask(o.editMask) : o.editMask;
    } catch (err) {
      if (err instanceof MaskInputError) throw new EditInputError("mask", err.message);
      throw err;
    }
    if (editMask.full) editMask = null; // everything may change: the same as no mask
  }
  const autoRule = o.autoMask === true ? RELEVANCE_RULE : o.autoMask || null;
  const guidanceInterval = o.guidanceInterval ?? null;
  if (guidanceInterval && !(guidanceInterval.length === 2 && guidanceInterval.every((x) => Number.isFinite(x) && x >= 0) && guidanceInterval[0] < guidanceInterval[1])) {
    throw new EditInputError("guidance_interval", "guidance_interval must be two sigmas lo < hi, both >= 0");
  }
  const adaptiveGuidance = o.adaptiveGuidance ?? null;
  if (adaptiveGuidance !== null && !(Number.isFinite(adaptiveGuidance) && adaptiveGuidance > 0 && adaptiveGuidance <= 1)) {
    throw new EditInputError("adaptive_guidance", "adaptive_guidance must be a cosine threshold in (0, 1]");
  }
  const resolution = o.resolution ?? m.resolution;
  if (!Number.isInteger(resolution) || resolution < m.size_multiple || resolution > MAX_RESOLUTION || resolution % m.size_multiple !== 0) {
    throw new EditInputError("resolution", `resolution must be a multiple of ${m.size_multiple} in ${m.size_multiple}..${MAX_RESOLUTION}`);
  }
  const vaeTiling = o.vaeTiling ?? defaultVaeTiling();
  if (!VAE_TILING_MODES.includes(vaeTiling)) throw new EditInputError("vae_tiling", `vae_tiling must be one of ${VAE_TILING_MODES.join(", ")}`);
  const tileSize = o.vaeTile ?? DEFAULT_VAE_TILE;
  const tileProblem = checkTileSize(tileSize, m.latent_downscale);
  if (tileProblem) throw new EditInputError("vae_tile", tileProblem);
  const decoder = o.decoder ?? "full";
  if (!DECODERS.includes(decoder)) throw new EditInputError("decoder", `decoder must be one of ${DECODERS.join(", ")}`);
  const tiny = decoder === "tiny" ? tinyDecoder(model) : null;
  if (decoder === "tiny" && !tiny) throw new EditInputError("decoder", `decoder tiny needs a folder with a TAESD decoder (preview_decoder in reward-edit.json, models/convert/taesd.py); ${m.name} has none`);
  const cacheInterval = o.cacheInterval ?? 1;
  if (!Number.isInteger(cacheInterval) || cacheInterval < 1 || cacheInterval > 50) throw new EditInputError("cache_interval", "cache_interval must be an integer in 1..50");
  if (cacheInterval > 1 && !model.unetShallow) {
    throw new EditInputError("cache_interval", `cache_interval needs a model folder with a shallow UNet graph (deep_cache in reward-edit.json); ${m.name} has none: convert it again`);
  }
  const schedulerConfig = parseSchedulerConfig(model.schedulerConfig);
  if (o.karrasSigmas !== undefined) {
    if (o.karrasSigmas && !MULTISTEP_SCHEDULERS.includes(schedulerName)) {
      throw new EditInputError("karras_sigmas", `karras_sigmas needs a multistep scheduler (${MULTISTEP_SCHEDULERS.join(", ")})`);
    }
    schedulerConfig.use_karras_sigmas = o.karrasSigmas;
  }
  const karrasSigmas = MULTISTEP_SCHEDULERS.includes(schedulerName) && schedulerConfig.use_karras_sigmas;
  const scheduler = createScheduler(schedulerName, schedulerConfig);
  const format = o.format ?? "png";
  const background = o.background ?? "auto";
  if (!BACKGROUNDS.includes(background)) throw new EditInputError("background", `background must be one of ${BACKGROUNDS.join(", ")}`);
  if (background === "transparent" && format === "jpeg") throw new EditInputError("background", "background transparent needs output format png or webp: JPEG has no alpha channel");
  const backgroundColour = (o.backgroundColour ?? DEFAULT_BACKGROUND_COLOUR).toLowerCase();
  const colour = parseHexColour(backgroundColour);
  if (!colour) throw new EditInputError("background_colour", `background_colour must be #rrggbb, got "${o.backgroundColour}"`);
  const check = () => {
    if (o.signal?.aborted) throw abortError();
  };
  check();

  // 2. start decoding the image on sharp's threads; the text encoder then runs on this one
  //    meanwhile. A bad image fails here (header) or at 4 (pixels), never as an unhandled rejection.
  const feedback = m.rewards ? (o.feedback ?? m.rewards.default_feedback) : null;
  const prompts = [o.instruction, "", ...(feedback !== null && m.rewards?.feedback_input ? [feedback] : [])];
  const opening = openImage(o.image, { resolution, multiple: m.size_multiple });
  opening.catch(() => {});
  const ids = prompts.flatMap((p) => model.tokenizer.encode(p));
  const opened = await opening;
  const imageReady = opened.decode();
  imageReady.catch(() => {});
  // the full-size source for the composition and its alpha, decoded on sharp's threads while the model runs
  const sourceReady = compose || ((editMask || autoRule) && !o.workingSize) || opened.hasAlpha ? decodeSource(o.image, opened) : null;
  sourceReady?.catch(() => {});

  // 3. encode the prompt, the empty prompt and (for MRC models) the feedback text in one batch
  //    (the whole batch on a miss, so a cached embedding is the very one an uncached edit computes)
  const cache = o.encodeCache === undefined ? modelEncodeCache(model) : o.encodeCache;
  const cached = { latent: false, text: false };
  const encodeText = async () => {
    const enc = await model.textEncoder.run({ input_ids: idsTensor(ids, model.tokenizer.config.model_max_length, model.textEncoder) });
    const hidden = enc.last_hidden_state ?? Object.values(enc)[0];
    const [, len, dim] = hidden.dims;
    let feedback: Float32Array | undefined;
    if (prompts.length === 3) {
      const pooled = enc.pooler_output ?? enc.text_embeds;
      if (!pooled) throw new Error("text_encoder has no pooled output for the reward feedback");
      feedback = pooled.data.slice(2 * pooled.dims[1], 3 * pooled.dims[1]);
    }
    return { text: hidden.data.slice(0, len * dim), empty: hidden.data.slice(len * dim, 2 * len * dim), feedback, len, dim };
  };
  let embeddings;
  if (cache) {
    let ran = false;
    embeddings = await cache.embeddings(hashParts(modelKey(model), prompts.length, ...prompts), () => ((ran = true), encodeText()));
    cached.text = !ran;
  } else {
    embeddings = await encodeText();
  }
  const { text: textEmbedding, empty: emptyEmbedding, feedback: feedbackEmbedding, len, dim } = embeddings;
  check();

  // 4. the image at the model's working size
  const img = await imageReady;

  // 5. timesteps
  scheduler.setTimesteps(steps);

  // 6. image latent: the VAE encoder's mean, not scaled (InstructPix2Pix)
  const C = m.latent_channels;
  const vaeTile = tileFor(vaeTiling, img.width, img.height, tileSize);
  const encodeSource = () => encodeLatent(model.vaeEncoder, { data: img.pixels, channels: 3, height: img.height, width: img.width }, C, m.latent_downscale, vaeTile);
  let source;
  if (cache) {
    let ran = false;
    // the photo's bytes, the size it is edited at and the tiling decide the latent
    source = await cache.latent(hashParts(modelKey(model), o.image, img.width, img.height, img.content.left, img.content.top, img.content.width, img.content.height, vaeTile), () => ((ran = true), encodeSource()));
    cached.latent = !ran;
  } else {
    source = await encodeSource();
  }
  const h = source.height;
  const w = source.width;
  const plane = C * h * w;
  const imageLatent = source.data;
  const down = m.latent_downscale;
  const rewardInputs = m.rewards
    ? { scoresInput: m.rewards.scores_input, scores: rewards, feedbackInput: m.rewards.feedback_input, feedback: feedbackEmbedding }
    : undefined;

  // 6b. auto mask: where the instruction acts, from the UNet's own guidance branches (relevance.ts);
  //     a painted mask wins, a global edit gets none
  let autoReport: AutoMaskReport | null = null;
  let relevancePng: Promise<Buffer> | undefined;
  let relevanceEvaluations = 0;
  let relevanceCalls = 0;
  if (autoRule && editMask) autoReport = { applied: false, reason: "painted", coverage: editMask.coverage };
  else if (autoRule) {
    const auto = await relevanceMask(
      { unet: model.unet, latentShape: { channels: C, height: h, width: w }, imageLatent, scalingFactor: m.scaling_factor, textEmbedding, emptyEmbedding, embeddingDims: [len, dim], schedulerConfig, rewards: rewardInputs },
      down,
      img.content,
      autoRule,
      o.onRelevance && ((maps) => o.onRelevance!({ maps, levels: autoRule.levels, width: w, height: h, down, content: img.content })),
    );
    relevanceEvaluations = auto.evaluations;
    relevanceCalls = auto.unetCalls;
    autoReport = auto.report;
    if (auto.mask) editMask = auto.mask;
    relevancePng = mapPng(auto.map);
    check();
  }

  // 7. noise latent
  const rng = new Generator(seed);
  const latents = rng.randn(new Float32Array(plane));
  const initSigma = scheduler.initNoiseSigma;
  for (let k = 0; k < plane; k++) latents[k] *= initSigma;

  // 7b. a mask confines the edit during sampling: outside it the source latent, re-noised each step
  let blender: LatentBlender | null = null;
  if (editMask && maskMode === "blend") {
    const sourceLatent = imageLatent.map((v) => v * m.scaling_factor);
    const noise = new Generator((seed + 1) % (MAX_SEED + 1)).randn(new Float32Array(plane));
    // (the first sample is noise everywhere, as in diffusers' inpainting at strength 1: at
    // sigma_max the source is all but invisible anyway)
    blender = new LatentBlender(await latentMask(editMask, img, w, h), sourceLatent, noise, scheduler);
  }

  // 8. channel check: noisy latent + image latent must fill the UNet's input channels
  const unetChannels = model.unet.inputs.find((i) => i.name === "sample")?.shape[1];
  if (typeof unetChannels === "number" && unetChannels !== 2 * C) {
    throw new Error(`unet expects ${unetChannels} input channels, latents give ${2 * C}`);
  }

  // 9. denoising loop
  const denoiser = new InstructPix2PixDenoiser({
    unet: model.unet,
    latentShape: { channels: C, height: h, width: w },
    imageLatent,
    textEmbedding,
    emptyEmbedding,
    embeddingDims: [len, dim],
    scales: { text: textGuidance, image: imageGuidance },
    schedule: { interval: guidanceInterval, adaptiveThreshold: adaptiveGuidance },
    deepCache: cacheInterval > 1 ? { shallow: model.unetShallow!, features: m.deep_cache!.features, interval: cacheInterval } : undefined,
    rewards: rewardInputs,
  });
  const scaled = new Float32Array(plane);
  const x0 = o.onEstimate ? new Float32Array(plane) : null;
  const latentContent = { left: Math.floor(img.content.left / down), top: Math.floor(img.content.top / down), width: Math.max(1, Math.round(img.content.width / down)), height: Math.max(1, Math.round(img.content.height / down)) };
  for (let i = 0; i < scheduler.timesteps.length; i++) {
    check();
    const t = scheduler.timesteps[i];
    scaled.set(latents);
    scheduler.scaleModelInput(scaled, i);
    const eps = await denoiser.predict(scaled, t, scheduler.noiseLevel(i));
    if (x0) {
      // before step(), which may reuse eps; every scheduler's model input is the
      // variance-preserving sample, so one formula serves all
      const sigma = scheduler.noiseLevel(i);
      const up = Math.sqrt(sigma * sigma + 1);
      const type = schedulerConfig.prediction_type;
      for (let k = 0; k < plane; k++) x0[k] = predictOriginal(type, eps[k], scaled[k] * up, sigma);
    }
    scheduler.step(eps, i, latents, rng);
    blender?.apply(latents, i);
    o.onStep?.({ step: i + 1, steps, timestep: t });
    if (x0) o.onEstimate!({ step: i + 1, steps, x0, channels: C, height: h, width: w, content: latentContent });
  }
  check();

  // 10. decode
  const scaling = m.scaling_factor;
  let decodedPlanes;
  if (tiny) {
    // TAESD takes the latents as the UNet sees them (AutoencoderTiny's scaling factor is 1); its
    // memory is small at any size, so it runs whole
    decodedPlanes = await decodeLatent(await tiny, { data: latents, channels: C, height: h, width: w }, m.latent_downscale, 0);
    if (decodedPlanes.height !== h * m.latent_downscale || decodedPlanes.width !== w * m.latent_downscale) {
      throw new Error(`${m.preview_decoder}: decodes ${w}x${h} latents to ${decodedPlanes.width}x${decodedPlanes.height}, not the folder's ${m.latent_downscale}x`);
    }
  } else {
    for (let k = 0; k < plane; k++) latents[k] /= scaling;
    decodedPlanes = await decodeLatent(model.vaeDecoder, { data: latents, channels: C, height: h, width: w }, m.latent_downscale, vaeTile);
  }
  const out = { data: decodedPlanes.data, dims: [1, decodedPlanes.channels, decodedPlanes.height, decodedPlanes.width] };
  const [, , H, W] = out.dims;
  let rgb: Buffer;
  let size: { width: number; height: number };
  let composite: Awaited<ReturnType<typeof composeFullResolution>> | null = null;
  const tc = performance.now();
  if (compose) {
    // 11. full-resolution composition (detail.ts): the source where unchanged, its detail through smooth changes
    composite = composeFullResolution(await sourceReady!, regionRaster(img.pixels, img.width, img.height, img.content), regionRaster(out.data, W, H, img.content));
    size = { width: composite.width, height: composite.height };
    rgb = composite.rgb;
  } else {
    // the padding comes off; the photo goes back to its own size (or stays at the working scale)
    size = o.workingSize ? { width: img.content.width, height: img.content.height } : { width: img.sourceWidth, height: img.sourceHeight };
    rgb = await resizeRgb(toRgb8(out.data, W, H), W, H, img.content, size);
  }
  let keptFraction = composite ? composite.keptFraction : null;
  if (editMask) {
    // 12. outside the mask the source itself; a feather inside the mask hides the seam
    // (a transparent source is decoded at its own size even for a working-size result: its alpha)
    const full = sourceReady ? await sourceReady : null;
    const source = full && full.width === size.width && full.height === size.height ? full.rgb : await resizeRgb(toRgb8(img.pixels, W, H), W, H, img.content, size);
    const weight = await featheredMask(editMask, size.width, size.height);
    rgb = pasteInside(rgb, source, weight).rgb;
    let kept = 0;
    for (let i = 0; i < weight.length; i++) if (rgb[3 * i] === source[3 * i] && rgb[3 * i + 1] === source[3 * i + 1] && rgb[3 * i + 2] === source[3 * i + 2]) kept++;
    keptFraction = kept / weight.length;
    if (composite) for (let i = 0; i < weight.length; i++) composite.mask[i] = Math.round(composite.mask[i] * weight[i]);
  }
  // 13. a transparent source's alpha back on the result, or the result flattened onto the background colour
  const src = sourceReady ? await sourceReady : null;
  let alpha = false;
  if (src?.rgba) {
    const atSize = size.width === src.width && size.height === src.height;
    const rgba = restoreAlpha(rgb, await resizeRgba(src.rgba, src.width, src.height, size), atSize ? src.rgb : null);
    alpha = keepsAlpha(background, format);
    rgb = alpha ? rgba : flattenRgba(rgba, colour);
  }
  const image = await encodeImage(rgb, size.width, size.height, { format, channels: alpha ? 4 : 3 });
  const composeMs = compose || editMask || src?.rgba ? performance.now() - tc : 0;
  const mask = composite && o.mask ? await maskPng(composite) : undefined;
  const ortMs = sessions.reduce((a, s) => a + s.runMs, 0) - ort0;
  return {
    image,
    format,
    width: size.width,
    height: size.height,
    parameters: {
      instruction: o.instruction,
      rewards: m.rewards ? rewards : null,
      rewardsApplied: m.rewards !== undefined,
      feedback,
      steps,
      textGuidance,
      imageGuidance,
      seed,
      scheduler: schedulerName,
      karrasSigmas,
      guidanceInterval,
      adaptiveGuidance,
      cacheInterval,
      model: m.name,
      workingWidth: W,
      workingHeight: H,
      detail,
      maskMode: editMask ? maskMode : null,
      ...(autoRule ? { autoMask: autoReport } : {}),
      vaeTiling,
      vaeTile,
      decoder,
      background,
      backgroundColour,
    },
    alpha,
    keptFraction,
    mask,
    relevance: relevancePng ? await relevancePng : undefined,
    timings: { totalMs: performance.now() - t0, ortMs, unetCalls: denoiser.calls + relevanceCalls, unetBatch: denoiser.maxBatch, unetEvaluations: denoiser.evaluations + relevanceEvaluations, shallowEvaluations: denoiser.shallowEvaluations, composeMs, cached },
    decoded: o.keepDecoded ? { data: out.data, dims: out.dims } : undefined,
  };
}
