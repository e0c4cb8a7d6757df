/**
 * GEdit-Bench's own table: per language, the mean SC, PQ and O of each task type, then the
 * unweighted mean of the task means, for the full set and for the Intersection_exist rows. O is
 * sqrt(SC * PQ) of each row, averaged (as the official statistics recompute it per row). A row
 * whose SC or PQ came back unscored is counted, never averaged in. Without a VIEScore judge the
 * local scorer's quality and change figures stand in, and SC is "not judged".
 */
import { GEDIT_LANGUAGES, GEDIT_PUBLISHED, GEDIT_TASKS, type GeditLanguage } from "./gedit-facts.js";
import { type Aggregate, type Coverage, type RowFigure, type StatsOptions, coverageLine, coverageOf, failedEdit, rowValues, show, statsDefaults } from "./figures.js";
import type { ResultRow } from "./results.js";
import { type Figure, figure } from "./stats.js";

export interface GeditLocal {
  /** The local scorer's quality figure (0..5), PQ-like; not comparable to PQ. */
  quality: Figure;
  /** The local scorer's share of the image left unchanged (0..5). */
  preserving: Figure;
  n: number;
}

export interface GeditTaskCell {
  sc: Figure;
  pq: Figure;
  o: Figure;
  /** Rows averaged in (both SC and PQ scored; under strict, failed edits too). */
  n: number;
  coverage: Coverage;
  local?: GeditLocal;
}

export interface GeditSet extends GeditTaskCell {
  /** Every row of the set, whatever came of it. */
  rows: number;
  /** Judged rows whose SC or PQ had no usable answer (or was refused): in no mean. */
  unscored: number;
  /** Rows with no VIEScore figures at all: the local scorer, or another judge protocol. */
  notJudged: number;
  failed: number;
  /** Task types with at least one averaged row: the overall figures are the mean of these. */
  taskTypes: number;
  tasks: Record<string, GeditTaskCell>;
}

export type GeditTables = Partial<Record<GeditLanguage, { full: GeditSet; intersection: GeditSet }>>;

/** A row whose SC and PQ were both judged: what the GEdit table averages and the official CSVs hold. */
export const judgedBoth = (r: ResultRow) => r.status === "ok" && r.viescore?.sc.status === "scored" && r.viescore.pq.status === "scored";
const vie = (pick: (sc: number, pq: number) => number) => (r: ResultRow): number | "unscored" | null => (!r.viescore ? null : judgedBoth(r) ? pick(r.viescore.sc.score!, r.viescore.pq.score!) : "unscored");

/** VIEScore's figures on single rows (0..10); O is sqrt(SC * PQ) of the row, as the official statistics recompute it. */
export const GEDIT_FIGURES: RowFigure[] = [
  { key: "sc", label: "SC", digits: 3, higherIsBetter: true, lowest: 0, read: vie((sc) => sc) },
  { key: "pq", label: "PQ", digits: 3, higherIsBetter: true, lowest: 0, read: vie((_, pq) => pq) },
  { key: "o", label: "O", digits: 3, higherIsBetter: true, lowest: 0, read: vie((sc, pq) => Math.sqrt(sc * pq)) },
];

const localFigure = (p: "quality" | "preserving"): RowFigure => ({
  key: `local-${p}`,
  label: p,
  digits: 3,
  higherIsBetter: true,
  lowest: 0,
  read: (r) => {
    const c = r.scorer?.backend === "local" ? r.scores?.[p] : undefined;
    return c?.status === "scored" && c.score !== undefined ? c.score : null;
  },
});
const LOCAL_FIGURES = { quality: localFigure("quality"), preserving: localFigure("preserving") };

const taskOrder = (t: string) => (GEDIT_TASKS as readonly string[]).indexOf(t) >>> 0;

