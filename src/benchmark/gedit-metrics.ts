/**
 * GEdit-Bench's own table: per language, the mean SC, PQ and O of each task type, then the
 * unweighted mean of the task means, for the full set and for the Intersection_exist rows. O is
 * sqrt(SC * PQ) of each row, averaged (as the official statistics recompute it per row). A row
 * whose SC or PQ came back unscored is counted, never averaged in. Without a VIEScore judge the
 * local scorer's quality and change figures stand in, and SC is "not judged".
 */
import { GEDIT_LANGUAGES, GEDIT_PUBLISHED, GEDIT_TASKS, type GeditLanguage } from "./gedit-facts.js";
import type { ResultRow } from "./results.js";

export interface GeditLocal {
  /** The local scorer's quality figure (0..5), PQ-like; not comparable to PQ. */
  quality: number | null;
  /** The local scorer's share of the image left unchanged (0..5). */
  preserving: number | null;
  n: number;
}

export interface GeditTaskCell {
  sc: number | null;
  pq: number | null;
  o: number | null;
  /** Rows averaged in (both SC and PQ scored). */
  n: number;
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

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

const judgedBoth = (r: ResultRow) => r.status === "ok" && r.viescore?.sc.status === "scored" && r.viescore.pq.status === "scored";

function taskCell(rows: ResultRow[]): GeditTaskCell {
  const ok = rows.filter(judgedBoth);
  const sc = ok.map((r) => r.viescore!.sc.score!);
  const pq = ok.map((r) => r.viescore!.pq.score!);
  const cell: GeditTaskCell = { sc: mean(sc), pq: mean(pq), o: mean(ok.map((_, i) => Math.sqrt(sc[i] * pq[i]))), n: ok.length };
  const local = rows.filter((r) => r.status === "ok" && r.scorer?.backend === "local" && r.scores);
  if (local.length) {
    const fig = (p: "quality" | "preserving") => local.map((r) => r.scores![p]).filter((c) => c.status === "scored" && c.score !== undefined).map((c) => c.score!);
    cell.local = { quality: mean(fig("quality")), preserving: mean(fig("preserving")), n: local.length };
  }
  return cell;
}

function setOf(rows: ResultRow[]): GeditSet {
  const byTask = new Map<string, ResultRow[]>();
  for (const r of rows) byTask.set(r.gedit!.task, [...(byTask.get(r.gedit!.task) ?? []), r]);
  const order = (t: string) => (GEDIT_TASKS as readonly string[]).indexOf(t) >>> 0;
  const tasks = Object.fromEntries([...byTask.keys()].sort((a, b) => order(a) - order(b) || a.localeCompare(b)).map((t) => [t, taskCell(byTask.get(t)!)]));
  const cells = Object.values(tasks);
  const judged = cells.filter((c) => c.n > 0);
  // the published figure is the plain mean of the task means: every task type weighs the same
  const over = (k: "sc" | "pq" | "o") => mean(judged.map((c) => c[k]!));
  const locals = cells.filter((c) => c.local);
  const localOver = (k: "quality" | "preserving") => mean(locals.map((c) => c.local![k]).filter((v): v is number => v !== null));
  return {
    sc: over("sc"),
    pq: over("pq"),
    o: over("o"),
    n: judged.reduce((a, c) => a + c.n, 0),
    ...(locals.length ? { local: { quality: localOver("quality"), preserving: localOver("preserving"), n: locals.reduce((a, c) => a + c.local!.n, 0) } } : {}),
    rows: rows.length,
    unscored: rows.filter((r) => r.status === "ok" && r.viescore && !judgedBoth(r)).length,
    notJudged: rows.filter((r) => r.status === "ok" && !r.viescore).length,
    failed: rows.filter((r) => r.status === "edit_failed").length,
    taskTypes: judged.length,
    tasks,
  };
}

/** The GEdit tables of one group's rows (one model and preset); languages without rows are left out. */
export function geditTables(rows: ResultRow[]): GeditTables {
  const out: GeditTables = {};
  for (const language of GEDIT_LANGUAGES) {
    const rs = rows.filter((r) => r.gedit?.language === language);
    if (!rs.length) continue;
    out[language] = { full: setOf(rs), intersection: setOf(rs.filter((r) => r.gedit!.intersection)) };
  }
  return out;
}

/** Who judged: "viescore-v1, judge gpt-4.1", or the local scorer. */
export function geditJudge(rows: ResultRow[]): string {
  const s = rows.find((r) => r.scorer)?.scorer;
  if (!s) return "no scorer";
  return s.backend === "judge" ? `${s.version}, judge ${s.model}` : `${s.backend} scorer (${s.version})`;
}

const f = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : x.toFixed(3));
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

const counts = (s: GeditSet) => `${s.rows} rows, ${s.n} averaged, ${s.unscored} unscored, ${s.notJudged} not judged${s.failed ? `, ${s.failed} failed edits` : ""}`;

export function geditMarkdown(group: string, tables: GeditTables, judge: string): string[] {
  const out: string[] = [];
  for (const [language, t] of Object.entries(tables) as Array<[GeditLanguage, { full: GeditSet; intersection: GeditSet }]>) {
    const { head, rows, local } = tableRows(t);
    out.push(`### GEdit-Bench-${language.toUpperCase()}: ${group} (${judge})`, "");
    if (local) out.push("No judge: SC and PQ are not judged; the local scorer's quality and change figures stand in and compare with no published figure.", "");
    else if (t.full.n === 0 && t.full.notJudged > 0) out.push("This run's judge protocol gives no VIEScore figures: SC, PQ and O are not judged (its own figures are in the table above).", "");
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

export function geditHtml(group: string, tables: GeditTables, judge: string): string {
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
      `<h3>GEdit-Bench-${language.toUpperCase()} (${esc(judge)})</h3>${local ? "<p>No judge: SC and PQ are not judged; the local scorer's figures stand in.</p>" : ""}<table class="gedit" data-language="${language}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${body}</tbody></table><p>Full set: ${esc(counts(t.full))}. Intersection: ${esc(counts(t.intersection))}.</p>${published}`,
    );
  }
  return parts.join("");
}
