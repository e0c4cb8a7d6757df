/**
 * Masks (issue 21): paste-only against blend-during-sampling, with no mask beside them, on the
 * same scenes and seeds. The mask is each scene's allowed region grown by two working pixels (a
 * mask drawn around the edited object).
 *   - following: the exact synthetic scorer, on the result at the working size;
 *   - outside kept: pixels outside the mask returned exactly as the source's (counted);
 *   - seam: luma gradient energy in a band along the mask's edge, summed over the scenes, result
 *     over source (1 = no more edge than the photo had there; a pasted seam shows as > 1);
 * on the world v2 held-out suites at 64 px, and on the detail benchmark's textured 512 and
 * 1024 px scenes (world v1 scenes). Writes bench-results/masks.json and masks.md.
 *
 *   node dist/benchmarks/evaluation/masks.js [--limit N] [--hires N] [--model DIR]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { type EditorModel, type MaskMode, edit, loadModel } from "../../editor/index.js";
import { decodeRaster } from "../../reward/local/raster.js";
import { scoreSynthetic } from "../../reward/local/synthetic.js";
import { BUNDLED_MODEL, ROOT } from "../../src/paths.js";
import { grow, texturedScene } from "./detail.js";
import { type SyntheticSuite, loadSyntheticSuite, sourceFile } from "../../src/benchmark/synthetic-suite.js";

type Config = "no mask" | MaskMode;
const CONFIGS: Config[] = ["no mask", "paste", "blend"];

export interface MaskRow {
  set: string;
  config: Config;
  scenes: number;
  following: number;
  /** Pixels outside the mask equal to the source's, over all pixels outside it. */
  outside_kept: number;
  outside_pixels: number;
  /** Band gradient energy summed over scenes, result over source (a plain backdrop's near-zero energy would swamp a mean of ratios). */
  seam_ratio: number;
  edit_ms: number;
}

/** Pixels within `r` of the mask's edge, on either side. */
function band(m: Uint8Array, size: number, r: number): Uint8Array {
  const a = grow(m, size, r);
  const b = grow(m.map((v) => 1 - v), size, r);
  return a.map((v, i) => (v && b[i] ? 1 : 0));
}

function gradientEnergy(rgb: Buffer | Uint8Array, w: number, h: number, select: Uint8Array): number {
  const luma = (x: number, y: number) => {
    const i = (Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) * 3;
    return 0.299 * rgb[i] + 0.587 * rgb[i + 1] + 0.114 * rgb[i + 2];
  };
  let s = 0;
  let n = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (!select[y * w + x]) continue;
      s += Math.hypot(luma(x + 1, y) - luma(x - 1, y), luma(x, y + 1) - luma(x, y - 1));
      n++;
    }
  return n ? s / n : 0;
}

