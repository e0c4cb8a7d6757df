/**
 * The statistics of benchmark reports (DESIGN.md 11), small and self-contained: a seeded PRNG,
 * the stratified bootstrap interval of any figure, paired comparisons (bootstrap interval,
 * sign-flip permutation p, win/tie/loss, Holm's correction) and agreement between two judges
 * (Spearman's rho, Kendall's tau-b, Cohen's kappa). Anything undefined is null, never 0.
 */

/** A figure as every report gives it: its value, the 95 % bootstrap interval and how many samples it rests on. */
export interface Figure {
  value: number | null;
  ci: [number, number] | null;
  n: number;
}

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  B?: number;
  seed?: number;
}

export const DEFAULT_BOOTSTRAP = 2000;
export const DEFAULT_SEED = 0;
/** Up to this many non-zero differences the sign-flip test enumerates every assignment. */
export const EXACT_FLIPS_MAX = 16;
export const RANDOM_FLIPS = 20_000;
/** The level of every test and interval (95 %). */
export const ALPHA = 0.05;

/** mulberry32: 32-bit state, fast, good enough for resampling; the same seed gives the same stream. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const mean = (xs: readonly number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** Linear interpolation between order statistics (R's type 7) of an ascending array. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  return sorted[lo] + (h - lo) * ((sorted[Math.min(lo + 1, sorted.length - 1)] ?? sorted[lo]) - sorted[lo]);
}

/**
 * The 95 % interval of `figure` by resampling each stratum with replacement, keeping its size,
 * and recomputing the figure B times (2.5th and 97.5th percentiles). Null when the figure itself
 * is undefined on the data.
 */
export function bootstrapCI<T>(strata: readonly T[][], figure: (strata: T[][]) => number | null, o: BootstrapOptions = {}): [number, number] | null {
  const B = o.B ?? DEFAULT_BOOTSTRAP;
  const live = strata.filter((s) => s.length > 0);
  if (!live.length || B < 1 || figure(live.map((s) => [...s])) === null) return null;
  const next = rng(o.seed ?? DEFAULT_SEED);
  const values: number[] = [];
  for (let b = 0; b < B; b++) {
    const resampled = live.map((s) => Array.from(s, () => s[Math.floor(next() * s.length)]));
    const v = figure(resampled);
    if (v !== null && Number.isFinite(v)) values.push(v);
  }
  if (!values.length) return null;
  values.sort((x, y) => x - y);
  return [quantile(values, 0.025), quantile(values, 0.975)];
}

/** How a figure is made from per-sample values grouped in strata: one mean over all, or the unweighted mean of the stratum means. */
export type Structure = "pooled" | "meanOfMeans";

export function structured(strata: readonly number[][], structure: Structure): number | null {
  const live = strata.filter((s) => s.length > 0);
  if (!live.length) return null;
  if (structure === "pooled") return mean(live.flat());
  return mean(live.map((s) => mean(s)!));
}

/**
 * The strata a resample draws from. A stratum of one sample is redrawn as itself every time, so a
 * suite of many one-sample categories would get a zero-width interval that hides all its
 * variance; for a pooled mean (which strata do not change) such strata are drawn as one. A mean of
 * stratum means keeps every stratum, as its figure needs.
 */
export function poolSingletons<T>(strata: readonly T[][], structure: Structure = "pooled"): T[][] {
  const live = strata.filter((s) => s.length > 0);
  const singles = live.filter((s) => s.length === 1).flat();
  if (structure !== "pooled" || singles.length < 2) return [...live];
  return [...live.filter((s) => s.length > 1), singles];
}

/**
 * bootstrapCI of a pooled mean or a mean of stratum means, without building the resamples: the
 * same draws in the same order (so the same interval), a hundred times faster, which a report of
 * many figures over thousands of rows needs.
 */