function setOf(rows: ResultRow[], aggregate: Aggregate, B: number, seed: number): GeditSet {
  const tasks = [...new Set(rows.map((r) => r.gedit!.task))].sort((a, b) => taskOrder(a) - taskOrder(b) || a.localeCompare(b));
  const values = Object.fromEntries(GEDIT_FIGURES.map((f) => [f.key, rowValues(rows, f, aggregate)])) as Record<"sc" | "pq" | "o", Array<number | null>>;
  const locals = { quality: rowValues(rows, LOCAL_FIGURES.quality, "scored"), preserving: rowValues(rows, LOCAL_FIGURES.preserving, "scored") };
  const isLocal = (r: ResultRow) => r.status === "ok" && r.scorer?.backend === "local" && Boolean(r.scores);
  // per task: the values of each figure; the set's figure is the plain mean of the task means, every task type weighing the same
  const strataOf = (v: Array<number | null>, only?: string) =>
    tasks.filter((t) => !only || t === only).map((t) => rows.flatMap((r, i) => (r.gedit!.task === t && v[i] !== null ? [v[i]!] : []))).filter((s) => s.length);
  const cellOf = (task?: string): GeditTaskCell => {
    const idx = rows.flatMap((r, i) => (!task || r.gedit!.task === task ? [i] : []));
    const sub = idx.map((i) => rows[i]);
    const fig = (k: "sc" | "pq" | "o") => figure(strataOf(values[k], task), "meanOfMeans", { B, seed });
    const c: GeditTaskCell = {
      sc: fig("sc"),
      pq: fig("pq"),
      o: fig("o"),
      n: idx.filter((i) => values.sc[i] !== null).length,
      coverage: coverageOf(sub, judgedBoth, (r) => Boolean(r.viescore) && !judgedBoth(r)),
    };
    const localRows = sub.filter(isLocal);
    if (localRows.length) {
      const lf = (k: "quality" | "preserving") => figure(strataOf(locals[k], task), "meanOfMeans", { B, seed });
      c.local = { quality: lf("quality"), preserving: lf("preserving"), n: localRows.length };
    }
    return c;
  };
  const cells = Object.fromEntries(tasks.map((t) => [t, cellOf(t)]));
  return {
    ...cellOf(),
    rows: rows.length,
    unscored: rows.filter((r) => r.status === "ok" && r.viescore && !judgedBoth(r)).length,
    notJudged: rows.filter((r) => r.status === "ok" && !r.viescore).length,
    failed: rows.filter(failedEdit).length,
    taskTypes: Object.values(cells).filter((c) => c.n > 0).length,
    tasks: cells,
  };
}

/** The GEdit tables of one group's rows (one model and preset); languages without rows are left out. */
export function geditTables(rows: ResultRow[], o: StatsOptions = {}): GeditTables {
  const { aggregate, B, seed } = statsDefaults(o);
  const out: GeditTables = {};
  for (const language of GEDIT_LANGUAGES) {
    const rs = rows.filter((r) => r.gedit?.language === language);
    if (!rs.length) continue;
    out[language] = { full: setOf(rs, aggregate, B, seed), intersection: setOf(rs.filter((r) => r.gedit!.intersection), aggregate, B, seed) };
  }
  return out;
}

/** Who judged: "viescore-v1, judge gpt-4.1", or the local scorer. */
export function geditJudge(rows: ResultRow[]): string {
  const s = rows.find((r) => r.scorer)?.scorer;
  if (!s) return "no scorer";
  return s.backend === "judge" ? `${s.version}, judge ${s.model}` : `${s.backend} scorer (${s.version})`;
}

const f = (x: Figure | null | undefined) => show(x, 3);
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface TableRow {
  name: string;
  cells: string[];
}

/** Rows of one language's table: one per task type, then the mean of the task means, then counts. */
function tableRows(t: { full: GeditSet; intersection: GeditSet }): { head: string[]; rows: TableRow[]; local: boolean } {
  const local = Boolean(t.full.local) && t.full.n === 0;
  const fig = (c: GeditTaskCell | undefined): string[] => {
    if (!c) return ["", "", "", ""];
    if (local) return [String(c.local?.n ?? 0), "not judged", f(c.local?.quality), f(c.local?.preserving)];
    return [String(c.n), c.n ? f(c.sc) : "n/a", c.n ? f(c.pq) : "n/a", c.n ? f(c.o) : "n/a"];
  };
  const head = local
    ? ["task type", "n", "SC", "quality (local, 0..5)", "unchanged (local, 0..5)", "n (intersection)", "SC", "quality (local)", "unchanged (local)"]
    : ["task type", "n", "SC", "PQ", "O", "n (intersection)", "SC", "PQ", "O"];
  const tasks = Object.keys(t.full.tasks);
  const rows: TableRow[] = tasks.map((task) => ({ name: task, cells: [...fig(t.full.tasks[task]), ...fig(t.intersection.tasks[task])] }));
  const mean = (s: GeditSet) => (local ? [String(s.local?.n ?? 0), "not judged", f(s.local?.quality), f(s.local?.preserving)] : [String(s.n), f(s.sc), f(s.pq), f(s.o)]);
  rows.push({ name: `mean of ${t.full.taskTypes || tasks.length} task means (of ${GEDIT_TASKS.length})`, cells: [...mean(t.full), ...mean(t.intersection)] });
  return { head, rows, local };
}