const maskPng = (m: Uint8Array, w: number, h: number) =>
  sharp(Buffer.from(m.map((v) => v * 255)), { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();

interface Acc {
  follow: number;
  n: number;
  kept: number;
  outside: number;
  seam: number;
  sourceSeam: number;
  ms: number;
}

async function measureScene(
  model: EditorModel,
  acc: Map<Config, Acc>,
  scene: { png: Buffer; rgb: Buffer; size: number; mask: Uint8Array; instruction: string; seed: number },
  follows: (result: Buffer) => Promise<boolean>,
) {
  const { size, mask } = scene;
  const png = await maskPng(mask, size, size);
  const seamBand = band(mask, size, Math.max(1, size / 64));
  const sourceEnergy = gradientEnergy(scene.rgb, size, size, seamBand);
  for (const config of CONFIGS) {
    const r = await edit(model, {
      image: scene.png,
      instruction: scene.instruction,
      seed: scene.seed,
      ...(config === "no mask" ? {} : { editMask: png, maskMode: config }),
    });
    const out = await sharp(r.image).removeAlpha().raw().toBuffer();
    const a = acc.get(config) ?? { follow: 0, n: 0, kept: 0, outside: 0, seam: 0, sourceSeam: 0, ms: 0 };
    a.n++;
    a.ms += r.timings.totalMs;
    if (await follows(r.image)) a.follow++;
    for (let i = 0; i < size * size; i++) {
      if (mask[i]) continue;
      a.outside++;
      if (out[i * 3] === scene.rgb[i * 3] && out[i * 3 + 1] === scene.rgb[i * 3 + 1] && out[i * 3 + 2] === scene.rgb[i * 3 + 2]) a.kept++;
    }
    a.seam += gradientEnergy(out, size, size, seamBand);
    a.sourceSeam += sourceEnergy;
    acc.set(config, a);
  }
}

const rowsOf = (set: string, acc: Map<Config, Acc>): MaskRow[] =>
  CONFIGS.map((config) => {
    const a = acc.get(config)!;
    return { set, config, scenes: a.n, following: a.follow / a.n, outside_kept: a.kept / a.outside, outside_pixels: a.outside, seam_ratio: a.seam / Math.max(1e-6, a.sourceSeam), edit_ms: a.ms / a.n };
  });

/** Local edits only: a global edit (grayscale, brighter) has nothing to keep outside a mask. */
const local = (s: SyntheticSuite) => s.cases.filter((c) => !["grayscale", "brighter"].includes(c.record.kind));

export async function runMaskBench(o: { limit: number; hires: number; modelDir: string; log?: (s: string) => void }): Promise<MaskRow[]> {
  const model = await loadModel(o.modelDir);
  const rows: MaskRow[] = [];
  try {
    for (const suite of ["shapes", "backdrops", "pairs"]) {
      const s = await loadSyntheticSuite(path.join(ROOT, "models", "heldout-v2", suite));
      const acc = new Map<Config, Acc>();
      for (const [i, c] of local(s).slice(0, o.limit).entries()) {
        const png = readFileSync(sourceFile(s, c.record.id));
        const size = c.source.width;
        const region = c.region;
        await measureScene(model, acc, { png, rgb: await sharp(png).removeAlpha().raw().toBuffer(), size, mask: grow(region, size, 2), instruction: c.record.instruction, seed: 1000 + i }, async (img) =>
          scoreSynthetic(c, await decodeRaster(img, { width: size, height: size }), s.palette).following,
        );
      }
      rows.push(...rowsOf(`v2 ${suite}, 64 px`, acc));
      o.log?.(`masks: ${suite} done`);
    }
    const v1 = await loadSyntheticSuite(path.join(ROOT, "models", "heldout"));
    for (const size of [512, 1024]) {
      const acc = new Map<Config, Acc>();
      const cases = local(v1).slice(0, size === 512 ? o.hires : Math.ceil(o.hires / 2));
      for (const [i, c] of cases.entries()) {
        const t = await texturedScene(c.record.id, size);
        await measureScene(model, acc, { png: t.png, rgb: t.rgb, size, mask: grow(t.region, size, (2 * size) / 64), instruction: c.record.instruction, seed: 1000 + i }, async (img) =>
          scoreSynthetic(c, await decodeRaster(img, { width: 64, height: 64 }), v1.palette).following,
        );
      }
      rows.push(...rowsOf(`v1 textured, ${size} px`, acc));
      o.log?.(`masks: ${size} px done`);
    }
  } finally {
    await model.dispose();
  }
  return rows;
}

export function maskTable(rows: MaskRow[]): string {
  const lines = ["| scenes | mask | n | following | outside the mask kept exactly | seam energy (result / source) | ms / edit |", "| --- | --- | --- | --- | --- | --- | --- |"];
  for (const r of rows) {
    lines.push(
      `| ${r.set} | ${r.config} | ${r.scenes} | ${(100 * r.following).toFixed(1)} % | ${(100 * r.outside_kept).toFixed(2)} % of ${r.outside_pixels} px | ${r.seam_ratio.toFixed(3)} | ${r.edit_ms.toFixed(0)} |`,
    );
  }
  return lines.join("\n");
}

export async function writeMaskReport(rows: MaskRow[]): Promise<string> {
  const dir = path.join(ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "masks.json"), JSON.stringify(rows, null, 2));
  const md = `### Masks: paste only vs blend during sampling (bundled editor, 5,5,5, seed 1000+i)\n\n${maskTable(rows)}\n`;
  writeFileSync(path.join(dir, "masks.md"), md);
  return md;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { limit: { type: "string", default: "120" }, hires: { type: "string", default: "12" }, model: { type: "string", default: BUNDLED_MODEL } } });
  const rows = await runMaskBench({ limit: Number(values.limit), hires: Number(values.hires), modelDir: values.model!, log: (s) => process.stderr.write(`${s}\n`) });
  process.stdout.write(await writeMaskReport(rows));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
