/**
 * What a report says about its judge and its cost (issue 39, items 4 and 5): who judged the rows
 * (and whether more than one judge did), how repeatable the judge was, the tokens spent and the
 * latencies. Each summary is a plain object with a one-line `line` for summaries and logs.
 */
import type { JudgeRecord } from "../../reward/index.js";
import { percentile } from "./metrics.js";
import { type Figure, type Repeatability, repeatability } from "./repeatability.js";
import type { ResultRow } from "./results.js";

/** Everything that makes two judges different; the repeat count is how often one judge was asked, not who. */
export function judgeIdentity(j: JudgeRecord): string {
  return JSON.stringify(WHO.map((k) => j[k] ?? null));
}

const WHO = ["host", "model", "answeredModel", "temperature", "seed", "maxTokens", "promptHash", "protocol", "protocolVersion"] as const satisfies ReadonlyArray<keyof JudgeRecord>;

/** e.g. `gpt-4o (answered gpt-4o-2024-08-06) at api.openai.com, temperature 0, seed 7, mrc-v1 prompts sha256 1a2b3c4d5e6f`. */
export function judgeLabel(j: JudgeRecord): string {
  const parts = [
    `${j.model}${j.answeredModel ? ` (answered ${j.answeredModel})` : " (answered model not reported)"} at ${j.host}`,
    j.temperature !== undefined ? `temperature ${j.temperature}` : "temperature unset",
    ...(j.seed !== undefined ? [`seed ${j.seed}`] : []),
    ...(j.maxTokens !== undefined ? [`max tokens ${j.maxTokens}`] : []),
    `${j.protocolVersion} prompts sha256 ${j.promptHash.slice(0, 12)}`,
  ];
  return parts.join(", ");
}

export interface JudgeSummary {
  /** Each distinct judge with how many rows it judged, most rows first. */
  judges: Array<JudgeRecord & { rows: number; label: string }>;
  /** True when the rows were judged by more than one judge. */
  mixed: boolean;
  /** With mixed judges: one label per judge, for the report to name them. */
  mixedJudges?: string[];
  repeatability?: Repeatability;
  line: string;
}

/** The judges that judged the rows (none for locally scored rows), most rows first. */
export function distinctJudges(rows: ResultRow[]): Array<JudgeRecord & { rows: number; label: string }> {
  const by = new Map<string, JudgeRecord & { rows: number; label: string }>();
  for (const r of rows) {
    if (!r.judge) continue;
    const id = judgeIdentity(r.judge);
    const seen = by.get(id);
    if (seen) seen.rows++;
    else by.set(id, { ...r.judge, rows: 1, label: judgeLabel(r.judge) });
  }
  return [...by.values()].sort((a, b) => b.rows - a.rows || (a.label < b.label ? -1 : 1));
}

const fix = (x: number | null | undefined, d = 2) => (x === null || x === undefined ? "undefined" : x.toFixed(d));
const FIGURE_NAMES: Record<Figure, string> = { following: "Following", preserving: "Preserving", quality: "Quality", sc: "SC", pq: "PQ", o: "O" };

export function repeatabilityLine(r: Repeatability): string {
  const per = Object.entries(r.figures).map(
    ([f, x]) => `${FIGURE_NAMES[f as Figure]} ICC ${fix(x.icc)}, within-edit SD ${fix(x.meanWithinSd, 3)}, changed ${x.changedShare === null ? "n/a" : `${(100 * x.changedShare).toFixed(0)} %`} of ${x.n}`,
  );
  return `${r.repeats} repeats per edit: ${per.join("; ")}`;
}

export function judgeSummary(rows: ResultRow[]): JudgeSummary {
  const judges = distinctJudges(rows);
  const rep = repeatability(rows);
  const mixed = judges.length > 1;
  const who = !judges.length
    ? "Judge: none (no row was judged by a VLM judge)"
    : mixed
      ? `Judges MIXED (${judges.length} judges; merged with --allow-mixed-judges, figures average unlike judges): ${judges.map((j) => `${j.label} [${j.rows} rows]`).join("; ")}`
      : `Judge: ${judges[0].label}`;
  return {
    judges,
    mixed,
    ...(mixed ? { mixedJudges: judges.map((j) => j.label) } : {}),
    ...(rep ? { repeatability: rep } : {}),
    line: rep ? `${who}. ${repeatabilityLine(rep)}` : who,
  };
}

export interface CostSummary {
  judgedRows: number;
  promptTokens: number;
  completionTokens: number;
  /** Nearest-rank percentiles, as the report's latency table computes them; null without rows. */
  editLatencyMs: { p50: number | null; p95: number | null };
  judgeLatencyMs: { p50: number | null; p95: number | null };
  /** Dollars per million prompt and completion tokens, when a price was given. */
  price?: { input: number; output: number };
  dollars?: number;
  line: string;
}

const pcts = (xs: number[]) => (xs.length ? { p50: percentile(xs, 0.5), p95: percentile(xs, 0.95) } : { p50: null, p95: null });
const ms = (x: number | null) => (x === null ? "n/a" : x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`);

/** Totals over the rows; answers from the judge cache cost 0 tokens. */
export function costSummary(rows: ResultRow[], price?: [number, number]): CostSummary {
  const judged = rows.filter((r) => r.judgeUsage);
  const promptTokens = judged.reduce((a, r) => a + r.judgeUsage!.promptTokens, 0);
  const completionTokens = judged.reduce((a, r) => a + r.judgeUsage!.completionTokens, 0);
  const edited = rows.filter((r) => r.status === "ok" && r.latency.editMs > 0).map((r) => r.latency.editMs);
  const editLatencyMs = pcts(edited);
  const judgeLatencyMs = pcts(judged.map((r) => r.latency.scoreMs));
  const dollars = price ? (promptTokens * price[0] + completionTokens * price[1]) / 1e6 : undefined;
  const tokens = `${promptTokens.toLocaleString("en-US")} prompt + ${completionTokens.toLocaleString("en-US")} completion judge tokens over ${judged.length} rows`;
  const cost = price ? `estimated $${dollars!.toFixed(dollars! < 1 ? 4 : 2)} at $${price[0]}/$${price[1]} per million` : "no price given (--price IN,OUT)";
  return {
    judgedRows: judged.length,
    promptTokens,
    completionTokens,
    editLatencyMs,
    judgeLatencyMs,
    ...(price ? { price: { input: price[0], output: price[1] }, dollars } : {}),
    line: `Cost: ${tokens}, ${cost}; edit latency p50 ${ms(editLatencyMs.p50)}, p95 ${ms(editLatencyMs.p95)}; judge latency p50 ${ms(judgeLatencyMs.p50)}, p95 ${ms(judgeLatencyMs.p95)}`,
  };
}
