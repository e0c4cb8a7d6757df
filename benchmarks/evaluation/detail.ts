/**
 * The full-resolution benchmark (issue 13): held-out product scenes rendered at 512 and 1024 px
 * with fine texture the working size cannot hold (grain everywhere, fine stripes on the products,
 * small print on the backdrop), edited with detail "keep" and "off" side by side:
 *   - PSNR outside the edit region (grown by one working pixel) against the source;
 *   - texture kept inside recolours: high-pass energy of the result over the source's (1 = all);
 *   - the share of pixels returned exactly, and the time per edit.
 * Writes bench-results/detail.json and detail.md.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import { type DetailMode, type EditorModel, edit, loadModel } from "../../editor/index.js";
import { BUNDLED_MODEL, ROOT } from "../../src/paths.js";
import { stat } from "../../src/stats.js";

const HELDOUT = path.join(ROOT, "models", "heldout");
const KINDS = ["recolour", "background", "remove", "add"] as const;

interface Scene {
  id: string;
  kind: (typeof KINDS)[number];
  instruction: string;
}

/** Deterministic per-pixel noise in -1..1. */
const hash = (i: number) => (((Math.imul(i, 2654435761) >>> 0) % 1000) / 500 - 1);

/** The 64 px scene at `size` px with grain, stripes inside the products and print on the backdrop. */
export async function texturedScene(id: string, size: number): Promise<{ png: Buffer; rgb: Buffer; region: Uint8Array }> {
  const source = readFileSync(path.join(HELDOUT, `${id}-source.png`));
  const rgb = await sharp(source).resize(size, size, { kernel: "cubic" }).removeAlpha().raw().toBuffer();
  const small = await sharp(source).removeAlpha().raw().toBuffer();
  const region = await sharp(readFileSync(path.join(HELDOUT, `${id}-region.png`))).resize(size, size, { kernel: "nearest" }).extractChannel(0).raw().toBuffer();
  const s = size / 64;
  const bg = [small[0], small[1], small[2]];
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const sx = Math.floor(x / s);
      const sy = Math.floor(y / s);
      const k = (sy * 64 + sx) * 3;
      // a product pixel: its 64 px colour is far from the corner's backdrop colour
      const product = Math.abs(small[k] - bg[0]) + Math.abs(small[k + 1] - bg[1]) + Math.abs(small[k + 2] - bg[2]) > 60 && sy < 56;
      let d = 5 * hash(i); // grain
      if (product && (x >> 1) % 3 === 0) d -= 28; // fine stripes, 6 px period
      // small print: short dark dashes in the backdrop's top band
      if (!product && y % 12 < 2 && y < size / 5 && (x % 14) < 9 && x > size / 10 && x < size - size / 10) d -= 45;
      for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.max(0, Math.min(255, Math.round(rgb[i * 3 + c] + d)));
    }
  const png = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
  return { png, rgb, region: Uint8Array.from(region, (v) => (v > 127 ? 1 : 0)) };
}

/** The region grown by r pixels (a square neighbourhood). */
export function grow(m: Uint8Array, size: number, r: number): Uint8Array {
  const rows = new Uint8Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let v = 0;
      for (let d = -r; d <= r && !v; d++) v = m[y * size + Math.min(size - 1, Math.max(0, x + d))];
      rows[y * size + x] = v;
    }
  const out = new Uint8Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let v = 0;
      for (let d = -r; d <= r && !v; d++) v = rows[Math.min(size - 1, Math.max(0, y + d)) * size + x];
      out[y * size + x] = v;
    }
  return out;
}

function psnr(a: Buffer, b: Buffer, select: (i: number) => boolean, n: number): number {
  let se = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (!select(i)) continue;
    for (let c = 0; c < 3; c++) se += (a[i * 3 + c] - b[i * 3 + c]) ** 2;
    count += 3;
  }
  const mse = se / Math.max(1, count);
  return mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse);
}

/** RMS of (luma - 3x3 mean) over the selected pixels: the fine texture a region carries. */
function highPass(rgb: Buffer, size: number, select: (i: number) => boolean): number {
  let s = 0;
  let n = 0;
  const luma = (i: number) => 0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2];
  for (let y = 1; y < size - 1; y++)
    for (let x = 1; x < size - 1; x++) {
      const i = y * size + x;
      if (!select(i)) continue;
      let m = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) m += luma(i + dy * size + dx);
      s += (luma(i) - m / 9) ** 2;
      n++;
    }
  return Math.sqrt(s / Math.max(1, n));
}

export interface DetailRow {
  size: number;
  kind: string;
  mode: DetailMode;
  scenes: number;
  psnr_outside_db: number;
  texture_kept: number | null;
  kept_fraction: number | null;
  edit_ms: number;
}

