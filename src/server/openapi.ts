/** OpenAPI 3.1 description of the whole HTTP API. */
import type { ServerConfig } from "../config/server.js";
import { fromZod, responseComponents } from "./openapi-zod.js";
import { openAiFields } from "./routes/openai-images.js";
import { RESPONSES, type ResponseName } from "./responses.js";
import { editSchema, scoreSchema } from "./validation.js";

type Json = Record<string, unknown>;

const ref = (name: ResponseName) => ({ $ref: `#/components/schemas/${name}` });
/** A JSON answer whose body is one of responses.ts's schemas; its description is the schema's unless given. */
const json = (name: ResponseName, description = RESPONSES[name].description ?? name, headers?: Json) => ({ description, ...(headers ? { headers } : {}), content: { "application/json": { schema: ref(name) } } });

const WHY: Record<number, string> = {
  400: "a field, parameter or header is invalid: error.field names it",
  401: "no API key, or an unknown one",
  404: "unknown, expired or another key's",
  409: "not ready yet, or a request with this Idempotency-Key is still running",
  410: "the result was dropped early (REWARD_EDIT_RETAINED_BYTES): edit again",
  413: "an upload over the size or pixel limit",
  415: "not a multipart form, or an image this server cannot decode",
  422: "this Idempotency-Key was used for a different request",
  429: "too many jobs or streams for this key, or the queue is full (Retry-After)",
  500: "internal error",
  503: "not ready or draining (Retry-After)",
  504: "the edit took longer than the request timeout: it may still finish as a job",
};
const failures = (body: "Error" | "OpenAiError", codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), json(body, WHY[c])]));
const errors = (...codes: number[]) => failures("Error", codes);

