/**
 * Judging one edit for a results row, shared by `bench` and `bench rejudge`: the input the
 * protocol wants, K repeats, and what the row keeps of them (scores, judge record, tokens).
 */
import sharp from "sharp";
import { type EditToScore, type JudgeScorer, PERSPECTIVES, type ScoreResult, type TokenUsage } from "../../reward/index.js";
import { meanOfRepeats, repeatScores } from "./repeatability.js";
import type { ResultRow } from "./results.js";

export function cells(s: ScoreResult): NonNullable<ResultRow["scores"]> {
  const out = {} as NonNullable<ResultRow["scores"]>;
  for (const p of PERSPECTIVES) {
    const r = s.perspectives[p];
    out[p] = {
      status: r.status,
      score: r.score,
      yes: r.yesRate === undefined ? undefined : r.yesRate >= 0.5,
      reason: r.reason,
      raw: r.status === "unscored" || r.status === "refused" ? r.passes.map((x) => x.raw ?? "").join("\n---\n").slice(0, 2000) : undefined,
    };
  }
  return out;
}

/** GEdit-Bench judges the edit, brought to the judged source's size, against that source. */
export async function judgedInput(source: Buffer, edited: Buffer, instruction: string, judged?: Buffer): Promise<EditToScore> {
  if (!judged) return { source, edited, instruction };
  const m = await sharp(judged).metadata();
  return { source: judged, edited: await sharp(edited).resize(m.width, m.height, { fit: "fill" }).png().toBuffer(), instruction };
}

/** A GEdit-Bench row's judged source lies beside its input in the suite's cache (src/benchmark/gedit.ts). */
export const geditJudgeImage = (row: Pick<ResultRow, "gedit" | "image">) => (row.gedit ? row.image.replace(/\.input\.png$/, ".source.png") : undefined);

/**
 * The edit judged `repeats` times, one repeat after another (so a judge's answers to one edit
 * keep their order); `first`, when given, is repeat 1 already judged (refinement's best round).
 */
export async function judgeRepeats(judge: JudgeScorer, input: EditToScore, repeats: number, first?: ScoreResult): Promise<ScoreResult[]> {
  const out = first ? [first] : [];
  while (out.length < repeats) out.push(await judge.score(input, { repeat: out.length }));
  return out;
}

const sumUsage = (rs: Array<TokenUsage | undefined>): TokenUsage => ({
  promptTokens: rs.reduce((a, u) => a + (u?.promptTokens ?? 0), 0),
  completionTokens: rs.reduce((a, u) => a + (u?.completionTokens ?? 0), 0),
});

/**
 * Puts the judged result(s) into the row: scores as the mean of the repeats, each repeat's
 * figures, who judged, and the tokens of these results plus `alsoSpent` (other refinement rounds).
 */
export function recordScore(row: ResultRow, results: ScoreResult[], alsoSpent: ScoreResult[] = []): void {
  const score = meanOfRepeats(results);
  row.scores = cells(score);
  if (score.viescore) row.viescore = score.viescore;
  row.scorer = { backend: score.backend, protocol: score.protocol, version: score.promptVersion, model: score.model };
  if (score.judge) row.judge = score.judge;
  if (score.backend === "judge" || alsoSpent.some((s) => s.backend === "judge")) row.judgeUsage = sumUsage([...results, ...alsoSpent].map((s) => s.usage));
  if (results.length > 1) row.repeats = results.map(repeatScores);
}
