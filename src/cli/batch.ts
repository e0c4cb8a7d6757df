/** `reward-edit batch`: a folder or manifest of catalogue photos, edited on the worker pool, resumable. */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { pino } from "pino";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { type OutputFormat, OUTPUT_FORMATS } from "../../editor/index.js";
import { JudgeScorer, LocalScorer, judgeConfigFrom } from "../../reward/index.js";
import { ManifestError, readBatchInput } from "../batch/manifest.js";
import { runBatch } from "../batch/run.js";
import { sessionOptionsFromEnv } from "../config/session.js";
import { serverConfigFrom } from "../config/server.js";
import { WebhookSender } from "../server/webhooks.js";
import { loadPresets } from "../presets/index.js";
import { addEditFlags, parseEditFlags } from "./edit-flags.js";
import { cliProvenance } from "./provenance.js";
import { CliError, parseNumber } from "./errors.js";

export function registerBatch(program: Command): void {
  const cmd = program
    .command("batch")
    .description("edit a folder of photos with one instruction, or the rows of a .jsonl / .csv manifest (image, instruction, rewards or preset, mask, seed); resumable")
    .requiredOption("--input <dir|file>", "a folder of photos, or a manifest: .jsonl (one JSON object per line) or .csv (a header row); paths relative to the manifest")
    .option("--instruction <text>", "the instruction for every photo (a manifest row's own wins)")
    .requiredOption("--out <dir>", "results, summary.jsonl and index.html (the contact sheet) go here; run again to resume");
  addEditFlags(cmd)
    .option("--format <fmt>", `output format: ${OUTPUT_FORMATS.join(", ")}`, "png")
    .option("--workers <n>", 'inference workers ("auto": one per core for a small model, one for a large one)', "auto")
    .option("--no-score", "do not score the results (scores come from the judge when configured, else the local scorer)")
    .option("--webhook <url>", "call this URL for every finished photo and once at the end, signed with REWARD_EDIT_WEBHOOK_SECRET (docs/progress.md)")
    .action(async (o) => {
      if (!OUTPUT_FORMATS.includes(o.format)) throw new CliError(`--format must be one of ${OUTPUT_FORMATS.join(", ")}, got "${o.format}"`);
      if (o.background === "transparent" && o.format === "jpeg") throw new CliError("--background transparent needs --format png or webp (JPEG has no alpha channel)");
      const workers = o.workers === "auto" ? "auto" : parseNumber("--workers", o.workers, { integer: true, min: 1, max: 64 });
      const f = await parseEditFlags(o);
      if (f.workingSize) throw new CliError("--working-size is not available for batches");
      let rows;
      try {
        rows = await readBatchInput(o.input, o.instruction);
      } catch (err) {
        if (err instanceof ManifestError) throw new CliError(err.message);
        throw err;
      }
      const hooks = o.webhook ? await batchWebhooks(o.webhook) : null;
      const provenance = await cliProvenance();
      const judge = judgeConfigFrom();
      const session = sessionOptionsFromEnv();
      const bar = process.stderr.isTTY ? new SingleBar({ format: "batch [{bar}] {value}/{total} photos | {failed} failed | ETA {eta_formatted}", stream: process.stderr }) : null;
      let finished = 0;
      let failedNow = 0;
      let total = 0;
      const t0 = Date.now();
      const outcome = await runBatch({
        rows,
        outDir: o.out,
        modelDir: f.modelDir,
        requested: f.requested,
        abilities: { deepCache: f.deepCache },
        presets: loadPresets(),
        seed: f.seed ?? 0,
        detail: f.detail,
        mask: f.editMask,
        maskMode: f.maskMode,
        format: o.format as OutputFormat,
        workers,
        providers: session.providers ?? ["cpu"],
        ortThreads: session.intraOpThreads ?? 0,
        provenance,
        scorer: o.score ? (judge ? new JudgeScorer(judge) : new LocalScorer()) : undefined,
        onStart: (todo, done, all) => {
          total = todo;
          if (done) process.stderr.write(`resuming: ${done} of ${all} photos already in ${path.join(o.out, "summary.jsonl")}\n`);
          bar?.start(todo, 0, { failed: 0 });
        },
        onRow: (r) => {
          hooks?.send(r.error ? "batch.photo.failed" : "batch.photo.succeeded", r);
          finished++;
          if (r.error) failedNow++;
          if (bar) bar.update(finished, { failed: failedNow });
          else {
            // no terminal: one line per photo, with the same estimate the bar shows
            const eta = finished < total ? ` | ETA ${Math.round(((Date.now() - t0) / finished) * (total - finished) / 1000)}s` : "";
            process.stderr.write(`[${finished}/${total}] ${r.input}: ${r.error ? `error: ${r.error}` : `${r.output} (${(r.ms / 1000).toFixed(1)} s)`}${eta}\n`);
          }
        },
      });
      bar?.stop();
      hooks?.send("batch.completed", outcome);
      if (hooks && !(await hooks.settled())) process.stderr.write("batch: some webhook calls were not delivered (see above)\n");
      process.stderr.write(
        `batch: ${outcome.edited} edited, ${outcome.failed} failed, ${outcome.skipped} already done, ${(outcome.wallMs / 1000).toFixed(1)} s; ` +
          `${outcome.summary}, contact sheet ${outcome.contactSheet}\n`,
      );
      if (outcome.failed) process.exitCode = 2;
    });
}

/** --webhook: one signed call per finished photo and one at the end, each retried (webhooks.ts). */
async function batchWebhooks(url: string) {
  const config = serverConfigFrom(process.env);
  const logger = pino({ level: process.env.LOG_LEVEL ?? "warn" }, pino.destination(2));
  const sender = new WebhookSender(config, logger, () => "");
  let checked: string;
  try {
    checked = (await sender.check(url))!;
  } catch (err) {
    throw new CliError(`--webhook: ${(err as Error).message.replace(/^webhook_url /, "")}`);
  }
  const run = randomUUID();
  let n = 0;
  const pending: Promise<boolean>[] = [];
  return {
    send(type: string, data: unknown) {
      const payload = JSON.stringify({ type, timestamp: new Date().toISOString(), data });
      pending.push(sender.deliver({ id: `msg_batch_${run}_${n++}`, url: checked, payload }, { keepAlive: true }));
    },
    /** Waits for every call; false when one was given up. */
    async settled() {
      return (await Promise.all(pending)).every(Boolean);
    },
  };
}
