/**
 * Turning a checked edit form into a job, and waiting for it on a synchronous request: shared by
 * the project's own /v1/edits and /v1/jobs and by the OpenAI-compatible /v1/images/edits.
 */
import type { Request, Response } from "express";
import type { Logger } from "pino";
import type { ServerConfig } from "../config/server.js";
import { ParamConflictError, resolveParams } from "../edit-params.js";
import { type Preset, UnknownPresetError } from "../presets/index.js";
import { AppError } from "./errors.js";
import { idempotency, idempotencyStoreFor } from "./idempotency.js";
import { DrainingError, QueueFullError, StoreFullError } from "./jobs.js";
import type { JobMeta, JobQueue, JobView } from "./queue/types.js";
import { uploadedFiles } from "./upload.js";
import { decodeMask } from "../../raster/mask.js";
import { maskDigest } from "../provenance/index.js";
import { LikeError, likeFormFields, recordedParameters } from "../provenance/like.js";
import { type EditForm, checkImageSize, checkLikeFields, checkMask, editSchema, parseForm } from "./validation.js";

export interface SubmissionDeps {
  config: ServerConfig;
  queue: JobQueue;
  presets: Record<string, Preset>;
  logger: Logger;
}

/** What a failed or cancelled job answers. */
export function failureOf(job: JobView): AppError {
  if (job.state === "cancelled") return new AppError(409, "cancelled", "the edit was cancelled");
  const e = job.error;
  if (e?.field) return new AppError(e.name === "ImageInputError" ? 415 : 400, "invalid_field", e.message, e.field);
  return new AppError(500, "edit_failed", e?.message ?? "the edit failed");
}

const toAppError = (err: unknown): never => {
  if (err instanceof LikeError) throw new AppError(400, "invalid_field", err.message, err.field);
  throw err;
};

