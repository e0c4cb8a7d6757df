/**
 * Paired comparison of two groups of rows (two editors, presets, models or runs) on the samples
 * both have, paired on sample id + seed: per figure B minus A, its paired stratified bootstrap
 * interval, the sign-flip p and win/tie/loss; per category or task type the same, Holm-corrected
 * across the tasks. An interval holding 0 is "not distinguishable".
 */
import { type Aggregate, EXACT_FIGURES, JUDGED_FIGURES, type RowFigure, type StatsOptions, rowValues, statsDefaults } from "./figures.js";
import { GEDIT_FIGURES } from "./gedit-metrics.js";
import { GEDIT_LANGUAGES } from "./gedit-facts.js";
import type { ResultRow } from "./results.js";
import { judgeLabel } from "./judge-summary.js";
import { ALPHA, type Pair, type PairedResult, type Structure, holm, paired } from "./stats.js";

export interface FigureComparison {
  key: string;
  label: string;
  digits: number;
  percent?: boolean;
  higherIsBetter: boolean;
  /** How the overall figure is built from the strata: pooled (Real-Edit) or the mean of task means (GEdit-Bench). */
  structure: Structure;
  overall: PairedResult;
  /** Per category or task type; `pHolm` is p after Holm's correction over this figure's tasks. */
  tasks: Record<string, PairedResult & { pHolm: number | null }>;
}

export interface Comparison {
  a: string;
  b: string;
  aggregate: Aggregate;
  bootstrap: { B: number; seed: number };
  /** Samples (id + seed) both groups have, and those only one has. */
  pairs: number;
  onlyA: number;
  onlyB: number;
  figures: FigureComparison[];
  /** Set when rows judged by different judges were compared anyway (--allow-mixed-judges). */
  mixedJudges?: string[];
}

export const pairKey = (r: ResultRow) => `${r.sample}\u0000${r.seed}`;

interface FigureSpec {
  fig: RowFigure;
  key: string;
  label: string;
  structure: Structure;
  rows: (rs: readonly ResultRow[]) => ResultRow[];
  stratum: (r: ResultRow) => string;
}

function specs(rows: readonly ResultRow[]): FigureSpec[] {
  const out: FigureSpec[] = [...JUDGED_FIGURES, ...EXACT_FIGURES].map((fig) => ({ fig, key: fig.key, label: fig.label, structure: "pooled", rows: (rs) => [...rs], stratum: (r) => r.category }));
  for (const lang of GEDIT_LANGUAGES) {
    if (!rows.some((r) => r.gedit?.language === lang)) continue;
    for (const fig of GEDIT_FIGURES)
      out.push({ fig, key: `gedit-${lang}.${fig.key}`, label: `GEdit-${lang.toUpperCase()} ${fig.label}`, structure: "meanOfMeans", rows: (rs) => rs.filter((r) => r.gedit?.language === lang), stratum: (r) => r.gedit!.task });
  }
  return out;
}

/** B minus A on every figure both groups have values for, on the samples both have. */
export function compareRows(rowsA: readonly ResultRow[], rowsB: readonly ResultRow[], labels: { a: string; b: string }, o: StatsOptions = {}): Comparison {
  const { aggregate, B, seed } = statsDefaults(o);
  const ka = new Set(rowsA.map(pairKey));
  const kb = new Set(rowsB.map(pairKey));
  const figures: FigureComparison[] = [];
  for (const s of specs([...rowsA, ...rowsB])) {
    const side = (rs: readonly ResultRow[]) => {
      const sub = s.rows(rs);
      const v = rowValues(sub, s.fig, aggregate);
      return new Map(sub.flatMap((r, i) => (v[i] === null ? [] : [[pairKey(r), { v: v[i]!, stratum: s.stratum(r) }] as const])));
    };
    const va = side(rowsA);
    const vb = side(rowsB);
    const pairs: Pair[] = [...va.entries()].flatMap(([k, x]) => (vb.has(k) ? [{ a: x.v, b: vb.get(k)!.v, stratum: x.stratum }] : []));
    if (!pairs.length) continue;
    const opts = { B, seed, higherIsBetter: s.fig.higherIsBetter };
    const strata = [...new Set(pairs.map((p) => p.stratum))].sort();
    const per = strata.map((t) => paired(pairs.filter((p) => p.stratum === t), "pooled", opts));
    const adjusted = holm(per.map((r) => r.p));
    figures.push({
      key: s.key,
      label: s.label,
      digits: s.fig.digits,
      ...(s.fig.percent ? { percent: true } : {}),
      higherIsBetter: s.fig.higherIsBetter,
      structure: s.structure,
      overall: paired(pairs, s.structure, opts),
      tasks: Object.fromEntries(strata.map((t, i) => [t, { ...per[i], pHolm: adjusted[i], distinguishable: per[i].distinguishable === null || adjusted[i] === null ? null : per[i].distinguishable! && adjusted[i]! < ALPHA }])),
    });
  }
  return { ...labels, aggregate, bootstrap: { B, seed }, pairs: [...ka].filter((k) => kb.has(k)).length, onlyA: [...ka].filter((k) => !kb.has(k)).length, onlyB: [...kb].filter((k) => !ka.has(k)).length, figures };
}

