/** POST /v1/edits: one edit, answered when it is done (the image, or JSON). */
import express from "express";
import type { editSubmission } from "../edit-submission.js";
import type { editResults } from "../results.js";
import type { Upload } from "../upload.js";
import { route } from "./route.js";

export function editsRouter(d: { submission: ReturnType<typeof editSubmission>; results: ReturnType<typeof editResults>; upload: Upload }): express.Router {
  const r = express.Router();
  r.post(
    "/",
    d.upload(["image", "mask", "like"]),
    // a retry with the Idempotency-Key of an edit already made gets its answer again (idempotency.ts)
    d.submission.idempotency.guard("POST /v1/edits", "sync"),
    route(async (req, res) => {
      const { job: submitted, form } = await d.submission.submitRequest(req, res);
      await d.submission.idempotency.submitted(res, submitted);
      const job = await d.submission.awaitEdit(submitted, res);
      await d.results.sendResult(job, res, form.response_format);
    }),
  );
  return r;
}