const counts = (s: GeditSet) => `${s.rows} rows, ${s.n} averaged, ${s.unscored} unscored, ${s.notJudged} not judged${s.failed ? `, ${s.failed} failed edits` : ""} (${coverageLine(s.coverage)})`;

export function geditMarkdown(group: string, tables: GeditTables, judge: string, aggregate: Aggregate = "scored"): string[] {
  const out: string[] = [];
  for (const [language, t] of Object.entries(tables) as Array<[GeditLanguage, { full: GeditSet; intersection: GeditSet }]>) {
    const { head, rows, local } = tableRows(t);
    out.push(`### GEdit-Bench-${language.toUpperCase()}: ${group} (${judge})`, "");
    if (local) out.push("No judge: SC and PQ are not judged; the local scorer's quality and change figures stand in and compare with no published figure.", "");
    else if (t.full.n === 0 && t.full.notJudged > 0) out.push("This run's judge protocol gives no VIEScore figures: SC, PQ and O are not judged (its own figures are in the table above).", "");
    out.push(`Each figure: value [95 % bootstrap interval, resampled within task types]; aggregation: ${aggregate}.`, "");
    out.push(`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`);
    for (const r of rows) out.push(`| ${r.name} | ${r.cells.join(" | ")} |`);
    out.push("", `Full set: ${counts(t.full)}. Intersection: ${counts(t.intersection)}.`, "");
    if (judge.startsWith("viescore")) out.push("SC, PQ and O are on VIEScore's 0..10. The category table above holds its sub-scores halved onto 0..5 (Preserving: over-editing; Quality: PQ); Following is n/a there, as VIEScore asks no yes/no question.", "");
    if (language === "en" && !local) {
      out.push(`Beside published figures (${GEDIT_PUBLISHED.set}, ${GEDIT_PUBLISHED.judge} judge; ${GEDIT_PUBLISHED.source}; not run here):`, "");
      out.push("| model | SC | PQ | O | figures |", "| --- | --- | --- | --- | --- |");
      out.push(`| **${group}** | ${f(t.full.sc)} | ${f(t.full.pq)} | ${f(t.full.o)} | this run, ${judge} |`);
      for (const p of GEDIT_PUBLISHED.rows) out.push(`| ${p.model} | ${p.sc.toFixed(3)} | ${p.pq.toFixed(3)} | ${p.o.toFixed(3)} | published, ${GEDIT_PUBLISHED.judge} judge |`);
      out.push("");
    }
  }
  return out;
}

export function geditHtml(group: string, tables: GeditTables, judge: string, aggregate: Aggregate = "scored"): string {
  const parts: string[] = [];
  for (const [language, t] of Object.entries(tables) as Array<[GeditLanguage, { full: GeditSet; intersection: GeditSet }]>) {
    const { head, rows, local } = tableRows(t);
    const body = rows.map((r) => `<tr><td>${esc(r.name)}</td>${r.cells.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("");
    let published = "";
    if (language === "en" && !local) {
      const pr = GEDIT_PUBLISHED.rows.map((p) => `<tr class="published"><td>${esc(p.model)}</td><td>${p.sc.toFixed(3)}</td><td>${p.pq.toFixed(3)}</td><td>${p.o.toFixed(3)}</td><td>published, ${esc(GEDIT_PUBLISHED.judge)} judge</td></tr>`).join("");
      published = `<p>Beside published figures (${esc(GEDIT_PUBLISHED.set)}, ${esc(GEDIT_PUBLISHED.judge)} judge; ${esc(GEDIT_PUBLISHED.source)}; not run here):</p><table class="gedit-published"><thead><tr><th>model</th><th>SC</th><th>PQ</th><th>O</th><th>figures</th></tr></thead><tbody><tr><td><b>${esc(group)}</b></td><td>${f(t.full.sc)}</td><td>${f(t.full.pq)}</td><td>${f(t.full.o)}</td><td>this run, ${esc(judge)}</td></tr>${pr}</tbody></table>`;
    }
    parts.push(
      `<h3>GEdit-Bench-${language.toUpperCase()} (${esc(judge)}; aggregation ${aggregate})</h3>${local ? "<p>No judge: SC and PQ are not judged; the local scorer's figures stand in.</p>" : ""}<table class="gedit" data-language="${language}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${body}</tbody></table><p>Full set: ${esc(counts(t.full))}. Intersection: ${esc(counts(t.intersection))}.</p>${published}`,
    );
  }
  return parts.join("");
}
