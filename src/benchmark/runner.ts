/**
 * A benchmark run: suite x editor x preset x seed, each edit scored, rows streamed to
 * results.jsonl. Restarted with the same arguments it resumes; `shard` runs one slice. The editor
 * is any adapter of ./editors (a model folder, a remote images API, a folder of edits made
 * elsewhere); a refused, missing or failed edit is a row with that status, never dropped.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import pLimit from "p-limit";
import { type JudgeScorer, LocalScorer, type ScoreResult, type TokenUsage } from "../../reward/index.js";
import { judgeRepeats, judgedInput, recordScore } from "./judging.js";
import { LocalEditor } from "./editors/local.js";
import type { EditTask, Editor, EditorChoice, PresetChoice } from "./editors/types.js";
import { type ResultRow, ResultsFile, readRows } from "./results.js";
import type { Sample, Suite } from "./suites.js";

export type { EditorChoice, PresetChoice } from "./editors/types.js";

export interface RunPlan {
  suite: Suite;
  /** The editors: model folders (opened here) or any other adapter (its `open`). */
  models: EditorChoice[];
  presets: PresetChoice[];
  seeds: number[];
  outDir: string;
  judge: JudgeScorer | null;
  shard?: { index: number; count: number };
  limit?: number;
  steps?: number;
  /** Refinement rounds per edit (1 = a single pass). */
  refine?: number;
  /** Judge each edit this many times (default 1); the row's scores are the repeats' mean. */
  judgeRepeats?: number;
  /** `spent`: judge tokens of every row done so far, resumed ones included. */
  onProgress?: (done: number, total: number, spent: TokenUsage) => void;
}

export interface Task {
  key: string;
  sample: Sample;
  model: EditorChoice;
  preset: PresetChoice;
  seed: number;
}

export const RESULTS_FILE = "results.jsonl";

/**
 * With --compare, the report compares the compared model against the main one (B minus A) on the
 * first preset; otherwise undefined (the report then compares its first two groups, if any).
 */
export function comparePair(p: { models: Array<{ label: string }>; presets: Array<{ label: string }> }): [string, string] | undefined {
  if (p.models.length < 2) return undefined;
  return [`${p.models[0].label} / ${p.presets[0].label}`, `${p.models[1].label} / ${p.presets[0].label}`];
}

/** Every task of the plan in a fixed order; a shard keeps every count-th one. */
export function planTasks(p: Pick<RunPlan, "suite" | "models" | "presets" | "seeds" | "shard" | "limit">): Task[] {
  const samples = p.suite.samples.slice(0, p.limit);
  const tasks: Task[] = [];
  for (const model of p.models)
    for (const preset of p.presets)
      for (const seed of p.seeds)
        for (const sample of samples) tasks.push({ key: `${model.label}|${preset.label}|${seed}|${sample.id}`, sample, model, preset, seed });
  return p.shard ? tasks.filter((_, i) => i % p.shard!.count === p.shard!.index) : tasks;
}

const EXTENSIONS: Record<string, string> = { png: "png", jpeg: "jpg", webp: "webp" };
/** Named by the task; an edit made elsewhere keeps its own format. */
const imageName = async (key: string, image: Buffer) =>
  `${createHash("sha1").update(key).digest("hex").slice(0, 16)}.${EXTENSIONS[(await sharp(image).metadata().catch(() => ({ format: "png" }))).format ?? "png"] ?? "png"}`;

