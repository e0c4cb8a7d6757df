/**
 * A benchmark run: suite x model x preset x seed, each edit scored, rows streamed to
 * results.jsonl. Restarted with the same arguments it resumes; `shard` runs one slice.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type EditorModel, type Rewards, edit, loadModel } from "../../editor/index.js";
import { type JudgeScorer, LocalScorer, type ScoreResult, type TokenUsage } from "../../reward/index.js";
import { exactScorer, refine } from "../refine/index.js";
import { judgeRepeats, judgedInput, recordScore } from "./judging.js";
import { type ResultRow, ResultsFile, readRows } from "./results.js";
import type { Sample, Suite } from "./suites.js";

export interface PresetChoice {
  label: string;
  rewards?: Rewards;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
}

export interface RunPlan {
  suite: Suite;
  models: Array<{ label: string; dir: string }>;
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
  model: { label: string; dir: string };
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

const imageName = (key: string) => `${createHash("sha1").update(key).digest("hex").slice(0, 16)}.png`;

export async function runBenchmark(plan: RunPlan): Promise<{ rows: ResultRow[]; ran: number; skipped: number }> {
  mkdirSync(path.join(plan.outDir, "images"), { recursive: true });
  const file = path.join(plan.outDir, RESULTS_FILE);
  const results = new ResultsFile(file);
  const done = new Set(readRows(file).map((r) => r.key));
  const tasks = planTasks(plan);
  const todo = tasks.filter((t) => !done.has(t.key));
  const local = new LocalScorer();
  const models = new Map<string, EditorModel>();
  let finished = tasks.length - todo.length;
  const spent: TokenUsage = { promptTokens: 0, completionTokens: 0 };
  const count = (r: ResultRow) => ((spent.promptTokens += r.judgeUsage?.promptTokens ?? 0), (spent.completionTokens += r.judgeUsage?.completionTokens ?? 0));
  const planned = new Set(tasks.map((t) => t.key));
  for (const r of readRows(file)) if (planned.has(r.key)) count(r);
  plan.onProgress?.(finished, tasks.length, spent);
  try {
    for (const t of todo) {
      const model = models.get(t.model.dir) ?? (await loadModel(t.model.dir));
      models.set(t.model.dir, model);
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
      };
      try {
        const defaults = model.manifest.defaults;
        const runEdit = async (o: { rewards?: Rewards; textGuidance?: number; imageGuidance?: number; seed: number; feedback?: string }, image: Buffer) =>
          edit(model, { image, instruction: t.sample.instruction, steps: plan.steps ?? t.preset.steps, ...o });
        let edited: Buffer;
        let score: ScoreResult | undefined;
        let roundScores: ScoreResult[] = [];
        if ((plan.refine ?? 1) > 1) {
          // the configured judge drives the rounds; synthetic scenes without one use their exact truth
          const scorer = plan.judge ?? (t.sample.synthetic ? exactScorer(local, t.sample.synthetic) : local);
          const rr = await refine(
            {
              source,
              instruction: t.sample.instruction,
              rewards: t.preset.rewards ?? [5, 5, 5],
              textGuidance: t.preset.textGuidance ?? defaults.text_guidance,
              imageGuidance: t.preset.imageGuidance ?? defaults.image_guidance,
              seed: t.seed,
              rounds: plan.refine!,
            },
            async (s, image) =>
              (await runEdit({ rewards: s.rewards, textGuidance: s.textGuidance, imageGuidance: s.imageGuidance, seed: s.seed, feedback: s.feedback }, image)).image,
            scorer,
          );
          const best = rr.rounds[rr.best];
          edited = best.image;
          row.settings = { rewards: model.takesRewards ? best.settings.rewards : null, steps: plan.steps ?? t.preset.steps ?? defaults.steps, textGuidance: best.settings.textGuidance, imageGuidance: best.settings.imageGuidance, seed: best.settings.seed };
          score = best.score;
          roundScores = rr.rounds.map((r) => r.score);
          row.latency.editMs = rr.rounds.reduce((a, r) => a + r.editMs, 0);
          row.latency.scoreMs = rr.rounds.reduce((a, r) => a + r.scoreMs, 0);
          row.refine = {
            rounds: rr.rounds.length,
            best: rr.best,
            stopped: rr.stopped,
            changes: rr.rounds.map((r) => r.changes),
            merits: rr.rounds.map((r) => r.verdict.merit),
          };
        } else {
          const r = await runEdit({ rewards: t.preset.rewards, textGuidance: t.preset.textGuidance, imageGuidance: t.preset.imageGuidance, seed: t.seed }, source);
          row.latency.editMs = r.timings.totalMs;
          edited = r.image;
          const p = r.parameters;
          row.settings = { rewards: p.rewardsApplied ? p.rewards : null, steps: p.steps, textGuidance: p.textGuidance, imageGuidance: p.imageGuidance, seed: p.seed };
        }
        row.edited = imageName(t.key);
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
        recordScore(row, judged, roundScores.filter((s) => !judged.includes(s)));
      } catch (err) {
        row.status = "edit_failed";
        row.error = (err as Error).message;
      }
      results.append(row);
      count(row);
      plan.onProgress?.(++finished, tasks.length, spent);
    }
  } finally {
    await Promise.all([...models.values()].map((m) => m.dispose()));
  }
  return { rows: readRows(file).filter((r) => planned.has(r.key)), ran: todo.length, skipped: tasks.length - todo.length };
}
