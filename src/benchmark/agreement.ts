/**
 * How far two judgings of the same edits agree (two runs of one editor, judged by two judges,
 * protocols or dates): over the rows both scored, per figure Spearman's rho, Kendall's tau-b and
 * the mean absolute difference; Cohen's kappa on following's yes/no. Undefined stays null.
 */
import { type RowFigure } from "./figures.js";
import { GEDIT_FIGURES } from "./gedit-metrics.js";
import type { ResultRow } from "./results.js";
import { cohensKappa, kendallTauB, mean, spearman } from "./stats.js";

export interface FigureAgreement {
  key: string;
  label: string;
  n: number;
  spearman: number | null;
  kendallTauB: number | null;
  meanAbsDiff: number | null;
}

export interface Agreement {
  a: string;
  b: string;
  /** Rows (group + sample + seed) in both runs. */
  rows: number;
  figures: FigureAgreement[];
  following: { n: number; kappa: number | null; agree: number | null; yesA: number; yesB: number } | null;
}

const perspectiveScore = (p: "following" | "preserving" | "quality"): RowFigure => ({
  key: p,
  label: `${p} (0..5)`,
  digits: 2,
  higherIsBetter: true,
  lowest: 0,
  read: (r) => {
    const c = r.scores?.[p];
    return c?.status === "scored" && c.score !== undefined ? c.score : null;
  },
});

const FIGURES: RowFigure[] = [perspectiveScore("following"), perspectiveScore("preserving"), perspectiveScore("quality"), ...GEDIT_FIGURES];

/** The same edit in both runs: the same group, sample and seed. */
const rowKey = (r: ResultRow) => `${r.model}\u0000${r.preset}\u0000${r.sample}\u0000${r.seed}`;

export function agreement(rowsA: readonly ResultRow[], rowsB: readonly ResultRow[], labels: { a: string; b: string }): Agreement {
  const okB = new Map(rowsB.filter((r) => r.status === "ok").map((r) => [rowKey(r), r]));
  const both = rowsA.filter((r) => r.status === "ok" && okB.has(rowKey(r))).map((r) => [r, okB.get(rowKey(r))!] as const);
  const figures: FigureAgreement[] = [];
  for (const f of FIGURES) {
    const xs: number[] = [];
    const ys: number[] = [];
    for (const [x, y] of both) {
      const [vx, vy] = [f.read(x), f.read(y)];
      if (typeof vx === "number" && typeof vy === "number") (xs.push(vx), ys.push(vy));
    }
    if (!xs.length) continue;
    figures.push({ key: f.key, label: f.label, n: xs.length, spearman: spearman(xs, ys), kendallTauB: kendallTauB(xs, ys), meanAbsDiff: mean(xs.map((v, i) => Math.abs(v - ys[i]))) });
  }
  const yes = both.flatMap(([x, y]) => {
    const [a, b] = [x.scores?.following, y.scores?.following];
    return a?.status === "scored" && b?.status === "scored" && a.yes !== undefined && b.yes !== undefined ? [[a.yes, b.yes] as const] : [];
  });
  const following = yes.length
    ? {
        n: yes.length,
        kappa: cohensKappa(yes.map((p) => p[0]), yes.map((p) => p[1])),
        agree: yes.filter(([a, b]) => a === b).length / yes.length,
        yesA: yes.filter((p) => p[0]).length,
        yesB: yes.filter((p) => p[1]).length,
      }
    : null;
  const keysA = new Set(rowsA.map(rowKey));
  return { ...labels, rows: rowsB.filter((r) => keysA.has(rowKey(r))).length, figures, following };
}

const f3 = (v: number | null) => (v === null ? "undefined" : v.toFixed(3));

export function agreementMarkdown(g: Agreement): string[] {
  const out = [`## Agreement: ${g.a} vs ${g.b}`, "", `${g.rows} rows in both runs; each figure over the rows both scored. "undefined": a side gave every row the same value (no variance), not 0.`, ""];
  out.push("| figure | n | Spearman rho | Kendall tau-b | mean abs. difference |", "| --- | --- | --- | --- | --- |");
  for (const f of g.figures) out.push(`| ${f.label} | ${f.n} | ${f3(f.spearman)} | ${f3(f.kendallTauB)} | ${f3(f.meanAbsDiff)} |`);
  out.push("");
  if (g.following)
    out.push(`Following yes/no over ${g.following.n} rows: Cohen's kappa ${f3(g.following.kappa)}, raw agreement ${(100 * g.following.agree!).toFixed(1)} % (yes: ${g.following.yesA} in A, ${g.following.yesB} in B).`, "");
  else out.push("Following yes/no: no row with a yes/no verdict in both runs.", "");
  return out;
}
