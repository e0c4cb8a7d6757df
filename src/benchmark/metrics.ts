/**
 * The published table's metrics: Following = % judged yes, Preserving and Quality = mean 0..5,
 * overall and per category; exact metrics for synthetic scenes; latency percentiles. Every figure
 * carries its 95 % bootstrap interval (stats.ts), resampled within categories. Two aggregations:
 * `scored` (means over scored rows, the published rule) and `strict` (a missing, refused or
 * failed edit counts as the lowest score). Unscored judge answers are in neither, counted and
 * listed, never dropped silently; coverage says how many rows of the suite were scored.
 */
import { type Aggregate, type Coverage, EXACT_FIGURES, JUDGED_FIGURES, type StatsOptions, coverageOf, failedEdit, rowValues, statsDefaults } from "./figures.js";
import { type GeditTables, geditJudge, geditTables } from "./gedit-metrics.js";
import type { ResultRow } from "./results.js";
import { sweepSummaries } from "./sweep.js";
import { type Figure, figure, mean } from "./stats.js";

export { type Aggregate, AGGREGATES, type Coverage, type StatsOptions } from "./figures.js";

const hasUnscored = (r: ResultRow) => Boolean(r.scores && Object.values(r.scores).some((c) => c.status === "unscored" || c.status === "refused"));
const hasNotJudged = (r: ResultRow) => Boolean(r.scores && Object.values(r.scores).some((c) => c.status === "not_judged"));

export interface Cell {
  n: number;
  coverage: Coverage;
  /** % yes among samples with a following verdict (strict: failed edits count as no). */
  following: Figure;
  preserving: Figure;
  quality: Figure;
  /** Samples where a perspective came back unscored or refused. */
  unscored: number;
  /** Perspectives the scorer declared it cannot judge (local scorer on real photos). */
  notJudged: number;
  truth?: { n: number; following: Figure; preservationError: Figure; qualityError: Figure };
}

export interface Table {
  overall: Cell;
  categories: Record<string, Cell>;
}

export interface GroupMetrics extends Table {
  group: string;
  model: string;
  preset: string;
  /** Which aggregation `overall`, `categories` and `gedit` hold; both are in `aggregations`. */
  aggregate: Aggregate;
  aggregations: Record<Aggregate, Table>;
  latencyMs: { p50: number; p90: number; p99: number; mean: number };
  unscoredSamples: Array<{ key: string; perspectives: string[]; raw?: string }>;
  failed: Array<{ key: string; status: string; error: string }>;
  /** GEdit-Bench rows only: its own table, per language (gedit-metrics.ts), in the headline aggregation. */
  gedit?: GeditTables;
  geditAggregations?: Record<Aggregate, GeditTables>;
  /** Who judged those rows, e.g. "viescore-v1, judge gpt-4.1". */
  geditJudge?: string;
}

export function percentile(xs: number[], q: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

/** Values of the rows at `idx`, in strata by category. */
function strata(rows: readonly ResultRow[], values: ReadonlyArray<number | null>, idx: readonly number[]): number[][] {
  const by = new Map<string, number[]>();
  for (const i of idx) {
    const v = values[i];
    if (v === null) continue;
    by.set(rows[i].category, [...(by.get(rows[i].category) ?? []), v]);
  }
  return [...by.values()];
}

function table(rows: readonly ResultRow[], aggregate: Aggregate, B: number, seed: number): Table {
  const values = new Map([...JUDGED_FIGURES, ...EXACT_FIGURES].map((f) => [f.key, rowValues(rows, f, aggregate)]));
  const hasTruth = rows.some((r) => r.truth);
  const cell = (idx: number[]): Cell => {
    const fig = (key: string) => figure(strata(rows, values.get(key)!, idx), "pooled", { B, seed });
    const sub = idx.map((i) => rows[i]);
    const truthN = sub.filter((r) => !failedEdit(r) && r.truth).length;
    return {
      n: sub.length,
      coverage: coverageOf(sub, (r) => Boolean(r.scores) && !hasUnscored(r), hasUnscored),
      following: fig("following"),
      preserving: fig("preserving"),
      quality: fig("quality"),
      unscored: sub.filter((r) => !failedEdit(r) && hasUnscored(r)).length,
      notJudged: sub.filter((r) => !failedEdit(r) && hasNotJudged(r)).length,
      ...(hasTruth && truthN ? { truth: { n: truthN, following: fig("exactFollowing"), preservationError: fig("exactPreservationError"), qualityError: fig("exactQualityError") } } : {}),
    };
  };
  const all = rows.map((_, i) => i);
  const cats = [...new Set(rows.map((r) => r.category))].sort();
  return { overall: cell(all), categories: Object.fromEntries(cats.map((c) => [c, cell(all.filter((i) => rows[i].category === c))])) };
}

export const groupOf = (r: ResultRow) => `${r.model} / ${r.preset}`;

export function groupRows(rows: readonly ResultRow[]): Map<string, ResultRow[]> {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) groups.set(groupOf(r), [...(groups.get(groupOf(r)) ?? []), r]);
  return groups;
}

export function groupMetrics(rows: ResultRow[], o: StatsOptions = {}): GroupMetrics[] {
  const { aggregate, B, seed } = statsDefaults(o);
  return [...groupRows(rows).entries()].map(([group, rs]) => {
    const aggregations = { scored: table(rs, "scored", B, seed), strict: table(rs, "strict", B, seed) };
    const lat = rs.filter((r) => r.status === "ok").map((r) => r.latency.editMs);
    const gedit = rs.some((r) => r.gedit) ? { scored: geditTables(rs, { aggregate: "scored", bootstrap: B, seed }), strict: geditTables(rs, { aggregate: "strict", bootstrap: B, seed }) } : undefined;
    return {
      group,
      model: rs[0].model,
      preset: rs[0].preset,
      aggregate,
      ...aggregations[aggregate],
      aggregations,
      latencyMs: { p50: percentile(lat, 0.5), p90: percentile(lat, 0.9), p99: percentile(lat, 0.99), mean: mean(lat) ?? 0 },
      unscoredSamples: rs
        .filter((r) => r.scores && hasUnscored(r))
        .map((r) => ({
          key: r.key,
          perspectives: Object.entries(r.scores!).filter(([, c]) => c.status === "unscored" || c.status === "refused").map(([p, c]) => `${p} (${c.status})`),
          raw: Object.values(r.scores!).find((c) => c.raw)?.raw,
        })),
      failed: rs.filter(failedEdit).map((r) => ({ key: r.key, status: r.status, error: r.error ?? "" })),
      ...(gedit ? { gedit: gedit[aggregate], geditAggregations: gedit, geditJudge: geditJudge(rs) } : {}),
    };
  });
}

export interface SweepCurve {
  model: string;
  perspective: string;
  /** The judged 0..5 score of the swept perspective at each requested level. */
  points: Array<{ level: number; score: Figure }>;
  /** Spearman's rho between requested level and judged score, with its bootstrap interval. */
  rho: Figure;
}

/**
 * Level against the mean judged score of the swept perspective, per model and perspective: the
 * sweep's own summaries (a sample's six levels resampled together), shaped as report figures.
 */
export function sweepCurves(rows: readonly ResultRow[], o: StatsOptions = {}): SweepCurve[] {
  const { B, seed } = statsDefaults(o);
  return sweepSummaries([...rows], { samples: B, seed }).map((s) => ({
    model: s.model,
    perspective: s.perspective,
    points: s.levels.filter((l) => l.n > 0).map((l) => ({ level: l.level, score: { value: l.value, ci: l.ci, n: l.n } })),
    rho: s.rho,
  }));
}