async function measure(model: EditorModel, scenes: Scene[], size: number) {
  const rows: DetailRow[] = [];
  const acc = new Map<string, { psnr: number[]; texture: number[]; kept: number[]; ms: number[] }>();
  for (const sc of scenes) {
    const { png, rgb, region } = await texturedScene(sc.id, size);
    const n = size * size;
    const outside = grow(region, size, size / 64);
    const inside = grow(Uint8Array.from(region, (v) => 1 - v), size, size / 32); // region shrunk by 2 working px
    // keep and off alternate on the same scene and seed, so drift in machine load hits both
    for (const mode of ["keep", "off"] as const) {
      const r = await edit(model, { image: png, instruction: sc.instruction, seed: 11, detail: mode });
      const out = await sharp(r.image).removeAlpha().raw().toBuffer();
      const key = `${sc.kind}/${mode}`;
      const a = acc.get(key) ?? { psnr: [], texture: [], kept: [], ms: [] };
      a.psnr.push(psnr(out, rgb, (i) => !outside[i], n));
      if (sc.kind === "recolour") a.texture.push(highPass(out, size, (i) => !inside[i] && region[i] === 1) / highPass(rgb, size, (i) => !inside[i] && region[i] === 1));
      a.kept.push(r.keptFraction ?? Number.NaN);
      a.ms.push(r.timings.totalMs);
      acc.set(key, a);
    }
  }
  const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
  for (const kind of KINDS)
    for (const mode of ["keep", "off"] as const) {
      const a = acc.get(`${kind}/${mode}`);
      if (!a) continue;
      rows.push({
        size,
        kind,
        mode,
        scenes: a.psnr.length,
        psnr_outside_db: mean(a.psnr),
        texture_kept: a.texture.length ? mean(a.texture) : null,
        kept_fraction: mode === "keep" ? mean(a.kept) : null,
        edit_ms: stat(a.ms).median,
      });
    }
  return rows;
}

export async function runDetailBench(o: { perKind?: number; sizes?: number[]; model?: string } = {}) {
  const perKind = o.perKind ?? 4;
  const all = readFileSync(path.join(HELDOUT, "scenes.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Scene);
  const scenes = KINDS.flatMap((k) => all.filter((s) => s.kind === k).slice(0, perKind));
  const model = await loadModel(o.model ?? BUNDLED_MODEL, { intraOpThreads: 2, interOpThreads: 1 });
  try {
    // warm-up: the first edits compile the loop and grow ORT's arenas
    for (const mode of ["keep", "off"] as const) await edit(model, { image: (await texturedScene(scenes[0].id, 512)).png, instruction: scenes[0].instruction, seed: 1, detail: mode });
    const rows: DetailRow[] = [];
    for (const size of o.sizes ?? [512, 1024]) rows.push(...(await measure(model, scenes, size)));
    return { model: model.manifest.name, working_size: model.manifest.resolution, per_kind: perKind, rows };
  } finally {
    await model.dispose();
  }
}

export function renderDetail(r: Awaited<ReturnType<typeof runDetailBench>>): string {
  const f = (v: number | null, d = 1) => (v === null || Number.isNaN(v) ? "-" : v.toFixed(d));
  const lines = [
    `Full-resolution results, ${r.model} (working size ${r.working_size} px), ${r.per_kind} held-out scenes per kind rendered with grain, stripes and print; keep vs off on the same scene and seed.`,
    "",
    "| size | edit | detail | PSNR outside (dB) | texture kept in recolours | pixels kept exactly | edit ms (median) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...r.rows.map((x) => `| ${x.size} | ${x.kind} | ${x.mode} | ${f(x.psnr_outside_db)} | ${f(x.texture_kept, 2)} | ${x.kept_fraction === null ? "-" : `${f(100 * x.kept_fraction)} %`} | ${f(x.edit_ms, 0)} |`),
  ];
  for (const size of [...new Set(r.rows.map((x) => x.size))]) {
    const keep = r.rows.filter((x) => x.size === size && x.mode === "keep").map((x) => x.edit_ms);
    const off = r.rows.filter((x) => x.size === size && x.mode === "off").map((x) => x.edit_ms);
    const k = keep.reduce((a, b) => a + b, 0);
    const o = off.reduce((a, b) => a + b, 0);
    lines.push("", `At ${size} px, keep costs ${f((k - o) / keep.length, 1)} ms per edit over off (${f((100 * (k - o)) / o)} %).`);
  }
  return lines.join("\n") + "\n";
}

async function main(): Promise<void> {
  const r = await runDetailBench({ perKind: Number(process.env.BENCH_DETAIL_SCENES ?? 4) });
  const outDir = path.join(ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "detail.json"), JSON.stringify(r, null, 2));
  const md = renderDetail(r);
  writeFileSync(path.join(outDir, "detail.md"), md);
  process.stdout.write(md);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