/** Fields of a row's judge record that say who judged; anything else (timings, usage) may differ between like judges. */
/** Who judged a row, as one comparable string; null for rows nobody judged. */
export function rowJudge(r: ResultRow): string | null {
  // the recorded judge, named as bench merge and the report name it
  if (r.judge) return judgeLabel(r.judge);
  if (!r.scorer) return null;
  // the local scorer picks its protocol per sample (photo or synthetic scene): it is one scorer whatever it picked
  if (r.scorer.backend === "local") return `local scorer ${r.scorer.version}`;
  return `judge ${r.scorer.model}, protocol ${r.scorer.protocol} ${r.scorer.version}`;
}

/** The distinct judges of some rows (empty or one: comparable). */
export const judgesOf = (rows: readonly ResultRow[]) => [...new Set(rows.map(rowJudge).filter((j): j is string => j !== null))];

const fmt = (v: number | null, digits: number, sign = false) => (v === null ? "n/a" : `${sign && v >= 0 ? "+" : ""}${v.toFixed(digits)}`);
const fmtCI = (ci: [number, number] | null, digits: number) => (ci ? `[${fmt(ci[0], digits, true)}, ${fmt(ci[1], digits, true)}]` : "");
const fmtP = (p: number | null) => (p === null ? "n/a" : p < 0.001 ? "< 0.001" : p.toFixed(3));

/** "not distinguishable", or which side the difference favours. */
export function verdict(r: PairedResult, higherIsBetter: boolean, a: string, b: string): string {
  if (r.distinguishable === null || r.diff === null) return "n/a";
  if (!r.distinguishable) return "not distinguishable";
  return r.diff > 0 === higherIsBetter ? `${b} better` : `${a} better`;
}

