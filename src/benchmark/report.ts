/**
 * Reports a person reads: report.json, a Markdown summary, and one self-contained HTML file
 * (inline CSS, inline SVG charts, images as data URLs: it opens with no network).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { changeMap, decodeRaster, heatMapPng } from "../../reward/index.js";
import { GEDIT_PUBLISHED } from "./gedit-facts.js";
import { type GeditTables, geditHtml, geditMarkdown } from "./gedit-metrics.js";
import { type Comparison, compareHtml, compareMarkdown, compareRows, judgesOf } from "./compare.js";
import { type Aggregate, type StatsOptions, coverageLine, show, statsDefaults } from "./figures.js";
import { type Cell, type GroupMetrics, type SweepCurve, groupMetrics, groupRows, sweepCurves } from "./metrics.js";
import { type CostSummary, type JudgeSummary, costSummary, judgeSummary } from "./judge-summary.js";
import type { ResultRow } from "./results.js";
import type { Figure } from "./stats.js";

export interface ReportOptions extends StatsOptions {
  /** Dollars per million judge prompt and completion tokens, for the cost line's estimate. */
  price?: [number, number];
}

export interface Report {
  generated: string;
  suite: string;
  samples: number;
  /** The headline aggregation; every group holds both in `aggregations`. */
  aggregate: Aggregate;
  /** How every interval was made. */
  bootstrap: { B: number; seed: number; level: 0.95; strata: string };
  groups: GroupMetrics[];
  comparison?: Comparison;
  /** GEdit-Bench: the main group's table (`gedit.<language>.full` / `.intersection`); every group's is in groups[].gedit. */
  gedit?: GeditTables;
  /** Who judged the main group's GEdit rows. */
  geditJudge?: string;
  /** Published figures printed beside ours: never computed here. */
  geditPublished?: typeof GEDIT_PUBLISHED;
  /** Rows carrying `sweep`: judged score per requested level. */
  sweep?: SweepCurve[];
  /** Who judged the rows (mixed judges named), and how repeatable the judge was. */
  judge: JudgeSummary;
  /** Judge tokens, the estimated cost, edit and judge latencies. */
  cost: CostSummary;
}

const f = (x: Figure | null | undefined, digits = 2) => show(x, digits);
const pct = (x: Figure | null | undefined) => show(x, 1, true);
const ms = (x: number) => x.toFixed(0);
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function buildReport(rows: ResultRow[], suite: string, compare?: [string, string], o: ReportOptions = {}): Report {
  const { aggregate, B, seed } = statsDefaults(o);
  const groups = groupMetrics(rows, o);
  const pair = compare ?? (groups.length >= 2 ? [groups[0].group, groups[1].group] : undefined);
  const main = groups.find((g) => g.group === pair?.[0]) ?? groups[0];
  let comparison: Comparison | undefined;
  if (pair) {
    const by = groupRows(rows);
    const [ra, rb] = [by.get(pair[0]) ?? [], by.get(pair[1]) ?? []];
    comparison = compareRows(ra, rb, { a: pair[0], b: pair[1] }, o);
    const judges = judgesOf([...ra, ...rb]);
    if (judges.length > 1) comparison.mixedJudges = judges;
  }
  const sweep = sweepCurves(rows, o);
  return {
    generated: new Date().toISOString(),
    suite,
    samples: new Set(rows.map((r) => r.sample)).size,
    aggregate,
    bootstrap: { B, seed, level: 0.95, strata: "category (GEdit-Bench: task type)" },
    groups,
    comparison,
    ...(main?.gedit ? { gedit: main.gedit, geditJudge: main.geditJudge, geditPublished: GEDIT_PUBLISHED } : {}),
    ...(sweep.length ? { sweep } : {}),
    judge: judgeSummary(rows),
    cost: costSummary(rows, o.price),
  };
}