export async function runBenchmark(plan: RunPlan): Promise<{ rows: ResultRow[]; ran: number; skipped: number }> {
  mkdirSync(path.join(plan.outDir, "images"), { recursive: true });
  const file = path.join(plan.outDir, RESULTS_FILE);
  const results = new ResultsFile(file);
  const done = new Set(readRows(file).map((r) => r.key));
  const tasks = planTasks(plan);
  const todo = tasks.filter((t) => !done.has(t.key));
  const local = new LocalScorer();
  const editors = new Map<EditorChoice, Editor>();
  let finished = tasks.length - todo.length;
  const spent: TokenUsage = { promptTokens: 0, completionTokens: 0 };
  const count = (r: ResultRow) => ((spent.promptTokens += r.judgeUsage?.promptTokens ?? 0), (spent.completionTokens += r.judgeUsage?.completionTokens ?? 0));
  const planned = new Set(tasks.map((t) => t.key));
  for (const r of readRows(file)) if (planned.has(r.key)) count(r);
  plan.onProgress?.(finished, tasks.length, spent);

  const runTask = async (t: Task, editor: Editor) => {
    const source = readFileSync(t.sample.image);
    const row: ResultRow = {
      key: t.key,
      sample: t.sample.id,
      category: t.sample.category,
      ...(t.sample.gedit ? { gedit: t.sample.gedit } : {}),
      instruction: t.sample.instruction,
      image: t.sample.image,
      model: t.model.label,
      preset: t.preset.label,
      seed: t.seed,
      status: "ok",
      latency: { editMs: 0, scoreMs: 0 },
      editor: { kind: editor.kind, name: editor.name },
      ...(t.preset.sweep ? { sweep: t.preset.sweep } : {}),
    };
    try {
      const task: EditTask = { key: t.key, sample: t.sample, source, preset: t.preset, seed: t.seed };
      const out = await editor.edit(task);
      row.latency.editMs = out.latencyMs ?? 0;
      // a local edit's time is latency.editMs already; a remote one's also says what the provider counted
      if (editor.kind === "openai") {
        row.editor!.latencyMs = out.latencyMs;
        if (out.usage) row.editor!.usage = out.usage;
        if (out.attempts !== undefined) row.editor!.attempts = out.attempts;
      }
      if (out.status !== "ok") {
        row.status = out.status;
        row.error = out.error;
      } else {
        const edited = out.image;
        if (out.settings) row.settings = out.settings;
        if (out.refine) row.refine = out.refine;
        let score: ScoreResult | undefined = out.score;
        row.latency.scoreMs = out.scoreMs ?? 0;
        row.edited = await imageName(t.key, edited);
        writeFileSync(path.join(plan.outDir, "images", row.edited), edited);
        const t0 = performance.now();
        const input = await judgedInput(source, edited, t.sample.instruction, t.sample.judgeImage ? readFileSync(t.sample.judgeImage) : undefined);
        // refinement's rounds were scored against the edit's input: the returned edit is scored again as the protocol says
        if (t.sample.judgeImage) score = undefined;
        // synthetic scenes always get their exact truth; the configured scorer gives the judged scores
        const exact = t.sample.synthetic ? await local.scoreWithMap(input, t.sample.synthetic) : undefined;
        const judged = plan.judge ? await judgeRepeats(plan.judge, input, plan.judgeRepeats ?? 1, score) : [score ?? exact ?? (await local.score(input))];
        row.truth = exact?.measures?.truth as ResultRow["truth"];
        row.latency.scoreMs += performance.now() - t0;
        // every refinement round's judge tokens count, not only the returned round's
        recordScore(row, judged, (out.roundScores ?? []).filter((x) => !judged.includes(x)));
      }
    } catch (err) {
      row.status = "edit_failed";
      row.error = (err as Error).message;
    }
    results.append(row);
    count(row);
    plan.onProgress?.(++finished, tasks.length, spent);
  };

  try {
    // one editor after another, in the plan's order; each has as many edits in flight as it allows
    for (const choice of [...new Set(todo.map((t) => t.model))]) {
      const editor = choice.open ? await choice.open() : await LocalEditor.open(choice.label, choice.dir, { steps: plan.steps, refine: plan.refine, judge: plan.judge, local });
      editors.set(choice, editor);
      const limit = pLimit(editor.concurrency);
      await Promise.all(todo.filter((t) => t.model === choice).map((t) => limit(() => runTask(t, editor))));
    }
  } finally {
    await Promise.all([...editors.values()].map((e) => e.dispose()));
  }
  return { rows: readRows(file).filter((r) => planned.has(r.key)), ran: todo.length, skipped: tasks.length - todo.length };
}
