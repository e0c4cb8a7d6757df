/**
 * What a queue reports of a running job as it goes (the job events of ../events.ts are made of
 * it): kept apart from the stream so the queue types and the queues import nothing back.
 */

/** The newest live preview of the forming image: a small PNG (editor/pipeline/preview.ts). */
export interface JobPreview {
  step: number;
  steps: number;
  png: Uint8Array;
  width: number;
  height: number;
}

/** Progress as a queue reports it live; `preview` as a data URL, ready to send. */
export interface LiveProgress {
  step: number;
  steps: number;
  elapsed_ms: number;
  eta_ms: number | null;
  preview?: { url: string; width: number; height: number; step: number };
}

export type LiveUpdate = { kind: "started" } | { kind: "progress"; progress: LiveProgress } | { kind: "final" };

export const TERMINAL_ID = 1_000_000_000;

/**
 * The progress of a running job with the newest preview there is: a preview finishes encoding
 * while the next steps run, so it is often a step or two behind (its own `step` says which).
 */
export function liveProgress(p: { step: number; steps: number }, startedAt: number | undefined, preview?: JobPreview): LiveProgress {
  const elapsed = startedAt === undefined ? 0 : Date.now() - startedAt;
  const out: LiveProgress = {
    step: p.step,
    steps: p.steps,
    elapsed_ms: elapsed,
    eta_ms: p.step > 0 && p.steps > 0 ? Math.round((elapsed / p.step) * (p.steps - p.step)) : null,
  };
  if (preview) out.preview = { url: dataUrl(preview), width: preview.width, height: preview.height, step: preview.step };
  return out;
}

/** Each preview is encoded once, however many streams send it. */
const urls = new WeakMap<JobPreview, string>();
function dataUrl(p: JobPreview): string {
  let u = urls.get(p);
  if (!u) urls.set(p, (u = `data:image/png;base64,${Buffer.from(p.png).toString("base64")}`));
  return u;
}

