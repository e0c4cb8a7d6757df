/**
 * `bench rejudge RUN --out NEW`: a finished run's edits judged again (another judge, protocol or
 * repeat count) without editing anything. The edits are linked (or copied) into NEW, each row is
 * kept as it was apart from what the judge says, and NEW is a run folder like any other: it
 * resumes, merges and reports the same way.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { JudgeScorer, ScoringProtocol, TokenUsage } from "../../reward/index.js";
import { geditJudgeImage, judgeRepeats, judgedInput, recordScore } from "./judging.js";
import { type ResultRow, ResultsFile, readRows } from "./results.js";
import { RESULTS_FILE } from "./runner.js";

export class RejudgeError extends Error {}

export interface RejudgePlan {
  run: string;
  out: string;
  judge: JudgeScorer;
  protocol: ScoringProtocol;
  repeats: number;
  onProgress?: (done: number, total: number, spent: TokenUsage) => void;
}

/** The run's description for NEW: the same run, judged as this plan says. */
export function rejudgedDescription(run: Record<string, unknown>, p: Pick<RejudgePlan, "protocol" | "repeats">): Record<string, unknown> {
  const { judgeRepeats: _k, protocol: _p, backend: _b, ...rest } = run;
  return { ...rest, backend: "judge", protocol: p.protocol, ...(p.repeats > 1 ? { judgeRepeats: p.repeats } : {}) };
}

export function readRunDescription(dir: string): Record<string, unknown> {
  const file = path.join(dir, "run.json");
  if (!existsSync(path.join(dir, RESULTS_FILE)) || !existsSync(file)) throw new RejudgeError(`${dir} is not a bench output folder (no ${RESULTS_FILE} or run.json)`);
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
}

/** Hard links cost no space; across file systems (or where links are refused) it is a copy. */
function linkOrCopy(from: string, to: string): void {
  if (existsSync(to)) return;
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/** What a row keeps from its first judging: everything but the judge's answers and their cost. */
function unjudged(row: ResultRow): ResultRow {
  const { scores: _s, viescore: _v, scorer: _c, judge: _j, judgeUsage: _u, repeats: _r, ...rest } = row;
  return { ...rest, latency: { ...row.latency, scoreMs: 0 } };
}

export async function rejudgeRun(p: RejudgePlan): Promise<{ rows: ResultRow[]; judged: number; resumed: number; description: Record<string, unknown> }> {
  if (path.resolve(p.run) === path.resolve(p.out)) throw new RejudgeError("--out must be a new folder, not the run being judged again");
  const description = rejudgedDescription(readRunDescription(p.run), p);
  const runFile = path.join(p.out, "run.json");
  if (existsSync(runFile) && JSON.stringify(JSON.parse(readFileSync(runFile, "utf8"))) !== JSON.stringify(description)) {
    throw new RejudgeError(`${p.out} holds a run with other arguments; choose another --out`);
  }
  const source = readRows(path.join(p.run, RESULTS_FILE));
  mkdirSync(path.join(p.out, "images"), { recursive: true });
  writeFileSync(runFile, JSON.stringify(description, null, 2));
  writeFileSync(path.join(p.out, "rejudged.json"), JSON.stringify({ from: path.resolve(p.run), protocol: p.protocol, repeats: p.repeats }, null, 2));
  const file = path.join(p.out, RESULTS_FILE);
  const results = new ResultsFile(file);
  const done = new Map(readRows(file).map((r) => [r.key, r]));
  const spent: TokenUsage = { promptTokens: 0, completionTokens: 0 };
  const count = (r: ResultRow) => ((spent.promptTokens += r.judgeUsage?.promptTokens ?? 0), (spent.completionTokens += r.judgeUsage?.completionTokens ?? 0));
  for (const r of done.values()) count(r);
  const resumed = source.filter((r) => done.has(r.key)).length;
  let finished = resumed;
  p.onProgress?.(finished, source.length, spent);
  let judgedRows = 0;
  for (const old of source) {
    if (done.has(old.key)) continue;
    const row = unjudged(old);
    if (old.status === "ok" && old.edited) {
      const editedFile = path.join(p.run, "images", old.edited);
      const judgedFile = geditJudgeImage(old) ?? old.image;
      for (const f of [editedFile, judgedFile]) if (!existsSync(f)) throw new RejudgeError(`${old.key}: ${f} is gone; the run cannot be judged again without it`);
      linkOrCopy(editedFile, path.join(p.out, "images", old.edited));
      const t0 = performance.now();
      const edited = readFileSync(editedFile);
      const judged = old.gedit ? readFileSync(judgedFile) : undefined;
      const input = await judgedInput(judged ?? readFileSync(old.image), edited, old.instruction, judged);
      recordScore(row, await judgeRepeats(p.judge, input, p.repeats));
      row.latency.scoreMs = performance.now() - t0;
      judgedRows++;
    }
    results.append(row);
    count(row);
    p.onProgress?.(++finished, source.length, spent);
  }
  const keys = new Set(source.map((r) => r.key));
  return { rows: readRows(file).filter((r) => keys.has(r.key)), judged: judgedRows, resumed, description };
}