const aggregateNote = (r: Report) =>
  `Each figure: value [95 % bootstrap interval] (B = ${r.bootstrap.B}, seed ${r.bootstrap.seed}, resampled within each ${r.bootstrap.strata}). Headline aggregation: **${r.aggregate}** (${r.aggregate === "scored" ? "means over scored rows, as published tables" : "a missing, refused or failed edit counts as the lowest score"}); report.json holds both.`;

function cellRow(name: string, c: Cell): string {
  const t = c.truth ? ` | ${pct(c.truth.following)} | ${f(c.truth.preservationError, 4)} | ${f(c.truth.qualityError, 4)}` : " | | | ";
  return `| ${name} | ${c.n} | ${c.coverage.scored}/${c.coverage.rows} | ${pct(c.following)} | ${f(c.preserving)} | ${f(c.quality)} | ${c.unscored} | ${c.notJudged}${t} |`;
}

const otherAggregate = (g: GroupMetrics): string => {
  const other: Aggregate = g.aggregate === "scored" ? "strict" : "scored";
  const o = g.aggregations[other].overall;
  return `${other[0].toUpperCase()}${other.slice(1)} overall: Following ${pct(o.following)}, Preserving ${f(o.preserving)}, Quality ${f(o.quality)}${o.truth ? `, exact following ${pct(o.truth.following)}` : ""}.`;
};

function sweepMarkdown(curves: SweepCurve[]): string[] {
  const out = ["## Sweeps: requested level against judged score (0..5)", ""];
  for (const c of curves) {
    out.push(`${c.model}, ${c.perspective}: Spearman's rho ${f(c.rho, 3)} (n ${c.rho.n})`, "", "| level | n | judged score |", "| --- | --- | --- |");
    for (const p of c.points) out.push(`| ${p.level} | ${p.score.n} | ${f(p.score)} |`);
    out.push("");
  }
  return out;
}

export function markdown(r: Report): string {
  const out = [`# Benchmark report: ${r.suite}`, "", `${r.samples} samples; generated ${r.generated}.`, ""];
  out.push("Following = % judged yes; Preserving and Quality = mean 0..5 (judge or local scorer). Exact columns come from synthetic scenes' ground truth (following accuracy, mean change outside the region, mean error to the true target).", "");
  out.push(aggregateNote(r), "");
  out.push(`${r.judge.line}.`, "", `${r.cost.line}.`, "");
  for (const g of r.groups) {
    out.push(`## ${g.group}`, "");
    out.push(`${g.overall.coverage.rows ? coverageLine(g.overall.coverage) : "no rows"}.`, "");
    out.push("| category | n | scored | Following | Preserving | Quality | unscored | not judged | exact following | exact preservation err | exact quality err |");
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    out.push(cellRow("**overall**", g.overall));
    for (const [c, cell] of Object.entries(g.categories)) out.push(cellRow(c, cell));
    out.push("", otherAggregate(g));
    out.push("", `Edit latency: p50 ${ms(g.latencyMs.p50)} ms, p90 ${ms(g.latencyMs.p90)} ms, p99 ${ms(g.latencyMs.p99)} ms.`);
    if (g.unscoredSamples.length) out.push("", `Unscored (${g.unscoredSamples.length}): ${g.unscoredSamples.map((u) => `${u.key} [${u.perspectives.join(", ")}]`).join("; ")}`);
    if (g.failed.length) out.push("", `Failed edits (${g.failed.length}): ${g.failed.map((x) => `${x.key} (${x.status}): ${x.error}`).join("; ")}`);
    out.push("");
    if (g.gedit) out.push(...geditMarkdown(g.group, g.gedit, g.geditJudge ?? "no scorer", g.aggregate));
  }
  if (r.comparison) out.push(...compareMarkdown(r.comparison));
  if (r.sweep) out.push(...sweepMarkdown(r.sweep));
  return out.join("\n");
}

