/**
 * `bench --sweep`: does a reward slider do what it says? One perspective's reward level is asked
 * at 0..5 with the others at 5; per level the judged score of that perspective, and Spearman's
 * rho between the requested level and the judged score, each with a seeded bootstrap interval
 * that resamples samples (all six levels of a sample together) within each category (categories
 * of a single sample pooled).
 */
import type { PresetChoice } from "./editors/types.js";
import type { ResultRow } from "./results.js";
import { mean, poolSingletons, quantile, rng, spearman } from "./stats.js";

export const SWEEP_PERSPECTIVES = ["following", "preserving", "quality"] as const;
export type SweepPerspective = (typeof SWEEP_PERSPECTIVES)[number];
export const SWEEP_LEVELS = [0, 1, 2, 3, 4, 5] as const;

/** Six presets per perspective: that level at 0..5, the other two at 5. */
export function sweepPresets(perspectives: SweepPerspective[]): PresetChoice[] {
  return perspectives.flatMap((p) =>
    SWEEP_LEVELS.map((level) => {
      const rewards: [number, number, number] = [5, 5, 5];
      rewards[SWEEP_PERSPECTIVES.indexOf(p)] = level;
      return { label: `sweep ${p}=${level}`, rewards, sweep: { perspective: p, level } };
    }),
  );
}

export interface SweepFigure {
  value: number | null;
  ci: [number, number] | null;
  n: number;
}

export interface SweepSummary {
  model: string;
  perspective: SweepPerspective;
  levels: Array<{ level: number } & SweepFigure>;
  /** Spearman's rho between requested level and judged score; null when either has no variance. */
  rho: SweepFigure;
  /** Rows of the sweep, and those with a judged score of the swept perspective. */
  rows: number;
  scored: number;
  bootstrap: { samples: number; seed: number };
}

const interval = (draws: number[]): [number, number] | null => {
  if (!draws.length) return null;
  const s = [...draws].sort((a, b) => a - b);
  return [quantile(s, 0.025), quantile(s, 0.975)];
};

/** The judged score (0..5) of the swept perspective, when the row has one. */
const scoreOf = (r: ResultRow, p: SweepPerspective) => {
  const c = r.status === "ok" ? r.scores?.[p] : undefined;
  return c?.status === "scored" && c.score !== undefined ? c.score : undefined;
};

interface Point {
  level: number;
  score: number;
}

function figures(clusters: Point[][]): { levels: Map<number, number[]>; rho: number | null } {
  const levels = new Map<number, number[]>();
  const x: number[] = [];
  const y: number[] = [];
  for (const c of clusters)
    for (const p of c) {
      x.push(p.level);
      y.push(p.score);
      (levels.get(p.level) ?? levels.set(p.level, []).get(p.level)!).push(p.score);
    }
  return { levels, rho: spearman(x, y) };
}


/** One summary per (model, swept perspective) in the rows; unscored and failed rows are counted, not used. */
export function sweepSummaries(rows: ResultRow[], o: { samples?: number; seed?: number } = {}): SweepSummary[] {
  const B = o.samples ?? 2000;
  const seed = o.seed ?? 0;
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    if (!r.sweep) continue;
    const k = JSON.stringify([r.model, r.sweep.perspective]);
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(r);
  }
  const out: SweepSummary[] = [];
  for (const [k, rs] of groups) {
    const [model, perspective] = JSON.parse(k) as [string, SweepPerspective];
    // a cluster is one sample (and seed) at every level; strata are the categories
    const clusters = new Map<string, { stratum: string; points: Point[] }>();
    for (const r of rs) {
      const s = scoreOf(r, perspective);
      if (s === undefined) continue;
      const id = `${r.sample}|${r.seed}`;
      const c = clusters.get(id) ?? clusters.set(id, { stratum: r.category, points: [] }).get(id)!;
      c.points.push({ level: r.sweep!.level, score: s });
    }
    const byCategory = new Map<string, Point[][]>();
    for (const c of clusters.values()) (byCategory.get(c.stratum) ?? byCategory.set(c.stratum, []).get(c.stratum)!).push(c.points);
    // rho is one pooled figure: categories of one sample are drawn together (stats.ts poolSingletons)
    const strata = poolSingletons([...byCategory.values()]);
    const all = strata.flat();
    const observed = figures(all);
    const rand = rng(seed);
    const rhoDraws: number[] = [];
    const levelDraws = new Map<number, number[]>();
    for (let b = 0; b < B; b++) {
      const drawn: Point[][] = [];
      for (const members of strata) for (let i = 0; i < members.length; i++) drawn.push(members[Math.floor(rand() * members.length)]);
      const f = figures(drawn);
      if (f.rho !== null) rhoDraws.push(f.rho);
      for (const [level, v] of f.levels) (levelDraws.get(level) ?? levelDraws.set(level, []).get(level)!).push(mean(v)!);
    }
    const n = all.reduce((a, c) => a + c.length, 0);
    out.push({
      model,
      perspective,
      levels: SWEEP_LEVELS.map((level) => ({ level, value: mean(observed.levels.get(level) ?? []), ci: interval(levelDraws.get(level) ?? []), n: observed.levels.get(level)?.length ?? 0 })),
      // an interval only where most resamples had a defined rho: otherwise it would describe a few lucky draws
      rho: { value: observed.rho, ci: observed.rho !== null && rhoDraws.length >= B / 2 ? interval(rhoDraws) : null, n },
      rows: rs.length,
      scored: n,
      bootstrap: { samples: B, seed },
    });
  }
  return out;
}

const fmt = (f: SweepFigure, d: number) => (f.value === null ? "n/a" : `${f.value.toFixed(d)}${f.ci ? ` [${f.ci[0].toFixed(d)}, ${f.ci[1].toFixed(d)}]` : ""}`);

/** One line per summary, as bench prints it. */
export function describeSweep(s: SweepSummary): string {
  const levels = s.levels.map((l) => `${l.level}: ${fmt(l, 2)}`).join(", ");
  return `${s.model}: sweep ${s.perspective}: Spearman rho ${fmt(s.rho, 3)} (${s.scored} of ${s.rows} rows scored, bootstrap ${s.bootstrap.samples}, seed ${s.bootstrap.seed}); judged ${s.perspective} by level ${levels}`;
}
