/**
 * The HTTP API's response bodies, one zod schema each: /openapi.json is generated from them
 * (openapi.ts), and the tests check the routes' real answers against the same schemas
 * (test/support/responses.ts), so the document cannot drift from what is sent. Nothing here runs
 * on a request: the routes only borrow the types (z.infer).
 *
 * Objects are plain z.object: the document leaves them open to new fields (a client should
 * ignore what it does not know), while the tests refuse a field no schema names.
 */
import { z } from "zod";
import { DomainSchema, ManifestSchema } from "../../editor/model/manifest.js";
import { BACKGROUNDS, DECODERS, OUTPUT_FORMATS, SCHEDULER_NAMES, VAE_TILING_MODES } from "../../editor/index.js";
import { PresetSchema } from "../presets/index.js";
import { recordedParametersSchema } from "../provenance/parameters.js";

const int = z.number().int();
const base64 = (description: string) => z.base64().describe(description);
const rewards = z.tuple([z.number(), z.number(), z.number()]).describe("following, preserving, quality (0..5)");

// --- errors --------------------------------------------------------------------------------------

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().describe("stable, machine-readable: invalid_field, unknown_field, not_found, queue_full, ..."),
      message: z.string().describe("one line for a person"),
      field: z.string().optional().describe("the request field (or header, path or query parameter) at fault"),
    }),
  })
  .describe("every failure of the project's own routes");

export const OpenAiErrorBody = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.enum(["invalid_request_error", "rate_limit_error", "server_error"]),
      param: z.string().nullable().describe("the field at fault, by OpenAI's name (prompt, n) or as the client spelt it"),
      code: z.string(),
    }),
  })
  .describe("OpenAI's error object (every failure under /v1/images); the official clients raise it as their APIError");

// --- jobs ----------------------------------------------------------------------------------------

export const JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;

export const Job = z
  .object({
    id: z.string(),
    state: z.enum(JOB_STATES),
    progress: int.min(0).max(100).describe("percent of the sampling steps done"),
    step: int.min(0),
    steps: int.min(0).describe("0 until the job starts"),
    queue_position: int.min(0).nullable().describe("0-based among waiting jobs; null when not waiting"),
    replica: z.string().nullable().describe("the replica that runs or ran the job (its pod name under Kubernetes); null while it waits"),
    created_at: z.iso.datetime(),
    error: ErrorBody.shape.error.optional().describe("why a failed or cancelled job ended"),
    result: z.string().optional().describe("path of the result, once succeeded"),
    evicted: z.literal(true).optional().describe("succeeded, but the result was dropped early to keep retained results under REWARD_EDIT_RETAINED_BYTES"),
  })
  .describe("a job's status (GET /v1/jobs/{id}, the 202 of POST /v1/jobs, the terminal job event, the webhook's data)");

export const JobDeleted = z.object({ id: z.string(), state: z.enum(["succeeded", "failed", "cancelled"]), deleted: z.literal(true) }).describe("a finished job deleted with its result");

// --- scores (the reward module's ScoreResult, reward/types.ts) -------------------------------------

const status = z.enum(["scored", "unscored", "refused", "not_judged"]);
const Pass = z.object({
  score: z.number().optional(),
  scores: z.array(z.number()).optional().describe("VIEScore: one reply's sub-scores (0..10)"),
  yes: z.boolean().optional(),
  reasoning: z.string().optional(),
  raw: z.string().optional(),
  latencyMs: z.number(),
  attempts: int,
});
const Perspective = z.object({
  status,
  score: z.number().optional().describe("mean over the passes that gave a score"),
  spread: z.number().optional(),
  yesRate: z.number().optional(),
  reason: z.string().optional(),
  passes: z.array(Pass),
});
const VieScorePart = z.object({ status, score: z.number().optional(), lists: z.array(z.array(z.number())), reason: z.string().optional(), raw: z.string().optional() });

export const ScoreResult = z
  .object({
    backend: z.enum(["judge", "local"]),
    protocol: z.string(),
    promptVersion: z.string(),
    model: z.string(),
    passes: int,
    perspectives: z.object({ following: Perspective, preserving: Perspective, quality: Perspective }),
    latencyMs: z.number(),
    cached: z.boolean(),
    measures: z.record(z.string(), z.unknown()).optional().describe("local scorer: the measures behind its figures"),
    viescore: z.object({ sc: VieScorePart, pq: VieScorePart, o: z.number().optional() }).optional().describe("viescore protocol: its own figures on 0..10"),
    judge: z
      .object({
        host: z.string(),
        model: z.string(),
        answeredModel: z.string().optional(),
        temperature: z.number().optional(),
        seed: z.number().optional(),
        maxTokens: z.number().optional(),
        promptHash: z.string(),
        protocol: z.string(),
        protocolVersion: z.string(),
        repeats: int.optional(),
      })
      .optional(),
    usage: z.object({ promptTokens: int, completionTokens: int }).optional(),
  })
  .describe("an edit scored on following, preserving and quality");