/** Horizontal bars with the interval as a whisker. */
function bars(title: string, values: Array<[string, Figure | null | undefined]>, max: number, unit: string): string {
  const w = 560;
  const rowH = 22;
  const h = rowH * values.length + 30;
  const scale = (v: number) => Math.max(0, Math.min(1, v / max)) * (w - 300);
  const items = values
    .map(([label, fig], i) => {
      const v = fig?.value ?? null;
      const y = 30 + i * rowH;
      const len = v === null ? 0 : scale(v);
      const whisker = fig?.ci ? `<line x1="${(170 + scale(fig.ci[0])).toFixed(1)}" x2="${(170 + scale(fig.ci[1])).toFixed(1)}" y1="${y + 10}" y2="${y + 10}" stroke="#111827" stroke-width="1.5"/>` : "";
      const text = v === null ? "n/a" : show(fig, unit === "%" ? 1 : 2, unit === "%");
      return `<text x="0" y="${y + 14}" font-size="12">${esc(label)}</text><rect x="170" y="${y + 3}" width="${len.toFixed(1)}" height="15" fill="#2563eb"/>${whisker}<text x="${w - 125}" y="${y + 14}" font-size="11">${esc(text)}</text>`;
    })
    .join("");
  return `<svg role="img" aria-label="${esc(title)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><text x="0" y="16" font-size="14" font-weight="bold">${esc(title)}</text>${items}</svg>`;
}

/** One swept perspective: requested level (x) against the judged score (y, 0..5), interval bars at each level. */
function sweepSvg(c: SweepCurve): string {
  const [w, h, left, top, pw, ph] = [420, 260, 40, 30, 360, 190];
  const levels = c.points.map((p) => p.level);
  const [l0, l1] = [Math.min(...levels), Math.max(...levels)];
  const x = (l: number) => left + (l1 === l0 ? pw / 2 : ((l - l0) / (l1 - l0)) * pw);
  const y = (v: number) => top + ph - (Math.max(0, Math.min(5, v)) / 5) * ph;
  const pts = c.points.filter((p) => p.score.value !== null);
  const path = pts.map((p, i) => `${i ? "L" : "M"}${x(p.level).toFixed(1)},${y(p.score.value!).toFixed(1)}`).join(" ");
  const marks = pts
    .map((p) => `${p.score.ci ? `<line x1="${x(p.level).toFixed(1)}" x2="${x(p.level).toFixed(1)}" y1="${y(p.score.ci[0]).toFixed(1)}" y2="${y(p.score.ci[1]).toFixed(1)}" stroke="#111827"/>` : ""}<circle cx="${x(p.level).toFixed(1)}" cy="${y(p.score.value!).toFixed(1)}" r="3.5" fill="#2563eb"/><text x="${x(p.level).toFixed(1)}" y="${top + ph + 14}" font-size="11" text-anchor="middle">${p.level}</text>`)
    .join("");
  const title = `${c.model}: ${c.perspective} swept (rho ${show(c.rho, 2)})`;
  const grid = [0, 1, 2, 3, 4, 5].map((v) => `<text x="${left - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v}</text><line x1="${left}" x2="${left + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e7eb"/>`).join("");
  return `<svg role="img" class="sweep" aria-label="${esc(title)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><text x="0" y="16" font-size="13" font-weight="bold">${esc(title)}</text>${grid}<path d="${path}" fill="none" stroke="#2563eb"/>${marks}<text x="${left + pw / 2}" y="${h - 4}" font-size="11" text-anchor="middle">requested level</text></svg>`;
}

async function thumb(buf: Buffer, side = 192): Promise<string> {
  const png = await sharp(buf).resize(side, side, { fit: "inside", withoutEnlargement: true }).png().toBuffer();
  return `data:image/png;base64,${png.toString("base64")}`;
}

