/**
 * Refinement vs a single pass vs best-of-N at equal compute (issue 16), on held-out synthetic
 * scenes whose truth is exact. The scorer that drives the rounds and picks the best is the exact
 * scorer by default, or the configured judge (--scorer judge); the reported figures are always
 * the exact truth of the image each method returns.
 *
 *   node dist/benchmarks/evaluation/refine-report.js [--model DIR] [--suite DIR] [--rounds N] [--limit N] [--out FILE.md]
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { type EditorModel, type Rewards, edit, loadModel } from "../../editor/index.js";
import { JudgeScorer, LocalScorer, type Scorer, decodeRaster, judgeConfigFrom, scoreSynthetic } from "../../reward/index.js";
import { BUNDLED_MODEL, ROOT } from "../../src/paths.js";
import { type RoundSettings, type Strategy, exactScorer, refine, verdictOf } from "../../src/refine/index.js";
import { type SyntheticSuite, loadSyntheticSuite, sourceFile } from "../../src/benchmark/synthetic-suite.js";

interface Outcome {
  kind: string;
  following: boolean;
  preservationError: number | null;
  edits: number;
  scores: number;
  editMs: number;
  scoreMs: number;
}

type Method = { name: string; run: (i: number) => Promise<Outcome> };

const SEED_STRIDE = 7919; // the same seeds refinement's rounds take (plan.ts)

export async function compareRefinement(
  model: EditorModel,
  suite: SyntheticSuite,
  opts: { rounds: number; scorer: "exact" | "judge"; log?: (s: string) => void },
): Promise<Record<string, Outcome[]>> {
  const local = new LocalScorer();
  const judgeConfig = opts.scorer === "judge" ? judgeConfigFrom() : null;
  if (opts.scorer === "judge" && !judgeConfig) throw new Error("--scorer judge needs a configured judge (REWARD_EDIT_JUDGE_MODEL)");
  const judge = judgeConfig ? new JudgeScorer(judgeConfig) : null;
  const d = model.manifest.defaults;
  const rewards: Rewards = [5, 5, 5];
  const runEdit = async (s: RoundSettings, image: Buffer) =>
    (
      await edit(model, {
        image,
        instruction: s.instruction,
        rewards: model.manifest.rewards ? s.rewards : undefined,
        textGuidance: s.textGuidance,
        imageGuidance: s.imageGuidance,
        seed: s.seed,
        feedback: s.feedback,
        workingSize: true,
      })
    ).image;
  const truth = async (i: number, image: Buffer) => {
    const c = suite.cases[i];
    return scoreSynthetic(c, await decodeRaster(image, { width: c.source.width, height: c.source.height }), suite.palette);
  };
  const scorerFor = (i: number): Scorer => judge ?? exactScorer(local, { case: suite.cases[i], palette: suite.palette });
  const first = (i: number): RoundSettings => ({
    instruction: suite.cases[i].record.instruction,
    rewards,
    textGuidance: d.text_guidance,
    imageGuidance: d.image_guidance,
    seed: 1000 + i,
    from: "source",
  });
  const source = (i: number) => readFileSync(sourceFile(suite, suite.cases[i].record.id));

  const refined = (strategy: Partial<Strategy>) => async (i: number): Promise<Outcome> => {
    const f = first(i);
    const r = await refine({ ...f, source: source(i), rounds: opts.rounds, strategy }, runEdit, scorerFor(i));
    const t = await truth(i, r.rounds[r.best].image);
    return {
      kind: suite.cases[i].record.kind,
      following: t.following,
      preservationError: t.preservationError,
      edits: r.rounds.length,
      scores: r.rounds.length,
      editMs: r.rounds.reduce((a, x) => a + x.editMs, 0),
      scoreMs: r.rounds.reduce((a, x) => a + x.scoreMs, 0),
    };
  };
  const bestOf = async (i: number): Promise<Outcome> => {
    const f = first(i);
    let best: { merit: number; image: Buffer } | null = null;
    let editMs = 0;
    let scoreMs = 0;
    for (let k = 0; k < opts.rounds; k++) {
      const t0 = performance.now();
      const image = await runEdit({ ...f, seed: (f.seed + SEED_STRIDE * k) >>> 0 }, source(i));
      const t1 = performance.now();
      const merit = verdictOf(await scorerFor(i).score({ source: source(i), edited: image, instruction: f.instruction }), rewards).merit;
      scoreMs += performance.now() - t1;
      editMs += t1 - t0;
      if (!best || merit > best.merit) best = { merit, image };
    }
    const t = await truth(i, best!.image);
    return { kind: suite.cases[i].record.kind, following: t.following, preservationError: t.preservationError, edits: opts.rounds, scores: opts.rounds, editMs, scoreMs };
  };
  const single = async (i: number): Promise<Outcome> => {
    const t0 = performance.now();
    const image = await runEdit(first(i), source(i));
    const t = await truth(i, image);
    return { kind: suite.cases[i].record.kind, following: t.following, preservationError: t.preservationError, edits: 1, scores: 0, editMs: performance.now() - t0, scoreMs: 0 };
  };
  const methods: Method[] = [
    { name: "single pass", run: single },
    { name: `best-of-${opts.rounds}`, run: bestOf },
    { name: `refine ${opts.rounds} (seed only, stops when met)`, run: refined({ guidance: false }) },
    { name: `refine ${opts.rounds} (guidance)`, run: refined({ fromLast: false }) },
    { name: `refine ${opts.rounds} (guidance, from last result)`, run: refined({ fromLast: true }) },
    { name: `refine ${opts.rounds} (guidance + feedback text)`, run: refined({ fromLast: false, feedback: true }) },
  ];
  const out: Record<string, Outcome[]> = {};
  for (const m of methods) {
    const t0 = Date.now();
    out[m.name] = [];
    for (let i = 0; i < suite.cases.length; i++) out[m.name].push(await m.run(i));
    const f = out[m.name].filter((o) => o.following).length / out[m.name].length;
    opts.log?.(`${m.name}: following ${(100 * f).toFixed(1)} % (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  return out;
}

export function refinementTable(results: Record<string, Outcome[]>): string {
  const kinds = [...new Set(Object.values(results)[0].map((o) => o.kind))].sort();
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const pct = (os: Outcome[]) => `${((100 * os.filter((o) => o.following).length) / Math.max(1, os.length)).toFixed(1)} %`;
  const head = `| method | ${kinds.map((k) => `${k} follow`).join(" | ")} | overall follow | preservation err | edits / scene | scorer calls / scene | ms / scene (edit + score) |`;
  const sep = `|${" --- |".repeat(kinds.length + 6)}`;
  const rows = Object.entries(results).map(([name, os]) => {
    const pres = os.map((o) => o.preservationError).filter((x): x is number => x !== null);
    return `| ${name} | ${kinds.map((k) => pct(os.filter((o) => o.kind === k))).join(" | ")} | ${pct(os)} | ${mean(pres).toFixed(4)} | ${mean(os.map((o) => o.edits)).toFixed(2)} | ${mean(os.map((o) => o.scores)).toFixed(2)} | ${mean(os.map((o) => o.editMs)).toFixed(0)} + ${mean(os.map((o) => o.scoreMs)).toFixed(0)} |`;
  });
  return [head, sep, ...rows].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: BUNDLED_MODEL },
      suite: { type: "string", default: path.join(ROOT, "models", "heldout-v2", "scenes") },
      rounds: { type: "string", default: "3" },
      limit: { type: "string" },
      scorer: { type: "string", default: "exact" },
      out: { type: "string" },
    },
  });
  if (values.scorer !== "exact" && values.scorer !== "judge") throw new Error(`--scorer must be exact or judge, got "${values.scorer}"`);
  const suite = await loadSyntheticSuite(values.suite!, values.limit ? Number(values.limit) : undefined);
  const model = await loadModel(values.model!);
  const rounds = Number(values.rounds);
  const results = await compareRefinement(model, suite, { rounds, scorer: values.scorer, log: (s) => process.stderr.write(s + "\n") });
  await model.dispose();
  const md = `#### ${path.relative(ROOT, suite.dir)}: ${suite.cases.length} scenes, ${rounds} rounds, scorer ${values.scorer}\n${refinementTable(results)}\n`;
  process.stdout.write(md);
  if (values.out) writeFileSync(values.out, md);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