export function bootstrapMeanCI(strata: readonly number[][], structure: Structure, o: BootstrapOptions = {}): [number, number] | null {
  const B = o.B ?? DEFAULT_BOOTSTRAP;
  const live = poolSingletons(strata, structure);
  if (!live.length || B < 1) return null;
  const total = live.reduce((a, s) => a + s.length, 0);
  const next = rng(o.seed ?? DEFAULT_SEED);
  const values = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let acc = 0;
    for (const s of live) {
      let sum = 0;
      for (let i = 0; i < s.length; i++) sum += s[Math.floor(next() * s.length)];
      acc += structure === "pooled" ? sum : sum / s.length;
    }
    values[b] = structure === "pooled" ? acc / total : acc / live.length;
  }
  values.sort();
  return [quantile(values, 0.025), quantile(values, 0.975)];
}

/** A figure with its interval from per-sample values in strata. */
export function figure(strata: readonly number[][], structure: Structure, o: BootstrapOptions = {}): Figure {
  const value = structured(strata, structure);
  const n = strata.reduce((a, s) => a + s.length, 0);
  return { value, ci: value === null ? null : bootstrapMeanCI(strata, structure, o), n };
}

/**
 * Two-sided sign-flip permutation p of sum(w_i d_i): the share of sign assignments whose |statistic|
 * is at least the observed one. Zero differences change nothing under a flip, so they are left
 * out (they count for nothing). Up to 16 left: every one of the 2^n assignments; beyond: `flips`
 * seeded random assignments, p = (1 + hits) / (1 + flips) so a sampled p is never 0.
 */
export function signFlipP(d: readonly number[], weights?: readonly number[], o: { seed?: number; flips?: number } = {}): number | null {
  if (!d.length) return null;
  const terms = d.map((x, i) => x * (weights ? weights[i] : 1)).filter((t) => t !== 0);
  if (!terms.length) return 1;
  const observed = Math.abs(terms.reduce((a, b) => a + b, 0));
  // equal statistics reached by different sums must compare equal despite rounding
  const tol = 1e-9 * terms.reduce((a, t) => a + Math.abs(t), 0);
  const n = terms.length;
  if (n <= EXACT_FLIPS_MAX) {
    let hits = 0;
    for (let mask = 0; mask < 1 << n; mask++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += mask & (1 << i) ? -terms[i] : terms[i];
      if (Math.abs(s) >= observed - tol) hits++;
    }
    return hits / (1 << n);
  }
  const flips = o.flips ?? RANDOM_FLIPS;
  const next = rng(o.seed ?? DEFAULT_SEED);
  let hits = 0;
  for (let f = 0; f < flips; f++) {
    let s = 0;
    // one draw gives 32 signs
    let bits = 0;
    for (let i = 0; i < n; i++) {
      if (i % 32 === 0) bits = Math.floor(next() * 4294967296);
      s += bits & (1 << (i % 32)) ? -terms[i] : terms[i];
    }
    if (Math.abs(s) >= observed - tol) hits++;
  }
  return (1 + hits) / (1 + flips);
}

/** Holm's step-down adjustment: sorted ascending, p_(j) -> max over i <= j of min(1, (k - i + 1) p_(i)); nulls stay null and do not count in k. */
export function holm(ps: ReadonlyArray<number | null>): Array<number | null> {
  const idx = ps.map((p, i) => [p, i] as const).filter((x): x is readonly [number, number] => x[0] !== null).sort((a, b) => a[0] - b[0]);
  const k = idx.length;
  const out: Array<number | null> = ps.map(() => null);
  let running = 0;
  idx.forEach(([p, i], j) => {
    running = Math.max(running, Math.min(1, (k - j) * p));
    out[i] = running;
  });
  return out;
}

export interface PairedResult {
  /** Pairs compared. */
  n: number;
  /** Figure of A and of B on those pairs. */
  a: number | null;
  b: number | null;
  /** B minus A, built like the figure (pooled or mean of stratum means). */
  diff: number | null;
  ci: [number, number] | null;
  p: number | null;
  /** Per pair, by the figure's direction: B better, A better, equal. */
  wins: { a: number; b: number; ties: number };
  /**
   * True when the interval leaves 0 out and p < 0.05 (for a task: Holm's p); else written "not
   * distinguishable". Both are asked because a percentile interval of a few identical differences
   * has no width while the exact test says 2 of 2^n assignments reach them.
   */
  distinguishable: boolean | null;
}

