/**
 * A refinement job inside the inference worker: rounds need the model between scorings, and
 * keeping the loop here keeps each round's image off the message channel until the end.
 * The scorer is the server's: the judge when one is configured (same environment), else local.
 */
import { DEFAULT_REWARDS, type EditResult, type EditorModel, edit } from "../../../editor/index.js";
import { JudgeScorer, LocalScorer, judgeConfigFrom } from "../../../reward/index.js";
import { refine } from "../../refine/index.js";
import { jobEdits } from "./job-edits.js";
import type { Candidate, EditJobOutput, EditJobRequest, FromWorker } from "./protocol.js";
import type { workerMarker } from "./provenance.js";

export async function refineJob(
  model: EditorModel,
  r: EditJobRequest,
  jobId: string,
  ctrl: AbortController,
  cancelFlag: Int32Array,
  post: (m: FromWorker) => void,
  mark: ReturnType<typeof workerMarker>,
): Promise<EditJobOutput> {
  const judge = judgeConfigFrom();
  const scorer = judge ? new JudgeScorer(judge) : new LocalScorer();
  const d = model.manifest.defaults;
  const rounds = r.refineRounds!;
  const results: EditResult[] = [];
  const { stepMs, shared } = jobEdits(jobId, r, rounds, cancelFlag, ctrl, post);
  const out = await refine(
    {
      source: Buffer.from(r.image),
      instruction: r.instruction,
      mask: r.editMask ? Buffer.from(r.editMask) : undefined,
      rewards: r.rewards ?? DEFAULT_REWARDS,
      textGuidance: r.textGuidance ?? d.text_guidance,
      imageGuidance: r.imageGuidance ?? d.image_guidance,
      seed: r.seed,
      rounds,
      signal: ctrl.signal,
    },
    async (s, image) => {
      const k = results.length;
      const res = await edit(model, {
        image,
        instruction: s.instruction,
        rewards: s.rewards,
        feedback: s.feedback,
        textGuidance: s.textGuidance,
        imageGuidance: s.imageGuidance,
        seed: s.seed,
        ...shared(k),
      });
      results.push(res);
      return res.image;
    },
    scorer,
  );
  const images = await Promise.all(results.map((res, i) => mark(r, res, { round: i + 1, from: out.rounds[i].settings.from })));
  const candidates: Candidate[] = results.map((res, i) => ({
    image: images[i],
    seed: res.parameters.seed,
    keptFraction: res.keptFraction,
    mask: res.mask ? new Uint8Array(res.mask) : undefined,
  }));
  return {
    candidates,
    refine: {
      best: out.best,
      stopped: out.stopped,
      scorer: scorer.name,
      rounds: out.rounds.map((x) => ({
        round: x.round,
        seed: x.settings.seed,
        rewards: x.settings.rewards,
        textGuidance: x.settings.textGuidance,
        imageGuidance: x.settings.imageGuidance,
        from: x.settings.from,
        feedback: x.settings.feedback ?? null,
        changes: x.changes,
        scores: x.score,
        merit: x.verdict.merit,
        met: x.verdict.met,
      })),
    },
    width: results[0].width,
    height: results[0].height,
    parameters: results[0].parameters,
    timings: {
      totalMs: results.reduce((a, x) => a + x.timings.totalMs, 0),
      ortMs: results.reduce((a, x) => a + x.timings.ortMs, 0),
      stepMs,
    },
  };
}