const Provenance = z.object({
  format: z.enum(["png", "jpeg", "webp"]).nullable(),
  c2pa: z
    .object({
      ours: z.boolean().describe("the active manifest was made by reward-edit"),
      state: z.string().describe("Invalid, Valid or Trusted"),
      valid: z.boolean(),
      trusted: z.boolean(),
      failures: z.array(z.object({ code: z.string(), explanation: z.string().optional() })),
      signer: z.object({ issuer: z.string().optional(), common_name: z.string().optional(), alg: z.string().optional() }).nullable(),
      digital_source_type: z.string().nullable(),
      generator: z.string().nullable(),
    })
    .nullable(),
  xmp: z.object({ digital_source_type: z.string().nullable(), creator_tool: z.string().nullable() }).nullable(),
  parameters: recordedParametersSchema.nullable(),
  parameters_signed: z.boolean().describe("true only when the parameters come from a C2PA manifest whose signature and bindings hold"),
  parameters_source: z.enum(["c2pa", "xmp"]).nullable(),
  parameters_problem: z.object({ field: z.string(), message: z.string() }).nullable(),
  parameters_note: z.string().optional(),
});

export const Scores = ScoreResult.extend({ provenance: Provenance }).describe(
  "scores, and provenance: whether the edited image carries a C2PA manifest (c2pa.ours: made by reward-edit), whether it validates (c2pa.valid, c2pa.state, c2pa.failures), its XMP marks and recorded parameters",
);

// --- edits ---------------------------------------------------------------------------------------

const EditParameters = z
  .object({
    instruction: z.string(),
    rewards: rewards.nullable(),
    rewardsApplied: z.boolean(),
    feedback: z.string().nullable(),
    steps: int,
    textGuidance: z.number(),
    imageGuidance: z.number(),
    seed: int,
    scheduler: z.enum(SCHEDULER_NAMES),
    karrasSigmas: z.boolean(),
    guidanceInterval: z.tuple([z.number(), z.number()]).nullable(),
    adaptiveGuidance: z.number().nullable(),
    cacheInterval: int,
    model: z.string(),
    workingWidth: int,
    workingHeight: int,
    detail: z.enum(["keep", "off"]),
    maskMode: z.enum(["blend", "paste"]).nullable(),
    vaeTiling: z.enum(VAE_TILING_MODES).optional(),
    vaeTile: int.optional().describe("the VAE's tile in working pixels; 0: the whole image at once"),
    decoder: z.enum(DECODERS).optional(),
    background: z.enum(BACKGROUNDS).optional().describe("what a transparent source's result keeps (auto, transparent, opaque)"),
    backgroundColour: z.string().optional().describe("#rrggbb a transparent source is flattened onto when the result is opaque"),
    autoMask: z
      .object({ applied: z.boolean(), reason: z.enum(["local", "global", "painted"]), coverage: z.number() })
      .nullable()
      .optional()
      .describe("with auto_mask: whether the relevance map confined the edit, why (a global edit gets none; a painted mask wins), the share it covers"),
    preset: z.string().nullable().optional(),
  })
  .describe("the settings the edit ran with");

const Round = z.object({
  round: int,
  seed: int,
  rewards,
  text_guidance: z.number(),
  image_guidance: z.number(),
  from: z.enum(["source", "last"]),
  feedback: z.string().nullable(),
  changes: z.array(z.string()),
  met: z.boolean(),
  merit: z.number(),
  scores: ScoreResult,
  image: base64("this round's image"),
});

export const EditResult = z
  .object({
    id: z.string(),
    image: base64("the edited image"),
    format: z.enum(OUTPUT_FORMATS),
    width: int,
    height: int,
    parameters: EditParameters,
    scores: ScoreResult.nullable().describe("the chosen image's; null when scoring failed"),
    candidates: z.array(z.object({ seed: int, overall: z.number().nullable(), chosen: z.boolean() })),
    refine: z
      .object({ scorer: z.string(), stopped: z.enum(["met", "rounds"]), chosen_round: int.min(1), rounds: z.array(Round) })
      .optional()
      .describe("with refine_rounds > 1: every round with its settings, changes, scores and image"),
    detail: z.object({
      mode: z.enum(["keep", "off"]),
      kept_fraction: z.number().nullable().describe("share of the input's pixels returned exactly"),
      mask: base64("PNG, white = edited").nullable(),
      relevance: base64("with auto_mask: the instruction's relevance map, grey PNG at working size (white = where it acts)").optional(),
    }),
    timings: z.object({ total_ms: z.number(), ort_ms: z.number() }),
    warnings: z.array(z.string()),
  })
  .describe("a finished edit as JSON (response_format=json, or GET /v1/jobs/{id}/result?format=json)");