export async function html(r: Report, rows: ResultRow[], outDir: string): Promise<string> {
  const parts: string[] = [];
  for (const g of r.groups) {
    const cats = Object.entries(g.categories);
    const table = [
      "<table><thead><tr><th>category</th><th>n</th><th>scored</th><th>Following</th><th>Preserving</th><th>Quality</th><th>unscored</th><th>not judged</th><th>exact following</th><th>exact pres. err</th><th>exact qual. err</th></tr></thead><tbody>",
      ...[["overall", g.overall] as const, ...cats].map(
        ([c, x]) =>
          `<tr><td>${esc(c)}</td><td>${x.n}</td><td>${x.coverage.scored}/${x.coverage.rows}</td><td>${pct(x.following)}</td><td>${f(x.preserving)}</td><td>${f(x.quality)}</td><td>${x.unscored}</td><td>${x.notJudged}</td><td>${pct(x.truth?.following)}</td><td>${f(x.truth?.preservationError, 4)}</td><td>${f(x.truth?.qualityError, 4)}</td></tr>`,
      ),
      "</tbody></table>",
    ].join("");
    const charts = [
      bars("Following (% yes)", cats.map(([c, x]) => [c, x.following]), 100, "%"),
      bars("Preserving (0..5)", cats.map(([c, x]) => [c, x.preserving]), 5, ""),
      bars("Quality (0..5)", cats.map(([c, x]) => [c, x.quality]), 5, ""),
      ...(g.overall.truth ? [bars("Exact following (%)", cats.map(([c, x]) => [c, x.truth?.following]), 100, "%")] : []),
    ].join("");
    const unscored = g.unscoredSamples.length
      ? `<h3>Unscored samples (${g.unscoredSamples.length})</h3><ul class="unscored">${g.unscoredSamples.map((u) => `<li><code>${esc(u.key)}</code>: ${esc(u.perspectives.join(", "))}${u.raw ? `<pre>${esc(u.raw.slice(0, 400))}</pre>` : ""}</li>`).join("")}</ul>`
      : "";
    const failed = g.failed.length ? `<h3>Edits that did not come back (${g.failed.length})</h3><ul class="unscored">${g.failed.map((x) => `<li><code>${esc(x.key)}</code> (${esc(x.status)}): ${esc(x.error)}</li>`).join("")}</ul>` : "";
    parts.push(
      `<section><h2>${esc(g.group)}</h2><p class="coverage">${esc(coverageLine(g.overall.coverage))}.</p>${table}<p>${esc(otherAggregate(g).replace(/\*\*/g, ""))}</p><p>Edit latency p50 ${ms(g.latencyMs.p50)} ms, p90 ${ms(g.latencyMs.p90)} ms, p99 ${ms(g.latencyMs.p99)} ms.</p><div class="charts">${charts}</div>${g.gedit ? geditHtml(g.group, g.gedit, g.geditJudge ?? "no scorer", g.aggregate) : ""}${unscored}${failed}</section>`,
    );
  }
  if (r.comparison) parts.push(compareHtml(r.comparison));
  if (r.sweep) parts.push(`<section><h2>Sweeps: requested level against judged score</h2><div class="charts">${r.sweep.map(sweepSvg).join("")}</div></section>`);
  const cards: string[] = [];
  for (const row of rows) {
    const source = existsSync(row.image) ? readFileSync(row.image) : undefined;
    const editedFile = row.edited ? path.join(outDir, "images", row.edited) : undefined;
    const edited = editedFile && existsSync(editedFile) ? readFileSync(editedFile) : undefined;
    let map = "";
    if (source && edited) {
      const a = await decodeRaster(source);
      const b = await decodeRaster(edited, { width: a.width, height: a.height });
      map = await thumb(await heatMapPng(b, changeMap(a, b)));
    }
    const scores = row.scores
      ? Object.entries(row.scores)
          .map(([p, s]) => `<li><b>${p}</b>: ${s.status === "scored" ? `${s.score === undefined ? "n/a" : s.score.toFixed(2)}${s.yes === undefined ? "" : s.yes ? " (yes)" : " (no)"}` : `<span class="${s.status}">${s.status.replace("_", " ")}</span>`}${s.reason ? ` — ${esc(s.reason)}` : ""}</li>`)
          .join("")
      : `<li class="unscored">${esc(row.status.replace("_", " "))}: ${esc(row.error ?? "")}</li>`;
    cards.push(
      `<figure class="card" data-key="${esc(row.key)}"><div class="imgs">${source ? `<img alt="source" src="${await thumb(source)}">` : ""}${edited ? `<img alt="edit" src="${await thumb(edited)}">` : ""}${map ? `<img alt="change map" src="${map}">` : ""}</div><figcaption><p><b>${esc(row.category)}</b> · ${esc(row.instruction)}</p><p class="meta">${esc(row.model)} / ${esc(row.preset)} · seed ${row.seed}${row.truth ? ` · exact: ${row.truth.following ? "followed" : "not followed"}` : ""}</p><ul>${scores}</ul></figcaption></figure>`,
    );
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>reward-edit benchmark: ${esc(r.suite)}</title><style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d232a;background:#f8f9fb}table{border-collapse:collapse;margin:.5rem 0;background:#fff}th,td{border:1px solid #d1d5db;padding:.3rem .6rem;text-align:right}th:first-child,td:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(36rem,1fr));gap:1rem}.card{margin:0;background:#fff;border:1px solid #d1d5db;border-radius:.4rem;padding:.6rem}
.imgs{display:flex;gap:.4rem}.imgs img{width:192px;height:auto;image-rendering:pixelated}.meta{color:#6b7280;font-size:.85rem}.unscored,.refused{color:#b91c1c}.not{color:#6b7280}pre{white-space:pre-wrap;font-size:.8rem}
</style></head><body><h1>reward-edit benchmark: ${esc(r.suite)}</h1><p>${r.samples} samples, ${rows.length} edits; generated ${esc(r.generated)}. Following = % judged yes; Preserving and Quality = mean 0..5. ${esc(aggregateNote(r).replace(/\*\*/g, ""))} Gallery: source | edit | change map.</p><p class="judge">${esc(r.judge.line)}.</p><p class="cost">${esc(r.cost.line)}.</p>${parts.join("")}<h2>Gallery</h2><div class="gallery">${cards.join("")}</div></body></html>`;
}

export async function writeReport(rows: ResultRow[], outDir: string, suite: string, compare?: [string, string], o: ReportOptions = {}): Promise<Report> {
  const r = buildReport(rows, suite, compare, o);
  writeFileSync(path.join(outDir, "report.json"), JSON.stringify(r, null, 2));
  writeFileSync(path.join(outDir, "summary.md"), markdown(r));
  writeFileSync(path.join(outDir, "report.html"), await html(r, rows, outDir));
  return r;
}

/** What `bench` prints when a run ends: each group's headline figures with their intervals, and its coverage. */
export function consoleSummary(r: Report): string {
  const out: string[] = [];
  for (const g of r.groups) {
    const o = g.overall;
    out.push(`${g.group} (${g.aggregate}): Following ${pct(o.following)}, Preserving ${f(o.preserving)}, Quality ${f(o.quality)}${o.truth ? `, exact following ${pct(o.truth.following)}` : ""}, unscored ${o.unscored}; ${coverageLine(o.coverage)}`);
    for (const [lang, t] of Object.entries(g.gedit ?? {})) {
      const line = (x: NonNullable<GeditTables["en"]>["full"]) =>
        x.sc.value === null ? `SC not judged${x.local?.quality.value != null ? `, local quality ${f(x.local.quality)} (0..5)` : ""}` : `SC ${f(x.sc, 3)}, PQ ${f(x.pq, 3)}, O ${f(x.o, 3)} (${x.taskTypes} task types, ${x.unscored} unscored)`;
      out.push(`${g.group}: GEdit-Bench-${lang.toUpperCase()} full: ${line(t.full)}; intersection: ${line(t.intersection)}`);
    }
  }
  return out.map((l) => `${l}\n`).join("");
}
