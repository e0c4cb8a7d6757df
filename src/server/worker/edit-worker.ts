/**
 * An inference worker thread: onnxruntime-node's run() keeps the thread busy, so edits run here
 * and the server's event loop stays free. Cancellation arrives through a shared flag, because a
 * busy loop of awaited runs would not see a message until the edit ended.
 */
import { parentPort, workerData } from "node:worker_threads";
import { EditInputError, ImageInputError, edit, loadModel, previewMapFor, setDefaultEncodeCacheBytes, setDefaultVaeTiling, warmUp } from "../../../editor/index.js";
import type { FromWorker, ToWorker, WorkerInit } from "./protocol.js";
import { jobEdits } from "./job-edits.js";
import { workerMarker } from "./provenance.js";
import { refineJob } from "./refine-job.js";

const init = workerData as WorkerInit;
const cancelFlag = new Int32Array(init.cancel);
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(m, transfer);

const errorOf = (err: unknown) => ({
  name: (err as Error).name,
  message: (err as Error).message,
  field: err instanceof EditInputError ? err.field : err instanceof ImageInputError ? "image" : undefined,
});

try {
  if (init.encodeCacheMb !== undefined) setDefaultEncodeCacheBytes(init.encodeCacheMb * 2 ** 20);
  if (init.vaeTiling !== undefined) setDefaultVaeTiling(init.vaeTiling);
  const model = await loadModel(init.modelDir, {
    providers: init.providers,
    intraOpThreads: init.ortThreads > 0 ? init.ortThreads : undefined,
    optimizedCacheDir: init.ortCacheDir || undefined,
    log: (m) => process.stderr.write(`${m}\n`),
  });
  const mark = workerMarker(init.provenance, model);
  // ready (and so /readyz) only once every graph has run: a model that loads but cannot edit fails here
  await warmUp(model);
  post({ type: "ready", model: { name: model.manifest.name, takesRewards: model.takesRewards, dir: model.dir, provider: model.unet.provider, manifest: model.manifest } });

  parentPort!.on("message", async (msg: ToWorker) => {
    const { jobId, request: r } = msg;
    Atomics.store(cancelFlag, 0, 0);
    const ctrl = new AbortController();
    try {
      if ((r.refineRounds ?? 1) > 1) {
        const output = await refineJob(model, r, jobId, ctrl, cancelFlag, post, mark);
        post({ type: "done", jobId, output }, output.candidates.map((c) => c.image.buffer as ArrayBuffer));
        return;
      }
      const { stepMs, shared } = jobEdits(jobId, r, r.candidates, cancelFlag, ctrl, post, previewMapFor(model.manifest));
      const candidates = [];
      let first: Awaited<ReturnType<typeof edit>> | undefined;
      let totalMs = 0;
      let ortMs = 0;
      for (let k = 0; k < r.candidates; k++) {
        const res = await edit(model, {
          image: Buffer.from(r.image),
          instruction: r.instruction,
          rewards: r.rewards,
          textGuidance: r.textGuidance,
          imageGuidance: r.imageGuidance,
          seed: (r.seed + k) % 2 ** 32,
          ...shared(k),
        });
        first ??= res;
        totalMs += res.timings.totalMs;
        ortMs += res.timings.ortMs;
        candidates.push({ image: await mark(r, res), seed: res.parameters.seed, keptFraction: res.keptFraction, mask: res.mask ? new Uint8Array(res.mask) : undefined, ...(res.relevance ? { relevance: new Uint8Array(res.relevance) } : {}) });
      }
      post(
        { type: "done", jobId, output: { candidates, width: first!.width, height: first!.height, parameters: first!.parameters, timings: { totalMs, ortMs, stepMs } } },
        candidates.map((c) => c.image.buffer as ArrayBuffer),
      );
    } catch (err) {
      post({ type: "failed", jobId, error: errorOf(err) });
    }
  });
} catch (err) {
  post({ type: "init-failed", error: errorOf(err) });
}
