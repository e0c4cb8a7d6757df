/**
 * OUTDIR/index.html: before/after thumbnails of every photo of a batch, one self-contained file
 * (thumbnails as data URLs, inline CSS) like the benchmark report's gallery.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import type { SummaryRow } from "./summary.js";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function thumb(file: string, side = 200): Promise<string | null> {
  try {
    const jpeg = await sharp(file, { pages: 1 }).rotate().flatten({ background: "#ffffff" }).resize(side, side, { fit: "inside" }).jpeg({ quality: 80 }).toBuffer();
    return `data:image/jpeg;base64,${jpeg.toString("base64")}`;
  } catch {
    return null;
  }
}

/** `sources` maps a summary row's number to its photo's path. */
export async function writeContactSheet(outDir: string, rows: SummaryRow[], sources: Map<number, string>, title: string): Promise<string> {
  const sorted = [...rows].sort((a, b) => a.row - b.row);
  const cells: string[] = [];
  for (const r of sorted) {
    const before = sources.has(r.row) ? await thumb(sources.get(r.row)!) : null;
    const after = r.output ? await thumb(path.join(outDir, r.output)) : null;
    const img = (src: string | null, alt: string) => (src ? `<img src="${src}" alt="${esc(alt)}">` : `<div class="none">${esc(alt)}: none</div>`);
    const scores = r.scores ? Object.entries(r.scores).map(([k, v]) => `${k} ${v === null ? "n/a" : v.toFixed(1)}`).join(" · ") : "";
    cells.push(
      `<figure class="${r.error ? "failed" : "ok"}"><div class="pair">${img(before, "before")}${img(after, "after")}</div>` +
        `<figcaption><b>${esc(r.input)}</b><br>${esc(r.instruction)}<br>${r.error ? `<span class="err">${esc(r.error)}</span>` : `${esc(scores)} · ${(r.ms / 1000).toFixed(1)} s`}</figcaption></figure>`,
    );
  }
  const failed = rows.filter((r) => r.error).length;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}h1{font-size:1.3rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1rem}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:.5rem}figure.failed{border-color:#c33;background:#fff5f5}
.pair{display:flex;gap:.5rem}.pair img,.none{width:200px;max-height:200px;object-fit:contain;background:#f4f4f4}
.none{display:flex;align-items:center;justify-content:center;height:120px;color:#888}
figcaption{margin-top:.4rem;font-size:12px;word-break:break-word}.err{color:#c33}
</style></head><body><h1>${esc(title)}</h1><p>${rows.length} photos: ${rows.length - failed} edited, ${failed} failed. Left: before; right: after.</p>
<div class="grid">${cells.join("\n")}</div></body></html>`;
  const file = path.join(outDir, "index.html");
  await writeFile(file, html);
  return file;
}
