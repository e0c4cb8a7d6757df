/**
 * What every edit of one job shares, whether the job is a plain edit, best-of-N or refinement:
 * the request's pipeline settings, cancellation, and progress counted over all the job's edits.
 * The shared cancel flag is checked between steps because a message would not arrive while ORT
 * keeps the thread busy.
 */
import { type EditOptions, type LatentEstimate, type PreviewMap, type StepProgress, previewPng } from "../../../editor/index.js";
import type { EditJobRequest, FromWorker } from "./protocol.js";

export function jobEdits(
  jobId: string,
  r: EditJobRequest,
  edits: number,
  cancelFlag: Int32Array,
  ctrl: AbortController,
  post: (m: FromWorker) => void,
  /** Live previews with this map (null or absent: none). */
  preview?: PreviewMap | null,
) {
  // With previews a step's progress goes out with its preview, one message per step; one encoding
  // at a time, so a step that ends while the last is still encoding goes out without one.
  let encoding = false;
  const onEstimate = (k: number) => (e: LatentEstimate) => {
    const step = k * e.steps + e.step;
    const steps = edits * e.steps;
    if (encoding || !preview) {
      post({ type: "progress", jobId, step, steps });
      return;
    }
    encoding = true;
    previewPng(e, preview)
      .then(({ png, width, height }) => post({ type: "progress", jobId, step, steps, preview: { png: new Uint8Array(png), width, height } }))
      .catch(() => post({ type: "progress", jobId, step, steps }))
      .finally(() => (encoding = false));
  };
  const stepMs: number[] = [];
  let last = performance.now();
  /** The options of the job's k-th edit (0-based) that do not vary between its edits. */
  const shared = (k: number): Partial<EditOptions> => ({
    steps: r.steps,
    ...r.sampling,
    format: r.format,
    detail: r.detail,
    mask: r.detail === "keep",
    editMask: r.editMask ? Buffer.from(r.editMask) : undefined,
    maskMode: r.maskMode,
    signal: ctrl.signal,
    ...(preview ? { onEstimate: onEstimate(k) } : {}),
    onStep: (p: StepProgress) => {
      const now = performance.now();
      stepMs.push(now - last);
      last = now;
      if (Atomics.load(cancelFlag, 0) === 1) ctrl.abort();
      if (!preview) post({ type: "progress", jobId, step: k * p.steps + p.step, steps: edits * p.steps });
    },
  });
  return { stepMs, shared };
}
