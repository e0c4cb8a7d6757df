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
import { type Cell, type Comparison, type GroupMetrics, compareGroups, groupMetrics } from "./metrics.js";
import type { ResultRow } from "./results.js";

export interface Report {
  generated: string;
  suite: string;
  samples: number;
  groups: GroupMetrics[];
  comparison?: Comparison;
  /** GEdit-Bench: the main group's table (`gedit.<language>.full` / `.intersection`); every group's is in groups[].gedit. */
  gedit?: GeditTables;
  /** Who judged the main group's GEdit rows. */
  geditJudge?: string;
  /** Published figures printed beside ours: never computed here. */
  geditPublished?: typeof GEDIT_PUBLISHED;
}

const f = (x: number | null | undefined, digits = 2) => (x === null || x === undefined ? "n/a" : x.toFixed(digits));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? "n/a" : `${x.toFixed(1)} %`);
const signed = (x: number | null | undefined, digits = 2) => (x === null || x === undefined ? "n/a" : `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`);
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function buildReport(rows: ResultRow[], suite: string, compare?: [string, string]): Report {
  const groups = groupMetrics(rows);
  const pair = compare ?? (groups.length >= 2 ? [groups[0].group, groups[1].group] : undefined);
  const main = groups.find((g) => g.group === pair?.[0]) ?? groups[0];
  return {
    generated: new Date().toISOString(),
    suite,
    samples: new Set(rows.map((r) => r.sample)).size,
    groups,
    comparison: pair ? compareGroups(rows, pair[0], pair[1]) : undefined,
    ...(main?.gedit
      ? { gedit: main.gedit, geditJudge: main.geditJudge, geditPublished: GEDIT_PUBLISHED }
      : {}),
  };
}

function cellRow(name: string, c: Cell): string {
  const t = c.truth ? ` | ${pct(c.truth.following)} | ${f(c.truth.preservationError, 4)} | ${f(c.truth.qualityError, 4)}` : " | | | ";
  return `| ${name} | ${c.n} | ${pct(c.following)} | ${f(c.preserving)} | ${f(c.quality)} | ${c.unscored} | ${c.notJudged}${t} |`;
}

export function markdown(r: Report): string {
  const out = [`# Benchmark report: ${r.suite}`, "", `${r.samples} samples; generated ${r.generated}.`, ""];
  out.push("Following = % judged yes; Preserving and Quality = mean 0..5 (judge or local scorer). Exact columns come from synthetic scenes' ground truth (following accuracy, mean change outside the region, mean error to the true target).", "");
  for (const g of r.groups) {
    out.push(`## ${g.group}`, "");
    out.push("| category | n | Following | Preserving | Quality | unscored | not judged | exact following | exact preservation err | exact quality err |");
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    out.push(cellRow("**overall**", g.overall));
    for (const [c, cell] of Object.entries(g.categories)) out.push(cellRow(c, cell));
    out.push("", `Edit latency: p50 ${f(g.latencyMs.p50, 0)} ms, p90 ${f(g.latencyMs.p90, 0)} ms, p99 ${f(g.latencyMs.p99, 0)} ms.`);
    if (g.unscoredSamples.length) out.push("", `Unscored (${g.unscoredSamples.length}): ${g.unscoredSamples.map((u) => `${u.key} [${u.perspectives.join(", ")}]`).join("; ")}`);
    if (g.failed.length) out.push("", `Failed edits (${g.failed.length}): ${g.failed.map((x) => `${x.key}: ${x.error}`).join("; ")}`);
    out.push("");
    if (g.gedit) out.push(...geditMarkdown(g.group, g.gedit, g.geditJudge ?? "no scorer"));
  }
  if (r.comparison) {
    const c = r.comparison;
    out.push(`## Comparison: ${c.b} minus ${c.a}`, "");
    out.push("| category | Following | Preserving | Quality | exact following | exact preservation err | exact quality err |", "| --- | --- | --- | --- | --- | --- | --- |");
    for (const [cat, x] of Object.entries(c.deltas)) {
      out.push(`| ${cat} | ${signed(x.following, 1)} | ${signed(x.preserving)} | ${signed(x.quality)} | ${signed(x.truthFollowing, 1)} | ${signed(x.truthPreservationError, 4)} | ${signed(x.truthQualityError, 4)} |`);
    }
    out.push("", `Per-sample wins: ${c.a}: ${c.wins.a}, ${c.b}: ${c.wins.b}, ties: ${c.wins.ties}.`, "");
    if (c.gedit && Object.values(c.gedit).some((x) => [x.full, x.intersection].some((y) => y.sc !== null || y.pq !== null || y.o !== null))) {
      out.push("| GEdit-Bench | SC | PQ | O |", "| --- | --- | --- | --- |");
      for (const [lang, x] of Object.entries(c.gedit)) for (const k of ["full", "intersection"] as const) out.push(`| ${lang.toUpperCase()} ${k} | ${signed(x[k].sc, 3)} | ${signed(x[k].pq, 3)} | ${signed(x[k].o, 3)} |`);
      out.push("");
    }
  }
  return out.join("\n");
}