/** `formats`: what the start-up probe found this server decodes (formats.ts). */
export function openApiDocument(c: ServerConfig, formats: string[] = ["JPEG", "PNG", "WebP", "GIF", "TIFF", "AVIF"]) {
  const accepted = `${formats.slice(0, -1).join(", ")}${formats.length > 1 ? " or " : ""}${formats[formats.length - 1]}`;
  // types, ranges and defaults from the validating zod schema (openapi-zod.ts); prose and files here
  const editForm = fromZod(editSchema(c), {
    type: "object",
    required: ["image", "instruction"],
    additionalProperties: false,
    properties: {
      image: { type: "string", format: "binary", description: `${accepted} (what this server's image library decodes); at most ${c.maxUploadBytes} bytes and ${c.maxPixels} pixels` },
      rewards: { description: "following,preserving,quality each 0..5 (or a JSON array); not with preset", example: "5,5,5" },
      preset: { description: "named preset, see GET /v1/presets" },
      scheduler: { description: "sampler; dpmpp-2m and unipc are deterministic multistep solvers (diffusers v0.29), good at 10-20 steps" },
      karras_sigmas: { description: "Karras sigma spacing (dpmpp-2m, unipc only)" },
      guidance_interval: { example: "1,15", description: "lo,hi: the guidance branches run only while the noise level sigma is in (lo, hi]; outside, the conditioned branch alone (fewer UNet evaluations)" },
      adaptive_guidance: { description: "stop the guidance branches once the full and image-only predictions agree to this cosine" },
      cache_interval: { description: "DeepCache: the whole UNet every n-th step, its outer blocks on cached deep features in between (models with a shallow UNet graph)" },
      decoder: { description: "full: the model's VAE decoder; tiny: its TAESD decoder (models whose folder has a preview_decoder): about 1 % of the decoder's work, quality not measured here" },
      resolution: { description: "long side the model edits at (a multiple of its size_multiple), e.g. 768 or 1024; default the model's. The result still comes back at the photo's size" },
      vae_tiling: { description: "the VAE encodes and decodes overlapping tiles (diffusers' tiled VAE: less memory, a little time); auto: above a 512 px working size" },
      candidates: { description: "best-of-N, chosen by the reward module" },
      refine_rounds: {
        description: "refinement: score each result and edit again from the verdict (guidance, levels, seed) until the levels are met or the rounds run out; the best round is returned, every round is in the JSON response's refine.rounds. Not with candidates > 1",
      },
      detail: { description: "keep: the result is composed at the input's full resolution, keeping the source's pixels where nothing changed and its fine detail through smooth changes; off: the working-size result resized" },
      mask: { type: "string", format: "binary", description: "where the edit may happen: white = may change, black = must not, grey = partly (diffusers' inpainting convention); any size, scaled to the photo. Outside it the result is the source exactly. All black: 400; all white: the same as no mask" },
      mask_mode: { description: "blend: the edit is confined during sampling too (blended latent diffusion) and pasted with a feather inside the mask; paste: sampled as without a mask, then pasted" },
      like: { type: "string", format: "binary", description: "a result of this service: its recorded settings (instruction, rewards, seed, steps, sampler, detail, format) are used for the fields this request leaves out, so the same image gives the same pixels" },
    },
  });
  const openAiEdit = fromZod(openAiFields, {
    type: "object",
    // the project's fields ride along (EXTRA_FIELDS in openai-images.ts), validated by the edit form
    additionalProperties: true,
    required: ["image", "prompt"],
    description: "OpenAI's images edit request. Extra fields: rewards, preset, seed, steps, text_guidance, image_guidance, scheduler, karras_sigmas, guidance_interval, adaptive_guidance, cache_interval, vae_tiling, resolution, decoder, detail, mask_mode (as on /v1/edits).",
    properties: {
      image: { type: "string", format: "binary", description: "one photo (also accepted as image[])" },
      mask: { type: "string", format: "binary", description: "OpenAI's convention: fully transparent pixels mark where to edit; needs an alpha channel" },
      n: { type: "integer", minimum: 1, maximum: c.maxCandidates, default: 1, description: "images, seeds seed..seed+n-1" },
      size: { example: "auto", description: '"auto" (the photo\'s size) or WIDTHxHEIGHT of the same aspect ratio' },
      response_format: { description: "url: /v1/jobs/{id}/result?candidate=k, kept for the job TTL (needs the API key)" },
      model: { description: "accepted; the served model answers" },
      quality: { description: "accepted, no effect" },
      background: { description: "as OpenAI's field; the enum lists the values this server accepts" },
      input_fidelity: { description: "accepted, no effect" },
      output_compression: { type: "integer", description: "accepted, no effect" },
      stream: { description: "true: answers text/event-stream as OpenAI streams an edit: image_edit.partial_image events, then image_edit.completed (docs/progress.md); n must be 1, b64_json only" },
      partial_images: { type: "integer", minimum: 0, maximum: 3, default: 0, description: "with stream: live previews sent as partial images, spread over the steps (a quick edit may send fewer)" },
    },
    // strings the route itself parses into numbers (n through the edit form)
  }, ["n", "output_compression", "partial_images"]);
  const scoreForm = fromZod(scoreSchema, {
    required: ["source", "edited"],
    properties: {
      source: { type: "string", format: "binary" },
      edited: { type: "string", format: "binary" },
      mask: { type: "string", format: "binary", description: "where the edit was allowed (white): preservation is judged outside it" },
      instruction: { description: "the instruction the edit was made from" },
      backend: { description: "judge (the configured VLM) or local (the embedded scorer); default: the judge when configured" },
      protocol: { description: "judge protocol for this edit (default: the server's); viescore adds viescore.sc/pq/o on 0..10" },
    },
  });
  const multipart = (schema: object) => ({ required: true, content: { "multipart/form-data": { schema } } });
  const idempotent = { parameters: [{ $ref: "#/components/parameters/IdempotencyKey" }] };
  const replayed = { "Idempotent-Replayed": { $ref: "#/components/headers/IdempotentReplayed" } };
  const image = { "image/png": {}, "image/jpeg": {}, "image/webp": {} };
  const id = { name: "id", in: "path", required: true, schema: { type: "string" } };
  return {
    openapi: "3.1.0",
    info: { title: "reward-edit", version: "0.1.0", description: "Instruction-based image editing steered by reward levels." },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      // every JSON body the API answers with, from the zod schemas the tests check the answers against
      schemas: responseComponents(RESPONSES),
      parameters: {
        IdempotencyKey: {
          name: "Idempotency-Key",
          in: "header",
          required: false,
          schema: { type: "string", minLength: 1, maxLength: 255, pattern: "^[\\x20-\\x7E]+$" },
          description: `1-255 printable ASCII characters, chosen by the client (IETF Idempotency-Key draft): the same key with the same request (same fields, same file bytes) answers as the first did without editing again, marked Idempotent-Replayed: true; with a different request it is a 422; while the first is still running, /v1/jobs answers with its job and the synchronous routes with a 409. Keys belong to the API key that sent them and are kept REWARD_EDIT_IDEMPOTENCY_TTL (default 24 h), shared between replicas on Redis`,
        },
      },
      headers: {
        IdempotentReplayed: { description: "this answer repeats the first answer to the same Idempotency-Key", schema: { const: "true" } },
      },
    },
    security: c.apiKeys.length ? [{ bearer: [] }] : [],
    webhooks: {
      jobEnded: { post: { summary: "A job with a webhook_url ended", requestBody: { required: true, content: { "application/json": { schema: ref("WebhookEvent") } } }, responses: { "2XX": { description: "received" } } } },
    },
    paths: {
      "/v1/edits": {
        post: {
          summary: "Edit an image and wait for the result",
          ...idempotent,
          requestBody: multipart(editForm),
          responses: {
            "200": {
              description: "the edited image (or JSON with base64 when response_format=json)",
              headers: replayed,
              content: { ...image, "application/json": { schema: ref("EditResult") } },
            },
            ...errors(400, 401, 409, 413, 415, 422, 429, 500, 503, 504),
          },
        },
      },
      "/v1/jobs": {
        post: { summary: "Queue an edit", ...idempotent, requestBody: multipart({ ...editForm, properties: { ...editForm.properties, webhook_url: { type: "string", format: "uri", description: "called once the job ends: POST {type: job.succeeded | job.failed | job.cancelled, timestamp, data: the job's status} (webhooks.jobEnded), signed per Standard Webhooks with REWARD_EDIT_WEBHOOK_SECRET, retried with backoff (5 attempts, one webhook-id); internal addresses are refused unless REWARD_EDIT_WEBHOOK_ALLOW lists the host (docs/progress.md)" } } }), responses: { "202": json("Job", "queued (or, replayed, the first request's job)", replayed), ...errors(400, 401, 413, 415, 422, 429, 503) } },
      },
      "/v1/jobs/{id}": {
        parameters: [id],
        get: { summary: "Job state, progress and queue position", responses: { "200": json("Job"), ...errors(401, 404) } },
        delete: { summary: "Cancel a waiting or running job, or delete a finished one with its result", responses: { "202": json("Job", "cancelling"), "200": json("JobDeleted"), ...errors(401, 404) } },
      },
      "/v1/jobs/{id}/result": {
        parameters: [
          id,
          { name: "format", in: "query", schema: { enum: ["image", "json"] } },
          { name: "candidate", in: "query", schema: { type: "integer", minimum: 0 }, description: "one candidate by position instead of the best" },
        ],
        get: { summary: "A finished job's image", responses: { "200": { description: "the image, or JSON", content: { ...image, "application/json": { schema: ref("EditResult") } } }, ...errors(400, 401, 404, 409, 410, 500) } },
      },
      "/v1/jobs/{id}/events": {
        parameters: [
          id,
          { name: "previews", in: "query", schema: { enum: ["0", "1"] }, description: "1: progress events carry a small PNG preview of the forming image (preview, preview_width, preview_height, preview_step)" },
          { name: "Last-Event-ID", in: "header", schema: { type: "string", pattern: "^[0-9]{1,15}$" }, description: "resume after this event id, without repeats (decimal digits; anything else is a 400; at or past the terminal id: the terminal event again)" },
          { name: "last_event_id", in: "query", schema: { type: "string", pattern: "^[0-9]{1,15}$" }, description: "as Last-Event-ID, for clients that cannot set headers (the header wins)" },
        ],
        get: {
          summary: "The job's life as Server-Sent Events",
          description: "Events queued, started, progress, then one of succeeded / failed / cancelled with the job's status; the stream ends after it. Ids: queued 0, started 1, progress 1 + step, terminal 1000000000 (docs/progress.md). x-events gives each event's data.",
          responses: {
            "200": {
              description: "text/event-stream",
              content: { "text/event-stream": { schema: { type: "string" } } },
              "x-events": { queued: ref("JobQueuedEvent"), started: ref("JobStartedEvent"), progress: ref("JobProgressEvent"), succeeded: ref("Job"), failed: ref("Job"), cancelled: ref("Job") },
            },
            ...errors(400, 401, 404, 429),
          },
        },
      },
      "/v1/scores": {
        post: { summary: "Score an edit on following, preserving and quality", requestBody: multipart(scoreForm), responses: { "200": json("Scores"), ...errors(400, 401, 413, 415) } },
      },
      "/v1/images/edits": {
        post: {
          summary: "OpenAI-compatible image edit (the official clients' images.edit)",
          ...idempotent,
          requestBody: multipart(openAiEdit),
          responses: {
            "200": {
              description: "OpenAI's images response; with stream=true, OpenAI's image edit events (x-events gives each event's data)",
              headers: replayed,
              content: { "application/json": { schema: ref("OpenAiImages") }, "text/event-stream": { schema: { type: "string" } } },
              "x-events": { "image_edit.partial_image": ref("OpenAiPartialImageEvent"), "image_edit.completed": ref("OpenAiCompletedEvent"), error: ref("OpenAiStreamError") },
            },
            ...failures("OpenAiError", [400, 401, 409, 413, 415, 422, 429, 500, 503, 504]),
          },
        },
      },
      "/v1/presets": { get: { summary: "Named reward presets", responses: { "200": json("Presets") } } },
      "/v1/models": { get: { summary: "The loaded model and whether it takes rewards", responses: { "200": json("Models") } } },
      "/v1/models/examples/{file}": {
        parameters: [{ name: "file", in: "path", required: true, schema: { type: "string" } }],
        get: { summary: "One of the model's example images (only files its manifest lists)", responses: { "200": { description: "image", content: { "image/*": {} } }, ...errors(404) } },
      },
      "/healthz": { get: { summary: "Liveness", security: [], responses: { "200": json("Health", "alive") } } },
      "/readyz": { get: { summary: "Readiness: model loaded, workers alive, not draining", security: [], responses: { "200": json("Ready", "ready"), "503": json("Ready", "not ready") } } },
      "/metrics": { get: { summary: "Prometheus metrics", security: [], responses: { "200": { description: "text exposition format", content: { "text/plain": {} } } } } },
      "/openapi.json": { get: { summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": {} } } } } },
    },
  };
}
