/**
 * The published table's metrics: Following = % judged yes, Preserving and Quality = mean 0..5,
 * overall and per category; exact metrics for synthetic scenes; latency percentiles; unscored
 * samples counted and listed, never dropped silently.
 */
import { type GeditTables, geditJudge, geditTables } from "./gedit-metrics.js";
import type { ResultRow } from "./results.js";

export interface Cell {
  n: number;
  /** % yes among samples with a following verdict; null when none could be judged. */
  following: number | null;
  preserving: number | null;
  quality: number | null;
  /** Samples where a perspective came back unscored or refused. */
  unscored: number;
  /** Perspectives the scorer declared it cannot judge (local scorer on real photos). */
  notJudged: number;
  truth?: { n: number; following: number; preservationError: number | null; qualityError: number };
}

export interface GroupMetrics {
  group: string;
  model: string;
  preset: string;
  overall: Cell;
  categories: Record<string, Cell>;
  latencyMs: { p50: number; p90: number; p99: number; mean: number };
  unscoredSamples: Array<{ key: string; perspectives: string[]; raw?: string }>;
  failed: Array<{ key: string; error: string }>;
  /** GEdit-Bench rows only: its own table, per language (gedit-metrics.ts). */
  gedit?: GeditTables;
  /** Who judged those rows, e.g. "viescore-v1, judge gpt-4.1". */
  geditJudge?: string;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

export function percentile(xs: number[], q: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

function cell(rows: ResultRow[]): Cell {
  const ok = rows.filter((r) => r.status === "ok" && r.scores);
  const yes = ok.map((r) => r.scores!.following).filter((c) => c.status === "scored" && c.yes !== undefined);
  const scoreOf = (p: "preserving" | "quality") => ok.map((r) => r.scores![p]).filter((c) => c.status === "scored" && c.score !== undefined).map((c) => c.score!);
  const truth = ok.filter((r) => r.truth);
  const pres = truth.map((r) => r.truth!.preservationError).filter((v): v is number => v !== null);
  return {
    n: rows.length,
    following: yes.length ? (100 * yes.filter((c) => c.yes).length) / yes.length : null,
    preserving: mean(scoreOf("preserving")),
    quality: mean(scoreOf("quality")),
    unscored: ok.filter((r) => Object.values(r.scores!).some((c) => c.status === "unscored" || c.status === "refused")).length,
    notJudged: ok.filter((r) => Object.values(r.scores!).some((c) => c.status === "not_judged")).length,
    truth: truth.length
      ? {
          n: truth.length,
          following: (100 * truth.filter((r) => r.truth!.following).length) / truth.length,
          preservationError: mean(pres),
          qualityError: mean(truth.map((r) => r.truth!.qualityError))!,
        }
      : undefined,
  };
}

export function groupMetrics(rows: ResultRow[]): GroupMetrics[] {
  const groups = new Map<string, ResultRow[]>();
  for (const r of rows) {
    const g = `${r.model} / ${r.preset}`;
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  return [...groups.entries()].map(([group, rs]) => {
    const cats = [...new Set(rs.map((r) => r.category))].sort();
    const lat = rs.filter((r) => r.status === "ok").map((r) => r.latency.editMs);
    return {
      group,
      model: rs[0].model,
      preset: rs[0].preset,
      overall: cell(rs),
      categories: Object.fromEntries(cats.map((c) => [c, cell(rs.filter((r) => r.category === c))])),
      latencyMs: { p50: percentile(lat, 0.5), p90: percentile(lat, 0.9), p99: percentile(lat, 0.99), mean: mean(lat) ?? 0 },
      unscoredSamples: rs
        .filter((r) => r.scores && Object.values(r.scores).some((c) => c.status === "unscored" || c.status === "refused"))
        .map((r) => ({
          key: r.key,
          perspectives: Object.entries(r.scores!).filter(([, c]) => c.status === "unscored" || c.status === "refused").map(([p, c]) => `${p} (${c.status})`),
          raw: Object.values(r.scores!).find((c) => c.raw)?.raw,
        })),
      failed: rs.filter((r) => r.status === "edit_failed").map((r) => ({ key: r.key, error: r.error ?? "" })),
      ...(rs.some((r) => r.gedit) ? { gedit: geditTables(rs), geditJudge: geditJudge(rs) } : {}),
    };
  });
}

/** One number per sample to decide per-sample wins: exact truth when known, else the mean judged score. */
export function sampleMerit(r: ResultRow): number | null {
  if (r.status !== "ok") return null;
  if (r.truth) return (r.truth.following ? 1 : 0) - r.truth.qualityError - (r.truth.preservationError ?? 0);
  const s = r.scores ? Object.values(r.scores).filter((c) => c.status === "scored" && c.score !== undefined).map((c) => c.score!) : [];
  return s.length ? s.reduce((a, b) => a + b, 0) / s.length : null;
}

export interface Comparison {
  a: string;
  b: string;
  deltas: Record<string, { following: number | null; preserving: number | null; quality: number | null; truthFollowing?: number | null; truthPreservationError?: number | null; truthQualityError?: number | null }>;
  wins: { a: number; b: number; ties: number; samples: Array<{ sample: string; seed: number; winner: "a" | "b" | "tie" }> };
  /** GEdit-Bench: b minus a for SC, PQ and O, per language and set. */
  gedit?: Record<string, Record<"full" | "intersection", { sc: number | null; pq: number | null; o: number | null }>>;
}

const d = (x: number | null | undefined, y: number | null | undefined) => (x === null || x === undefined || y === null || y === undefined ? null : y - x);

/** Group b minus group a, per metric and category, and who won each shared sample. */
export function compareGroups(rows: ResultRow[], a: string, b: string): Comparison {
  const gm = groupMetrics(rows);
  const A = gm.find((g) => g.group === a)!;
  const B = gm.find((g) => g.group === b)!;
  const deltas: Comparison["deltas"] = {};
  for (const cat of ["overall", ...new Set([...Object.keys(A.categories), ...Object.keys(B.categories)])]) {
    const x = cat === "overall" ? A.overall : A.categories[cat];
    const y = cat === "overall" ? B.overall : B.categories[cat];
    if (!x || !y) continue;
    deltas[cat] = {
      following: d(x.following, y.following),
      preserving: d(x.preserving, y.preserving),
      quality: d(x.quality, y.quality),
      truthFollowing: d(x.truth?.following, y.truth?.following),
      truthPreservationError: d(x.truth?.preservationError, y.truth?.preservationError),
      truthQualityError: d(x.truth?.qualityError, y.truth?.qualityError),
    };
  }
  const byKey = (g: GroupMetrics) => new Map(rows.filter((r) => `${r.model} / ${r.preset}` === g.group).map((r) => [`${r.seed}|${r.sample}`, r]));
  const ra = byKey(A);
  const rb = byKey(B);
  const wins: Comparison["wins"] = { a: 0, b: 0, ties: 0, samples: [] };
  for (const [k, x] of ra) {
    const y = rb.get(k);
    const mx = sampleMerit(x);
    const my = y ? sampleMerit(y) : null;
    if (mx === null || my === null) continue;
    const winner = Math.abs(mx - my) < 1e-9 ? "tie" : mx > my ? "a" : "b";
    wins[winner === "tie" ? "ties" : winner]++;
    wins.samples.push({ sample: x.sample, seed: x.seed, winner });
  }
  let gedit: Comparison["gedit"];
  if (A.gedit && B.gedit) {
    gedit = {};
    for (const [lang, x] of Object.entries(A.gedit)) {
      const y = B.gedit[lang as keyof GeditTables];
      if (!x || !y) continue;
      const delta = (k: "full" | "intersection") => ({ sc: d(x[k].sc, y[k].sc), pq: d(x[k].pq, y[k].pq), o: d(x[k].o, y[k].o) });
      gedit[lang] = { full: delta("full"), intersection: delta("intersection") };
    }
  }
  return { a, b, deltas, wins, ...(gedit ? { gedit } : {}) };
}
