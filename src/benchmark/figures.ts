/**
 * Figures read off single result rows, and the two declared aggregations: `scored` (means over
 * scored rows, the published tables' rule) and `strict` (a missing, refused or failed edit counts
 * as the lowest score). The report's tables, comparisons and agreement all read rows through these.
 */
import type { ResultRow } from "./results.js";
import { DEFAULT_BOOTSTRAP, DEFAULT_SEED } from "./stats.js";

export type Aggregate = "scored" | "strict";
export const AGGREGATES: readonly Aggregate[] = ["scored", "strict"];

export interface StatsOptions {
  /** The headline's aggregation (default scored); report.json holds both. */
  aggregate?: Aggregate;
  /** Bootstrap resamples (default 2000) and seed (default 0). */
  bootstrap?: number;
  seed?: number;
}

export const statsDefaults = (o: StatsOptions = {}) => ({ aggregate: o.aggregate ?? "scored", B: o.bootstrap ?? DEFAULT_BOOTSTRAP, seed: o.seed ?? DEFAULT_SEED });

/** One figure read off single rows: the value, "unscored" (judged, no usable answer) or null (not judged, no such figure). */
export interface RowFigure {
  key: string;
  label: string;
  /** Digits when printed; "%" figures print with a % sign. */
  digits: number;
  percent?: boolean;
  higherIsBetter: boolean;
  /** What a missing, refused or failed edit counts as under `strict`. */
  lowest: number;
  read(r: ResultRow): number | "unscored" | null;
}

const perspective = (p: "following" | "preserving" | "quality", yesNo: boolean) => (r: ResultRow): number | "unscored" | null => {
  const c = r.scores?.[p];
  if (!c) return null;
  if (c.status === "unscored" || c.status === "refused") return "unscored";
  if (c.status !== "scored") return null;
  if (yesNo) return c.yes === undefined ? null : c.yes ? 100 : 0;
  return c.score ?? null;
};

export const JUDGED_FIGURES: RowFigure[] = [
  { key: "following", label: "Following", digits: 1, percent: true, higherIsBetter: true, lowest: 0, read: perspective("following", true) },
  { key: "preserving", label: "Preserving", digits: 2, higherIsBetter: true, lowest: 0, read: perspective("preserving", false) },
  { key: "quality", label: "Quality", digits: 2, higherIsBetter: true, lowest: 0, read: perspective("quality", false) },
];

// the exact errors are mean absolute differences of 0..1 channels: 1 is the worst an edit can do
export const EXACT_FIGURES: RowFigure[] = [
  { key: "exactFollowing", label: "exact following", digits: 1, percent: true, higherIsBetter: true, lowest: 0, read: (r) => (r.truth ? (r.truth.following ? 100 : 0) : null) },
  { key: "exactPreservationError", label: "exact preservation err", digits: 4, higherIsBetter: false, lowest: 1, read: (r) => r.truth?.preservationError ?? null },
  { key: "exactQualityError", label: "exact quality err", digits: 4, higherIsBetter: false, lowest: 1, read: (r) => r.truth?.qualityError ?? null },
];

/** Any status but "ok" (edit_failed, refused, missing) is an edit that did not come back. */
export const failedEdit = (r: ResultRow) => r.status !== "ok";

/**
 * Each row's value of a figure under an aggregation, null where the row stays out. Under strict a
 * failed edit takes the lowest score, but only for a figure this group's scorer judges at all:
 * a local scorer that never judges following must not turn failures into 0 % following.
 */
export function rowValues(rows: readonly ResultRow[], fig: RowFigure, aggregate: Aggregate): Array<number | null> {
  const read = rows.map((r) => (failedEdit(r) ? null : fig.read(r)));
  const judged = read.some((v) => v !== null);
  return rows.map((r, i) => {
    if (failedEdit(r)) return aggregate === "strict" && judged ? fig.lowest : null;
    const v = read[i];
    return typeof v === "number" ? v : null;
  });
}

export interface Coverage {
  /** Rows of the suite (every sample x seed of the group, whatever came of it). */
  rows: number;
  /** Edits that came back with every judged figure scored. */
  scored: number;
  /** scored / rows; null for no rows. */
  share: number | null;
  /** Edits that did not come back, by status (edit_failed, refused, missing). */
  failed: number;
  byStatus: Record<string, number>;
  /** Edits with a judge answer that could not be read (or was refused by the judge). */
  unscored: number;
}

export function coverageOf(rows: readonly ResultRow[], isScored: (r: ResultRow) => boolean, isUnscored: (r: ResultRow) => boolean): Coverage {
  const byStatus: Record<string, number> = {};
  for (const r of rows) if (failedEdit(r)) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const scored = rows.filter((r) => !failedEdit(r) && isScored(r)).length;
  return {
    rows: rows.length,
    scored,
    share: rows.length ? scored / rows.length : null,
    failed: rows.filter(failedEdit).length,
    byStatus,
    unscored: rows.filter((r) => !failedEdit(r) && isUnscored(r)).length,
  };
}


/** A figure as a person reads it: `3.58 [3.41, 3.75]` (with " %" for percentages), "n/a" when undefined. */
export function show(f: { value: number | null; ci: [number, number] | null } | null | undefined, digits = 2, percent = false): string {
  if (!f || f.value === null) return "n/a";
  const x = (v: number) => v.toFixed(digits);
  return `${x(f.value)}${f.ci ? ` [${x(f.ci[0])}, ${x(f.ci[1])}]` : ""}${percent ? " %" : ""}`;
}

/** A difference, signed: `+0.21 [0.05, 0.37]`. */
export function showDiff(v: number | null, ci: [number, number] | null, digits = 2): string {
  if (v === null) return "n/a";
  const s = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
  return `${s(v)}${ci ? ` [${s(ci[0])}, ${s(ci[1])}]` : ""}`;
}

/** The coverage line: rows scored of the suite's rows, and what became of the rest. */
export function coverageLine(c: Coverage): string {
  const share = c.share === null ? "n/a" : `${(100 * c.share).toFixed(1)} %`;
  const fails = Object.entries(c.byStatus).map(([s, n]) => `${n} ${s.replace("_", " ")}`);
  return `coverage ${c.scored}/${c.rows} scored (${share})${fails.length ? `; ${fails.join(", ")}` : ""}${c.unscored ? `; ${c.unscored} unscored judge answers` : ""}`;
}