export function compareMarkdown(c: Comparison, heading = "##"): string[] {
  const out = [`${heading} Comparison: ${c.b} minus ${c.a}`, ""];
  out.push(
    `Paired on sample id + seed: ${c.pairs} samples both have${c.onlyA || c.onlyB ? ` (${c.onlyA} only in ${c.a}, ${c.onlyB} only in ${c.b}: left out)` : ""}; aggregation ${c.aggregate}; 95 % paired bootstrap intervals (B = ${c.bootstrap.B}, seed ${c.bootstrap.seed}), two-sided sign-flip p; wins count per sample, by the figure's direction.`,
    "",
  );
  if (c.mixedJudges) out.push(`**Mixed judges**: these rows were judged by ${c.mixedJudges.length} different judges, so a difference may be the judges' (${c.mixedJudges.join(" | ")})`, "");
  out.push(`| figure | n | ${c.a} | ${c.b} | B - A [95 % CI] | p | wins A / ties / B | |`, "| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const f of c.figures) {
    const r = f.overall;
    out.push(`| ${f.label} | ${r.n} | ${fmt(r.a, f.digits)} | ${fmt(r.b, f.digits)} | ${fmt(r.diff, f.digits, true)} ${fmtCI(r.ci, f.digits)} | ${fmtP(r.p)} | ${r.wins.a} / ${r.wins.ties} / ${r.wins.b} | ${verdict(r, f.higherIsBetter, "A", "B")} |`);
  }
  out.push("");
  for (const f of c.figures) {
    if (Object.keys(f.tasks).length < 2) continue;
    out.push(`${heading}# ${f.label} per ${f.key.startsWith("gedit-") ? "task type" : "category"} (Holm-corrected over ${Object.keys(f.tasks).length})`, "");
    out.push("| task | n | B - A [95 % CI] | p | p (Holm) | wins A / ties / B | |", "| --- | --- | --- | --- | --- | --- | --- |");
    for (const [t, r] of Object.entries(f.tasks)) out.push(`| ${t} | ${r.n} | ${fmt(r.diff, f.digits, true)} ${fmtCI(r.ci, f.digits)} | ${fmtP(r.p)} | ${fmtP(r.pHolm)} | ${r.wins.a} / ${r.wins.ties} / ${r.wins.b} | ${verdict(r, f.higherIsBetter, "A", "B")} |`);
    out.push("");
  }
  return out;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A forest plot of one figure's paired differences: the overall one, then each task's, with their intervals and the zero line. Inline SVG. */
export function forestSvg(f: FigureComparison, a: string, b: string): string {
  const items: Array<[string, PairedResult]> = [["overall", f.overall], ...Object.entries(f.tasks)];
  const lo = Math.min(0, ...items.flatMap(([, r]) => (r.ci ? [r.ci[0]] : r.diff === null ? [] : [r.diff])));
  const hi = Math.max(0, ...items.flatMap(([, r]) => (r.ci ? [r.ci[1]] : r.diff === null ? [] : [r.diff])));
  const span = hi - lo || 1;
  const [left, plotW, rowH] = [190, 330, 20];
  const x = (v: number) => left + ((v - lo) / span) * plotW;
  const h = 40 + rowH * items.length + 20;
  const rows = items
    .map(([name, r], i) => {
      const y = 40 + i * rowH + rowH / 2;
      const colour = r.distinguishable ? "#b45309" : "#2563eb";
      const bar = r.ci ? `<line x1="${x(r.ci[0]).toFixed(1)}" x2="${x(r.ci[1]).toFixed(1)}" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="2"/>` : "";
      const dot = r.diff === null ? "" : `<circle cx="${x(r.diff).toFixed(1)}" cy="${y}" r="${name === "overall" ? 5 : 3.5}" fill="${colour}"/>`;
      return `<text x="0" y="${y + 4}" font-size="12"${name === "overall" ? ' font-weight="bold"' : ""}>${esc(name)} (n ${r.n})</text>${bar}${dot}<text x="${left + plotW + 8}" y="${y + 4}" font-size="11">${fmt(r.diff, f.digits, true)}</text>`;
    })
    .join("");
  const zero = x(0).toFixed(1);
  const title = `${f.label}: ${b} minus ${a} (95 % CI)`;
  return `<svg role="img" class="forest" aria-label="${esc(title)}" width="${left + plotW + 70}" height="${h}" viewBox="0 0 ${left + plotW + 70} ${h}"><text x="0" y="16" font-size="14" font-weight="bold">${esc(title)}</text><line x1="${zero}" x2="${zero}" y1="30" y2="${h - 20}" stroke="#6b7280" stroke-dasharray="3,3"/><text x="${zero}" y="${h - 6}" font-size="11" text-anchor="middle">0</text>${lo < 0 ? `<text x="${left}" y="${h - 6}" font-size="11">${fmt(lo, f.digits)}</text>` : ""}${hi > 0 ? `<text x="${left + plotW}" y="${h - 6}" font-size="11" text-anchor="end">${fmt(hi, f.digits)}</text>` : ""}${rows}</svg>`;
}

export function compareHtml(c: Comparison): string {
  const body = c.figures
    .map((f) => {
      const r = f.overall;
      return `<tr><td>${esc(f.label)}</td><td>${r.n}</td><td>${fmt(r.a, f.digits)}</td><td>${fmt(r.b, f.digits)}</td><td>${fmt(r.diff, f.digits, true)} ${fmtCI(r.ci, f.digits)}</td><td>${fmtP(r.p)}</td><td>${r.wins.a} / ${r.wins.ties} / ${r.wins.b}</td><td>${esc(verdict(r, f.higherIsBetter, "A", "B"))}</td></tr>`;
    })
    .join("");
  const forests = c.figures.filter((f) => Object.keys(f.tasks).length > 0).map((f) => forestSvg(f, "A", "B")).join("");
  return `<section class="comparison"><h2>Comparison: B = ${esc(c.b)} minus A = ${esc(c.a)}</h2><p>${c.pairs} samples paired on id + seed${c.onlyA || c.onlyB ? ` (${c.onlyA} only in A, ${c.onlyB} only in B)` : ""}; aggregation ${c.aggregate}; 95 % paired bootstrap intervals (B = ${c.bootstrap.B}, seed ${c.bootstrap.seed}); per-task p Holm-corrected.</p>${c.mixedJudges ? `<p class="refused">Mixed judges: these rows were judged by ${c.mixedJudges.length} different judges, so a difference may be the judges' (${esc(c.mixedJudges.join(" | "))})</p>` : ""}<table><thead><tr><th>figure</th><th>n</th><th>A</th><th>B</th><th>B - A [95 % CI]</th><th>p</th><th>wins A / ties / B</th><th></th></tr></thead><tbody>${body}</tbody></table><div class="charts">${forests}</div></section>`;
}
