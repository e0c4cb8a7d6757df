/**
 * A finished edit as the API answers it: best-of-N scoring once per job on this replica, the image
 * or JSON result with its headers, and the job's status view. Shared by /v1/edits and /v1/jobs.
 */
import type { Request, Response } from "express";
import { PERSPECTIVES, type ScoreResult, type Scorer } from "../../reward/index.js";
import type { ServerConfig } from "../config/server.js";
import { failureOf } from "./edit-submission.js";
import { AppError } from "./errors.js";
import type { JobQueue, JobView, ModelInfo } from "./queue/types.js";
import type { EditJobOutput } from "./worker/protocol.js";

const MIME = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" } as const;

/** JSON safe for an HTTP header: non-ASCII (an instruction in any language) as \u escapes. */
const headerJson = (v: unknown) => JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** Every round of a refined job, with its image, for the JSON response. */
function refineView(out: EditJobOutput, best: number) {
  const r = out.refine!;
  return {
    scorer: r.scorer,
    stopped: r.stopped,
    chosen_round: best + 1,
    rounds: r.rounds.map((x, i) => ({
      round: x.round,
      seed: x.seed,
      rewards: x.rewards,
      text_guidance: x.textGuidance,
      image_guidance: x.imageGuidance,
      from: x.from,
      feedback: x.feedback,
      changes: x.changes,
      met: x.met,
      merit: x.merit,
      scores: x.scores,
      image: Buffer.from(out.candidates[i].image).toString("base64"),
    })),
  };
}

/** Mean of the perspectives a scorer could judge: the best-of-N criterion. */
export function overall(s: ScoreResult): number | null {
  const v = PERSPECTIVES.map((p) => s.perspectives[p]).filter((x) => x.status === "scored" && x.score !== undefined);
  return v.length ? v.reduce((a, x) => a + x.score!, 0) / v.length : null;
}

/**
 * A photo sent to a model that has only seen small synthetic scenes is edited anyway (it may be
 * what the user wants to see), but the response says why the result will disappoint.
 */
export function domainWarnings(m: ModelInfo | undefined, width: number, height: number): string[] {
  const dom = m?.manifest.domain;
  if (dom?.kind !== "synthetic" || Math.max(width, height) <= 2 * dom.working_size) return [];
  return [
    `model ${m!.name} was trained only on ${dom.working_size} px synthetic scenes; a ${width}x${height} photo is edited at ${dom.working_size} px and the result will be blurred and often wrong (README: "Use a real model")`,
  ];
}

export interface ResultDeps {
  config: ServerConfig;
  queue: JobQueue;
  scorer: Scorer;
}

export function editResults(d: ResultDeps) {
  const { config, queue, scorer } = d;
  /**
   * Scores the candidates once per job on this replica (best-of-N), kept as long as results are;
   * the promise is cached, so concurrent requests for one result score it once.
   */
  type Final = Awaited<ReturnType<typeof computeFinal>>;
  const finals = new Map<string, { final: Promise<Final>; at: number }>();
  const finalize = (job: JobView): Promise<Final> => {
    const now = Date.now();
    for (const [id, f] of finals) if (now - f.at > config.jobTtlMs) finals.delete(id);
    let f = finals.get(job.id);
    if (!f) {
      f = { final: computeFinal(job), at: now };
      f.final.catch(() => finals.delete(job.id));
      finals.set(job.id, f);
    }
    return f.final;
  };
  const computeFinal = async (job: JobView) => {
    const out = job.output!;
    // a refined job was scored round by round in the worker: its verdicts are the scores
    if (out.refine) return { best: out.refine.best, scores: out.refine.rounds.map((r) => r.scores) };
    const source = Buffer.from(job.request.image);
    const scores = await Promise.all(
      out.candidates.map((c) =>
        scorer.score({ source, edited: Buffer.from(c.image), instruction: job.request.instruction, mask: job.request.editMask ? Buffer.from(job.request.editMask) : undefined }).catch(() => null),
      ),
    );
    const merit = scores.map((s) => (s ? overall(s) : null) ?? -Infinity);
    const best = merit.indexOf(Math.max(...merit));
    return { best, scores };
  };

  const sendResult = async (job: JobView, res: Response, as: "image" | "json", candidate?: number) => {
    const final = await finalize(job);
    const { scores } = final;
    const out = job.output!;
    // ?candidate=k asks for one candidate by position (how the OpenAI endpoint's urls name the n images)
    const best = candidate ?? final.best;
    const chosen = out.candidates[best];
    const format = job.request.format;
    const params = { ...out.parameters, seed: chosen.seed, preset: job.meta.preset };
    const warnings = domainWarnings(queue.model, out.width, out.height);
    if (as === "json") {
      res.json({
        id: job.id,
        image: Buffer.from(chosen.image).toString("base64"),
        format,
        width: out.width,
        height: out.height,
        parameters: params,
        scores: scores[best],
        candidates: out.candidates.map((c, i) => ({ seed: c.seed, overall: scores[i] ? overall(scores[i]!) : null, chosen: i === best })),
        ...(out.refine ? { refine: refineView(out, best) } : {}),
        detail: {
          mode: params.detail,
          kept_fraction: chosen.keptFraction,
          mask: chosen.mask ? Buffer.from(chosen.mask).toString("base64") : null,
          ...(chosen.relevance ? { relevance: Buffer.from(chosen.relevance).toString("base64") } : {}),
        },
        timings: { total_ms: out.timings.totalMs, ort_ms: out.timings.ortMs },
        warnings,
      });
      return;
    }
    if (warnings.length) res.set("x-reward-edit-warning", headerJson(warnings));
    res.set({
      "x-reward-edit-seed": String(chosen.seed),
      ...(chosen.keptFraction !== null ? { "x-reward-edit-kept-fraction": chosen.keptFraction.toFixed(4) } : {}),
      "x-reward-edit-rewards-applied": String(params.rewardsApplied),
      "x-reward-edit-parameters": headerJson(params),
      "x-reward-edit-scores": headerJson(
        Object.fromEntries(PERSPECTIVES.map((p) => [p, scores[best]?.perspectives[p].score ?? null])),
      ),
    });
    res.type(MIME[format]).send(Buffer.from(chosen.image));
  };

  const errorView = (e: AppError) => ({ code: e.code, message: e.message, field: e.field });
  const jobView = (job: JobView) => ({
    id: job.id,
    state: job.state,
    progress: job.state === "succeeded" ? 100 : job.progress.steps ? Math.round((100 * job.progress.step) / job.progress.steps) : 0,
    step: job.progress.step,
    steps: job.progress.steps,
    queue_position: job.position,
    replica: job.replica ?? null,
    created_at: new Date(job.createdAt).toISOString(),
    error: job.state === "failed" || job.state === "cancelled" ? errorView(failureOf(job)) : undefined,
    result: job.state === "succeeded" && !job.evicted ? `/v1/jobs/${job.id}/result` : undefined,
    ...(job.evicted ? { evicted: true } : {}),
  });
  const notFound = () => new AppError(404, "not_found", "no such job (unknown or expired)", "id");
  /** A job of another key is as unknown as one that never was. */
  const findJob = async (req: Request, res: Response, o: { blobs?: boolean } = {}) => {
    const job = await queue.get(String(req.params.id), o);
    if (!job || (job.meta.owner ?? null) !== (res.locals.owner ?? null)) throw notFound();
    return job;
  };


  /** Forgets a job's scores (its result was deleted). */
  const forget = (id: string) => finals.delete(id);

  return { finalize, sendResult, jobView, findJob, notFound, forget };
}