export function editSubmission(d: SubmissionDeps) {
  const { config, queue, presets, logger } = d;

  /** Queues the edit; the upload is already checked (`pixels`: its decoded size) and the mask normalised (white = may change). */
  const submitForm = async (form: EditForm, upload: { image: Buffer; pixels: number; mask?: Buffer }, meta: Omit<JobMeta, "preset">): Promise<JobView> => {
    const { image, mask, pixels } = upload;
    // one key cannot fill the queue for everyone else
    if (meta.owner && config.maxJobsPerKey > 0 && (await queue.activeFor(meta.owner)) >= config.maxJobsPerKey) {
      throw new AppError(429, "key_limit", `this API key already has ${config.maxJobsPerKey} jobs waiting or running (REWARD_EDIT_MAX_JOBS_PER_KEY); retry when one finishes`, undefined, { "retry-after": "5" });
    }
    if (form.background === "transparent" && form.output_format === "jpeg") {
      throw new AppError(400, "invalid_field", "background: transparent needs output_format png or webp (JPEG has no alpha channel)", "background");
    }
    if (form.candidates > 1 && form.refine_rounds > 1) {
      throw new AppError(400, "invalid_field", "refine_rounds: give either candidates (best-of-N by seed) or refine_rounds, not both", "refine_rounds");
    }
    let params;
    try {
      params = resolveParams(
        {
          rewards: form.rewards,
          preset: form.preset,
          steps: form.steps,
          textGuidance: form.text_guidance,
          imageGuidance: form.image_guidance,
          scheduler: form.scheduler,
          karrasSigmas: form.karras_sigmas,
          guidanceInterval: form.guidance_interval,
          adaptiveGuidance: form.adaptive_guidance,
          cacheInterval: form.cache_interval,
          vaeTiling: form.vae_tiling,
          resolution: form.resolution,
          decoder: form.decoder,
          background: form.background,
          backgroundColour: form.background_colour,
          autoMask: form.auto_mask,
        },
        presets,
        { deepCache: queue.model?.manifest.deep_cache !== undefined },
      );
    } catch (err) {
      if (err instanceof ParamConflictError || err instanceof UnknownPresetError) throw new AppError(400, "invalid_field", (err as Error).message, "preset");
      throw err;
    }
    try {
      return await queue.submit(
        {
          image: new Uint8Array(image),
          instruction: form.instruction,
          rewards: params.rewards,
          steps: params.steps,
          textGuidance: params.textGuidance,
          imageGuidance: params.imageGuidance,
          seed: form.seed ?? Math.floor(Math.random() * 2 ** 32),
          sampling: params.sampling,
          format: form.output_format,
          candidates: form.candidates,
          refineRounds: form.refine_rounds,
          detail: form.detail,
          ...(mask ? { editMask: new Uint8Array(mask), maskMode: form.mask_mode } : {}),
          pixels,
          preset: params.preset ?? null,
        },
        { ...meta, preset: params.preset ?? null },
      );
    } catch (err) {
      if (err instanceof QueueFullError) {
        throw new AppError(429, "queue_full", "too many edits in progress; retry later", undefined, { "retry-after": String(err.retryAfterSeconds) });
      }
      if (err instanceof DrainingError) throw new AppError(503, "shutting_down", err.message, undefined, { "retry-after": "5" });
      if (err instanceof StoreFullError) {
        throw new AppError(503, "store_full", "the job store (Redis) is at its memory limit; retry later", undefined, { "retry-after": String(err.retryAfterSeconds) });
      }
      throw err;
    }
  };

  /**
   * Waits for a synchronous edit: a client that goes away cancels it, and so does the request
   * timeout (504). Resolves with the succeeded job; throws what a failed one answers.
   */
  const awaitEdit = async (submitted: JobView, res: Response): Promise<JobView> => {
    const cancel = () => queue.cancel(submitted.id).catch((e) => logger.warn({ err: e }, "cancel failed"));
    const onClose = () => {
      if (!res.writableFinished) void cancel();
    };
    res.on("close", onClose);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void cancel();
    }, config.requestTimeoutMs);
    const job = await queue.waitFor(submitted.id).finally(() => clearTimeout(timer));
    if (timedOut && job.state !== "succeeded") throw new AppError(504, "timeout", `the edit took longer than ${config.requestTimeoutMs} ms`);
    if (job.state !== "succeeded") throw failureOf(job);
    return job;
  };

  /** The project's own edit form (/v1/edits, /v1/jobs): fields, photo and mask checked, then queued for the caller's key. */
  /** `extra`: what the route adds to the job's meta (its webhook). */
  const submitRequest = async (req: Request, res: Response, extra: Pick<JobMeta, "webhookUrl"> = {}): Promise<{ job: JobView; form: EditForm }> => {
    const like = uploadedFiles(req).like?.[0];
    const recorded = like ? await recordedParameters(like.buffer).catch(toAppError) : undefined;
    if (recorded?.instruction_withheld && !(req.body ?? {}).instruction) {
      throw new AppError(400, "invalid_field", "instruction: the like image does not record its instruction (REWARD_EDIT_PROVENANCE_PARAMETERS=off where it was made); send instruction", "instruction");
    }
    // a like upload's settings, under the fields the request gives itself; those it takes from
    // the image are checked first, so a bad one is reported as the image's, not the caller's
    const body = (req.body ?? {}) as Record<string, unknown>;
    const taken = recorded ? Object.fromEntries(Object.entries(likeFormFields(recorded)).filter(([k]) => !(k in body))) : {};
    if (recorded) checkLikeFields(config, taken);
    const form = parseForm(editSchema(config), recorded ? { ...taken, ...body } : req.body);
    const { image, pixels } = await checkImageSize(uploadedFiles(req).image?.[0], "image", config.maxPixels);
    const mask = await checkMask(uploadedFiles(req).mask?.[0], "luminance", config.maxPixels);
    if (recorded?.mask_sha256 && (!mask || maskDigest(await decodeMask(mask)) !== recorded.mask_sha256)) {
      throw new AppError(400, "invalid_field", `mask: the like image was made with a mask (pixels sha256 ${recorded.mask_sha256.slice(0, 12)}...); upload that mask as mask`, "mask");
    }
    return { job: await submitForm(form, { image, pixels, mask }, { responseFormat: form.response_format, owner: res.locals.owner ?? null, ...extra }), form };
  };

  // Idempotency-Key on the routes that submit (idempotency.ts), sharing the job store's reach
  const idem = idempotency({ config, queue, logger, store: idempotencyStoreFor(queue, config) });

  return { submitForm, submitRequest, awaitEdit, idempotency: idem };
}