function bars(title: string, values: Array<[string, number | null]>, max: number, unit: string): string {
  const w = 520;
  const rowH = 22;
  const h = rowH * values.length + 30;
  const items = values
    .map(([label, v], i) => {
      const len = v === null ? 0 : Math.max(0, Math.min(1, v / max)) * (w - 240);
      return `<text x="0" y="${30 + i * rowH + 14}" font-size="12">${esc(label)}</text><rect x="170" y="${30 + i * rowH + 3}" width="${len.toFixed(1)}" height="15" fill="#2563eb"/><text x="${175 + len}" y="${30 + i * rowH + 14}" font-size="12">${v === null ? "n/a" : `${v.toFixed(unit === "%" ? 1 : 2)}${unit === "%" ? " %" : ""}`}</text>`;
    })
    .join("");
  return `<svg role="img" aria-label="${esc(title)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><text x="0" y="16" font-size="14" font-weight="bold">${esc(title)}</text>${items}</svg>`;
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
      "<table><thead><tr><th>category</th><th>n</th><th>Following</th><th>Preserving</th><th>Quality</th><th>unscored</th><th>not judged</th><th>exact following</th><th>exact pres. err</th><th>exact qual. err</th></tr></thead><tbody>",
      ...[["overall", g.overall] as const, ...cats].map(
        ([c, x]) =>
          `<tr><td>${esc(c)}</td><td>${x.n}</td><td>${pct(x.following)}</td><td>${f(x.preserving)}</td><td>${f(x.quality)}</td><td>${x.unscored}</td><td>${x.notJudged}</td><td>${pct(x.truth?.following)}</td><td>${f(x.truth?.preservationError, 4)}</td><td>${f(x.truth?.qualityError, 4)}</td></tr>`,
      ),
      "</tbody></table>",
    ].join("");
    const charts = [
      bars("Following (% yes)", cats.map(([c, x]) => [c, x.following]), 100, "%"),
      bars("Preserving (0..5)", cats.map(([c, x]) => [c, x.preserving]), 5, ""),
      bars("Quality (0..5)", cats.map(([c, x]) => [c, x.quality]), 5, ""),
      ...(g.overall.truth ? [bars("Exact following (%)", cats.map(([c, x]) => [c, x.truth?.following ?? null]), 100, "%")] : []),
    ].join("");
    const unscored = g.unscoredSamples.length
      ? `<h3>Unscored samples (${g.unscoredSamples.length})</h3><ul class="unscored">${g.unscoredSamples.map((u) => `<li><code>${esc(u.key)}</code>: ${esc(u.perspectives.join(", "))}${u.raw ? `<pre>${esc(u.raw.slice(0, 400))}</pre>` : ""}</li>`).join("")}</ul>`
      : "";
    parts.push(
      `<section><h2>${esc(g.group)}</h2>${table}<p>Edit latency p50 ${f(g.latencyMs.p50, 0)} ms, p90 ${f(g.latencyMs.p90, 0)} ms, p99 ${f(g.latencyMs.p99, 0)} ms.</p><div class="charts">${charts}</div>${g.gedit ? geditHtml(g.group, g.gedit, g.geditJudge ?? "no scorer") : ""}${unscored}</section>`,
    );
  }
  if (r.comparison) {
    const c = r.comparison;
    const rowsHtml = Object.entries(c.deltas)
      .map(([cat, x]) => `<tr><td>${esc(cat)}</td><td>${signed(x.following, 1)}</td><td>${signed(x.preserving)}</td><td>${signed(x.quality)}</td><td>${signed(x.truthFollowing, 1)}</td><td>${signed(x.truthPreservationError, 4)}</td><td>${signed(x.truthQualityError, 4)}</td></tr>`)
      .join("");
    parts.push(
      `<section><h2>Comparison: ${esc(c.b)} minus ${esc(c.a)}</h2><table><thead><tr><th>category</th><th>Following</th><th>Preserving</th><th>Quality</th><th>exact following</th><th>exact pres. err</th><th>exact qual. err</th></tr></thead><tbody>${rowsHtml}</tbody></table><p>Per-sample wins: <b>${esc(c.a)}</b> ${c.wins.a}, <b>${esc(c.b)}</b> ${c.wins.b}, ties ${c.wins.ties}.</p></section>`,
    );
  }
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
          .map(([p, s]) => `<li><b>${p}</b>: ${s.status === "scored" ? `${f(s.score)}${s.yes === undefined ? "" : s.yes ? " (yes)" : " (no)"}` : `<span class="${s.status}">${s.status.replace("_", " ")}</span>`}${s.reason ? ` — ${esc(s.reason)}` : ""}</li>`)
          .join("")
      : `<li class="unscored">edit failed: ${esc(row.error ?? "")}</li>`;
    cards.push(
      `<figure class="card" data-key="${esc(row.key)}"><div class="imgs">${source ? `<img alt="source" src="${await thumb(source)}">` : ""}${edited ? `<img alt="edit" src="${await thumb(edited)}">` : ""}${map ? `<img alt="change map" src="${map}">` : ""}</div><figcaption><p><b>${esc(row.category)}</b> · ${esc(row.instruction)}</p><p class="meta">${esc(row.model)} / ${esc(row.preset)} · seed ${row.seed}${row.truth ? ` · exact: ${row.truth.following ? "followed" : "not followed"}` : ""}</p><ul>${scores}</ul></figcaption></figure>`,
    );
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>reward-edit benchmark: ${esc(r.suite)}</title><style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d232a;background:#f8f9fb}table{border-collapse:collapse;margin:.5rem 0;background:#fff}th,td{border:1px solid #d1d5db;padding:.3rem .6rem;text-align:right}th:first-child,td:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(36rem,1fr));gap:1rem}.card{margin:0;background:#fff;border:1px solid #d1d5db;border-radius:.4rem;padding:.6rem}
.imgs{display:flex;gap:.4rem}.imgs img{width:192px;height:auto;image-rendering:pixelated}.meta{color:#6b7280;font-size:.85rem}.unscored,.refused{color:#b91c1c}.not{color:#6b7280}pre{white-space:pre-wrap;font-size:.8rem}
</style></head><body><h1>reward-edit benchmark: ${esc(r.suite)}</h1><p>${r.samples} samples, ${rows.length} edits; generated ${esc(r.generated)}. Following = % judged yes; Preserving and Quality = mean 0..5. Gallery: source | edit | change map.</p>${parts.join("")}<h2>Gallery</h2><div class="gallery">${cards.join("")}</div></body></html>`;
}

export async function writeReport(rows: ResultRow[], outDir: string, suite: string, compare?: [string, string]): Promise<Report> {
  const r = buildReport(rows, suite, compare);
  writeFileSync(path.join(outDir, "report.json"), JSON.stringify(r, null, 2));
  writeFileSync(path.join(outDir, "summary.md"), markdown(r));
  writeFileSync(path.join(outDir, "report.html"), await html(r, rows, outDir));
  return r;
}