export interface Pair {
  a: number;
  b: number;
  stratum: string;
}

/** Paired comparison B - A: the difference, its paired stratified bootstrap interval, the sign-flip p and who won each pair. */
export function paired(pairs: readonly Pair[], structure: Structure, o: BootstrapOptions & { higherIsBetter?: boolean } = {}): PairedResult {
  const byStratum = new Map<string, Pair[]>();
  for (const p of pairs) byStratum.set(p.stratum, [...(byStratum.get(p.stratum) ?? []), p]);
  const strata = [...byStratum.values()];
  const of = (s: Pair[][], f: (p: Pair) => number) => structured(s.map((x) => x.map(f)), structure);
  const diff = of(strata, (p) => p.b - p.a);
  const ci = diff === null ? null : bootstrapMeanCI(strata.map((s) => s.map((p) => p.b - p.a)), structure, o);
  // the statistic is linear in the differences: pooled weighs each 1/n, mean of means 1/(K n_k)
  const d: number[] = [];
  const w: number[] = [];
  for (const s of strata)
    for (const p of s) {
      d.push(p.b - p.a);
      w.push(structure === "pooled" ? 1 / pairs.length : 1 / (strata.length * s.length));
    }
  const p = signFlipP(d, w, { seed: o.seed });
  const up = o.higherIsBetter ?? true;
  const wins = { a: 0, b: 0, ties: 0 };
  for (const p of pairs) {
    if (p.a === p.b) wins.ties++;
    else if (p.b > p.a === up) wins.b++;
    else wins.a++;
  }
  return {
    n: pairs.length,
    a: of(strata, (p) => p.a),
    b: of(strata, (p) => p.b),
    diff,
    ci,
    p,
    wins,
    distinguishable: ci === null || p === null ? null : !(ci[0] <= 0 && ci[1] >= 0) && p < ALPHA,
  };
}

/** Average ranks (1-based): tied values share the mean of the ranks they span. */
export function ranks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) out[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

export function pearson(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length || x.length < 2) return null;
  const mx = mean(x)!;
  const my = mean(y)!;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx * syy);
}

/** Spearman's rho: the Pearson correlation of average ranks. */
export const spearman = (x: readonly number[], y: readonly number[]): number | null => (x.length === y.length ? pearson(ranks(x), ranks(y)) : null);

/** Kendall's tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)), n1 and n2 the pairs tied in x and in y. */
export function kendallTauB(x: readonly number[], y: readonly number[]): number | null {
  if (x.length !== y.length || x.length < 2) return null;
  let c = 0;
  let d = 0;
  let tx = 0;
  let ty = 0;
  const n = x.length;
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const a = Math.sign(x[i] - x[j]);
      const b = Math.sign(y[i] - y[j]);
      if (a === 0) tx++;
      if (b === 0) ty++;
      if (a !== 0 && b !== 0) a === b ? c++ : d++;
    }
  const n0 = (n * (n - 1)) / 2;
  const den = Math.sqrt((n0 - tx) * (n0 - ty));
  return den === 0 ? null : (c - d) / den;
}

/** Cohen's kappa for two raters' yes/no: (p_o - p_e) / (1 - p_e); null when p_e = 1 (both always gave one answer). */
export function cohensKappa(a: readonly boolean[], b: readonly boolean[]): number | null {
  if (a.length !== b.length || !a.length) return null;
  const n = a.length;
  const po = a.filter((x, i) => x === b[i]).length / n;
  const ya = a.filter(Boolean).length / n;
  const yb = b.filter(Boolean).length / n;
  const pe = ya * yb + (1 - ya) * (1 - yb);
  return pe === 1 ? null : (po - pe) / (1 - pe);
}