// --- job events (GET /v1/jobs/{id}/events; the terminal event's data is the Job) --------------------

export const JobQueuedEvent = z.object({ id: z.string(), position: int.min(0).nullable() }).describe("event queued (id 0)");
export const JobStartedEvent = z.object({ id: z.string(), replica: z.string().nullable() }).describe("event started (id 1)");
export const JobProgressEvent = z
  .object({
    step: int,
    steps: int,
    elapsed_ms: z.number().nullable(),
    eta_ms: z.number().nullable(),
    preview: z.string().startsWith("data:image/png;base64,").optional().describe("with ?previews=1: a small PNG of the forming image, as a data URL"),
    preview_width: int.optional(),
    preview_height: int.optional(),
    preview_step: int.optional().describe("the step the preview shows (often a step or two behind)"),
  })
  .describe("event progress (id 1 + step)");

// --- the OpenAI-compatible route ------------------------------------------------------------------

export const OpenAiImages = z
  .object({
    created: int.describe("Unix seconds"),
    data: z.array(
      z.union([
        z.object({ b64_json: base64("the image"), revised_prompt: z.null() }),
        z.object({ url: z.url().describe("/v1/jobs/{id}/result?candidate=k, kept for the job TTL (needs the API key)"), revised_prompt: z.null() }),
      ]),
    ),
    background: z.enum(["transparent", "opaque"]).describe("whether the image came back with alpha (a transparent source keeps it unless background=opaque)"),
    output_format: z.enum(OUTPUT_FORMATS),
    size: z.string().regex(/^\d+x\d+$/),
  })
  .describe("OpenAI's images response");

const streamed = {
  b64_json: base64("the image"),
  created_at: int,
  output_format: z.enum(OUTPUT_FORMATS),
  size: z.string().regex(/^\d+x\d+$/),
  background: z.enum(["transparent", "opaque"]),
  quality: z.string(),
};
export const OpenAiPartialImageEvent = z
  .object({ type: z.literal("image_edit.partial_image"), partial_image_index: int.min(0).max(2), ...streamed })
  .describe("stream=true: a live preview at the result's size");
export const OpenAiCompletedEvent = z
  .object({
    type: z.literal("image_edit.completed"),
    ...streamed,
    usage: z.object({ input_tokens: int, input_tokens_details: z.object({ image_tokens: int, text_tokens: int }), output_tokens: int, total_tokens: int }).describe("always zero: an edit here is not counted in tokens"),
  })
  .describe("stream=true: the last event, with the image");
export const OpenAiStreamError = OpenAiErrorBody.extend({ type: z.literal("error") }).describe("stream=true: a failure after the first event ends the stream with it");

// --- catalogue and operations --------------------------------------------------------------------

export const Presets = z.object({ presets: z.array(PresetSchema.extend({ name: z.string() })) }).describe("the named reward presets");
export const Models = z
  .object({
    models: z.array(
      z.object({
        name: z.string(),
        dir: z.string().describe("the model folder's name"),
        takes_rewards: z.boolean(),
        provider: z.string().describe("the onnxruntime execution provider"),
        domain: DomainSchema.nullable(),
        manifest: ManifestSchema.describe("the folder's reward-edit.json"),
      }),
    ),
  })
  .describe("the loaded model (none while it loads)");
export const Health = z.object({ status: z.literal("ok") });
export const Ready = z.object({
  ready: z.boolean(),
  model: z.string().nullable(),
  workers: int.min(0).describe("worker processes alive and loaded"),
  draining: z.boolean(),
  store: z.enum(["memory", "redis"]).describe("where jobs are kept"),
});

// --- webhooks ------------------------------------------------------------------------------------

export const WebhookEvent = z
  .object({ type: z.enum(["job.succeeded", "job.failed", "job.cancelled"]), timestamp: z.iso.datetime(), data: Job })
  .describe("POSTed to a job's webhook_url once it ends, signed per Standard Webhooks");

/** Every response body by its name in /openapi.json's components.schemas. */
export const RESPONSES = {
  Error: ErrorBody,
  OpenAiError: OpenAiErrorBody,
  Job,
  JobDeleted,
  ScoreResult,
  Scores,
  EditResult,
  JobQueuedEvent,
  JobStartedEvent,
  JobProgressEvent,
  OpenAiImages,
  OpenAiPartialImageEvent,
  OpenAiCompletedEvent,
  OpenAiStreamError,
  Presets,
  Models,
  Health,
  Ready,
  WebhookEvent,
} as const;
export type ResponseName = keyof typeof RESPONSES;
export type ResponseBody<N extends ResponseName> = z.infer<(typeof RESPONSES)[N]>;
