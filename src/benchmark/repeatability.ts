/**
 * --judge-repeats K: how much the judge's figures move when the same edit is judged again
 * (DESIGN.md 11). Pure functions over the rows' per-repeat scores; no I/O.
 */
import { PERSPECTIVES, type PerspectiveResult, type ScoreResult, type VieScorePart } from "../../reward/index.js";
import type { RepeatScores, ResultRow } from "./results.js";

export type { RepeatScores };


export const FIGURES = ["following", "preserving", "quality", "sc", "pq", "o"] as const;
export type Figure = (typeof FIGURES)[number];

/** A repeat's value of one figure; following is its yes answer as 1 or 0. */
export function figureOf(r: RepeatScores, f: Figure): number | undefined {
  if (f === "following") return r.following?.status === "scored" && r.following.yes !== undefined ? Number(r.following.yes) : undefined;
  if (f === "preserving" || f === "quality") return r[f]?.status === "scored" ? r[f]!.score : undefined;
  return r.viescore?.[f];
}

export function repeatScores(s: ScoreResult): RepeatScores {
  const cell = (p: PerspectiveResult) => ({ status: p.status, ...(p.score !== undefined ? { score: p.score } : {}) });
  const f = s.perspectives.following;
  return {
    following: { ...cell(f), ...(f.yesRate !== undefined ? { yes: f.yesRate >= 0.5 } : {}) },
    preserving: cell(s.perspectives.preserving),
    quality: cell(s.perspectives.quality),
    ...(s.viescore ? { viescore: { sc: s.viescore.sc.score, pq: s.viescore.pq.score, o: s.viescore.o } } : {}),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * The result the figures use: per perspective the mean over the repeats that scored it; following
 * is yes when the mean yes-rate is at least one half. `spread` becomes the spread across repeats.
 * Nothing scored in any repeat stays unscored (or refused when every repeat refused).
 */
export function meanOfRepeats(results: ScoreResult[]): ScoreResult {
  if (results.length === 1) return results[0];
  const [first] = results;
  const perspectives = {} as ScoreResult["perspectives"];
  for (const p of PERSPECTIVES) {
    const all = results.map((r) => r.perspectives[p]);
    const passes = all.flatMap((x) => x.passes);
    const scored = all.filter((x) => x.status === "scored");
    if (!scored.length) {
      perspectives[p] = { status: all.every((x) => x.status === "refused") ? "refused" : all[0].status, passes, reason: all[0].reason };
      continue;
    }
    const scores = scored.map((x) => x.score).filter((x): x is number => x !== undefined);
    const rates = scored.map((x) => x.yesRate).filter((x): x is number => x !== undefined);
    const m = scores.length ? mean(scores) : undefined;
    perspectives[p] = {
      status: "scored",
      score: m,
      spread: m === undefined ? undefined : Math.sqrt(scores.reduce((a, s) => a + (s - m) ** 2, 0) / scores.length),
      yesRate: rates.length ? mean(rates) : undefined,
      reason: scored[0].reason,
      passes,
    };
  }
  const vie = results.map((r) => r.viescore).filter((v) => v !== undefined);
  const part = (parts: VieScorePart[]): VieScorePart => {
    const scored = parts.filter((x) => x.status === "scored" && x.score !== undefined);
    if (!scored.length) return { ...parts[0], lists: parts.flatMap((x) => x.lists) };
    return { status: "scored", score: mean(scored.map((x) => x.score!)), lists: parts.flatMap((x) => x.lists), reason: scored[0].reason };
  };
  const os = vie.map((v) => v.o).filter((x): x is number => x !== undefined);
  return {
    ...first,
    perspectives,
    // O is a per-edit figure: its mean over the repeats, as SC and PQ are theirs
    ...(vie.length ? { viescore: { sc: part(vie.map((v) => v.sc)), pq: part(vie.map((v) => v.pq)), o: os.length ? mean(os) : undefined } } : {}),
    latencyMs: results.reduce((a, r) => a + r.latencyMs, 0),
    cached: results.every((r) => r.cached),
    usage: {
      promptTokens: results.reduce((a, r) => a + (r.usage?.promptTokens ?? 0), 0),
      completionTokens: results.reduce((a, r) => a + (r.usage?.completionTokens ?? 0), 0),
    },
    ...(first.judge ? { judge: { ...first.judge, answeredModel: joinAnswered(results), repeats: results.length } } : {}),
  };
}

function joinAnswered(results: ScoreResult[]): string | undefined {
  const ids = new Set(results.flatMap((r) => r.judge?.answeredModel?.split(", ") ?? []));
  return ids.size ? [...ids].sort().join(", ") : undefined;
}

/**
 * ICC(1,1), one-way random effects: (MSB - MSW) / (MSB + (k - 1) MSW) over n items each judged
 * k times. null when it is undefined: fewer than two items, k < 2, or no variance at all.
 */
export function icc11(table: number[][]): number | null {
  const n = table.length;
  const k = table[0]?.length ?? 0;
  if (n < 2 || k < 2 || table.some((r) => r.length !== k)) return null;
  const means = table.map(mean);
  const grand = mean(means);
  const msb = (k * means.reduce((a, m) => a + (m - grand) ** 2, 0)) / (n - 1);
  const msw = table.reduce((a, r, i) => a + r.reduce((b, x) => b + (x - means[i]) ** 2, 0), 0) / (n * (k - 1));
  const denom = msb + (k - 1) * msw;
  return denom === 0 ? null : (msb - msw) / denom;
}

/** Sample standard deviation (k - 1 in the denominator, as MS_within uses). */
const sd = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

export interface FigureRepeatability {
  /** Edits with every repeat scored for this figure (the others are left out, counted). */
  n: number;
  incomplete: number;
  meanWithinSd: number | null;
  icc: number | null;
  /** Share of those edits whose figure was not the same in every repeat. */
  changedShare: number | null;
}

export interface Repeatability {
  repeats: number;
  figures: Partial<Record<Figure, FigureRepeatability>>;
}

/** Per figure over the rows judged more than once; undefined when no row was. */
export function repeatability(rows: ResultRow[]): Repeatability | undefined {
  const judged = rows.filter((r) => r.status === "ok" && (r.repeats?.length ?? 0) > 1);
  if (!judged.length) return undefined;
  const k = Math.max(...judged.map((r) => r.repeats!.length));
  const figures: Repeatability["figures"] = {};
  for (const f of FIGURES) {
    const values = judged.map((r) => r.repeats!.map((x) => figureOf(x, f)));
    if (values.every((v) => v.every((x) => x === undefined))) continue;
    const complete = values.filter((v): v is number[] => v.length === k && v.every((x) => x !== undefined));
    figures[f] = {
      n: complete.length,
      incomplete: values.length - complete.length,
      meanWithinSd: complete.length ? mean(complete.map(sd)) : null,
      icc: icc11(complete),
      changedShare: complete.length ? complete.filter((v) => v.some((x) => x !== v[0])).length / complete.length : null,
    };
  }
  return { repeats: k, figures };
}
