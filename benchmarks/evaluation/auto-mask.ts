/**
 * auto_mask, measured (issue 41 item 2) on the bundled editor's held-out world v2 scenes, which
 * know the pixels each instruction should change (the region PNGs):
 *   1. the rule: the relevance map of every scene at nine noise levels, from one UNet batch; the
 *      levels, threshold and global cut are chosen on the even-numbered scenes ("tune") and
 *      reported on the odd-numbered ones ("report"), so the table does not grade its own choice;
 *   2. the map's IoU with the true region per edit kind (the thresholded map, before growth), and
 *      how often a global edit (greyscale, brighter) is recognised as one;
 *   3. following, preservation error outside the true region and quality error inside it (the
 *      exact synthetic scorer, reward/local/synthetic.ts), with auto against no mask and against
 *      the true region as a painted mask (grown by two working pixels, as masks.ts paints it);
 *   4. the time auto adds per edit: plain and auto edits interleaved on the same scenes.
 * Writes bench-results/auto-mask.json and auto-mask.md.
 *
 *   node dist/benchmarks/evaluation/auto-mask.js [--limit N] [--edits N] [--model DIR]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { type EditorModel, RELEVANCE_RULE, type RelevanceRule, type RelevanceView, averageLevels, edit, loadModel, relevanceCore } from "../../editor/index.js";
import { decodeRaster } from "../../reward/local/raster.js";
import { type SyntheticCase, type SyntheticRecord, scoreSynthetic } from "../../reward/local/synthetic.js";
import { type SyntheticSuite, loadSyntheticSuite, sourceFile } from "../../src/benchmark/synthetic-suite.js";
import { BUNDLED_MODEL, ROOT } from "../../src/paths.js";
import { grow } from "./detail.js";

export const SUITES = ["shapes", "backdrops", "pairs", "scenes"] as const;
export const LOCAL_KINDS = ["recolour", "background", "remove", "add"] as const;
export const GLOBAL_KINDS = ["grayscale", "brighter"] as const;
type Kind = SyntheticRecord["kind"];
/** The levels every scene's map is computed at once; a rule averages a subset of them. */
const ALL_LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

export const suiteDir = (suite: string) => path.join(ROOT, "models", "heldout-v2", suite);
export const isGlobal = (k: Kind) => (GLOBAL_KINDS as readonly string[]).includes(k);

export function iou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let i = 0;
  let u = 0;
  for (let p = 0; p < a.length; p++) {
    if (a[p] && b[p]) i++;
    if (a[p] || b[p]) u++;
  }
  return u ? i / u : 1;
}

interface SceneMaps {
  suite: string;
  index: number;
  kind: Kind;
  region: Uint8Array;
  view: RelevanceView;
}

/** Every scene's map at all levels: one edit of one step each, whose relevance callback keeps the levels. */
export async function collectMaps(model: EditorModel, suites: SyntheticSuite[], names: readonly string[], limit: number): Promise<SceneMaps[]> {
  const out: SceneMaps[] = [];
  for (const [s, suite] of suites.entries()) {
    for (const [index, c] of suite.cases.slice(0, limit).entries()) {
      let view: RelevanceView | undefined;
      await edit(model, {
        image: readFileSync(sourceFile(suite, c.record.id)),
        instruction: c.record.instruction,
        seed: 0,
        steps: 1,
        autoMask: { ...RELEVANCE_RULE, levels: ALL_LEVELS },
        onRelevance: (v) => (view = { ...v, maps: v.maps.map((m) => Float32Array.from(m)) }),
      });
      out.push({ suite: names[s], index, kind: c.record.kind, region: c.region, view: view! });
    }
  }
  return out;
}

/** A rule applied to a collected scene: the core (thresholded map) and whether it was judged global. */
export function applyRule(s: SceneMaps, rule: RelevanceRule) {
  const { view } = s;
  const maps = rule.levels.map((l) => view.maps[ALL_LEVELS.indexOf(l)]);
  return relevanceCore(averageLevels(maps), view.width, view.height, view.down, view.content, rule);
}

export interface RuleScore {
  levels: number[];
  threshold: number;
  flatRatio: number;
  /** Mean over the local kinds of the mean IoU per kind (a local scene judged global scores 0). */
  localIoU: number;
  /** Share of local scenes judged global (they get no mask). */
  localMissed: number;
  /** Share of global scenes judged global. */
  globalCaught: number;
}

function scoreRule(scenes: SceneMaps[], rule: RelevanceRule): RuleScore {
  const perKind = new Map<string, number[]>();
  let local = 0;
  let missed = 0;
  let global = 0;
  let caught = 0;
  for (const s of scenes) {
    const r = applyRule(s, rule);
    if (isGlobal(s.kind)) {
      global++;
      if (r.global) caught++;
      continue;
    }
    local++;
    if (r.global) missed++;
    perKind.set(s.kind, [...(perKind.get(s.kind) ?? []), r.global ? 0 : iou(r.core, s.region)]);
  }
  const means = [...perKind.values()].map((v) => v.reduce((a, b) => a + b, 0) / v.length);
  return { levels: rule.levels, threshold: rule.threshold, flatRatio: rule.global.flatRatio, localIoU: means.reduce((a, b) => a + b, 0) / means.length, localMissed: missed / local, globalCaught: caught / global };
}

const LEVEL_SETS = [[0.3], [0.5], [0.7], [0.5, 0.7], [0.3, 0.5, 0.7], [0.5, 0.7, 0.9]];
const THRESHOLDS = [0.3, 0.35, 0.4, 0.5];
const FLAT_RATIOS = [0.55, 0.6, 0.65];

/**
 * Merit of a rule: the mean IoU over local kinds, plus a quarter of the share of global edits
 * caught (a missed global edit is masked partly: still mostly right where its map is wide).
 */
const merit = (r: RuleScore) => r.localIoU + 0.25 * r.globalCaught;

function sweep(tune: SceneMaps[]): { best: RuleScore; table: RuleScore[] } {
  const table: RuleScore[] = [];
  for (const levels of LEVEL_SETS)
    for (const threshold of THRESHOLDS)
      for (const flatRatio of FLAT_RATIOS) table.push(scoreRule(tune, { ...RELEVANCE_RULE, levels, threshold, global: { ...RELEVANCE_RULE.global, flatRatio } }));
  const best = table.reduce((a, b) => (merit(b) > merit(a) ? b : a));
  return { best, table };
}

export interface KindRow {
  kind: string;
  scenes: number;
  /** Mean IoU of the thresholded map with the true region (local kinds; 0 where judged global). */
  iou: number;
  /** 10th percentile of that IoU: what the tests can hold every scene to. */
  iouP10: number;
  /** Share judged global (no mask). */
  global: number;
  coverage: number;
}

function kindRows(scenes: SceneMaps[], rule: RelevanceRule): KindRow[] {
  const kinds = [...LOCAL_KINDS, ...GLOBAL_KINDS];
  return kinds.map((kind) => {
    const of = scenes.filter((s) => s.kind === kind);
    const results = of.map((s) => ({ r: applyRule(s, rule), s }));
    const ious = results.map(({ r, s }) => (r.global ? 0 : iou(r.core, s.region))).sort((a, b) => a - b);
    return {
      kind,
      scenes: of.length,
      iou: ious.reduce((a, b) => a + b, 0) / Math.max(1, of.length),
      iouP10: ious[Math.floor(0.1 * ious.length)] ?? 0,
      global: results.filter(({ r }) => r.global).length / Math.max(1, of.length),
      coverage: results.reduce((a, { r }) => a + r.coverage, 0) / Math.max(1, of.length),
    };
  });
}

type Config = "no mask" | "auto" | "true mask";
const CONFIGS: Config[] = ["no mask", "auto", "true mask"];

export interface EditRow {
  kind: string;
  config: Config;
  scenes: number;
  following: number;
  /** Mean absolute change outside the true region, 0..1 (null for global kinds). */
  preservation: number | null;
  /** Mean absolute error to the exact target inside the region, 0..1. */
  quality: number;
  ms: number;
}

const maskPngOf = (m: Uint8Array, w: number, h: number) => sharp(Buffer.from(m.map((v) => v * 255)), { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();

/** Full edits of the report half, the three configurations interleaved per scene (same seed), so timings share the machine's state. */
async function compareEdits(model: EditorModel, cases: { suite: SyntheticSuite; c: SyntheticCase; seed: number }[]): Promise<{ rows: EditRow[]; addedMs: number; ratio: number; plainMs: number }> {
  type Acc = { n: number; follow: number; pres: number; presN: number; qual: number; ms: number };
  const acc = new Map<string, Acc>();
  let plain = 0;
  let auto = 0;
  for (const { suite, c, seed } of cases) {
    const png = readFileSync(sourceFile(suite, c.record.id));
    const size = c.source.width;
    const truth = await maskPngOf(grow(c.region, size, 2), size, c.source.height);
    for (const config of CONFIGS) {
      const r = await edit(model, {
        image: png,
        instruction: c.record.instruction,
        seed,
        ...(config === "auto" ? { autoMask: true } : config === "true mask" ? { editMask: truth } : {}),
      });
      if (config === "no mask") plain += r.timings.totalMs;
      if (config === "auto") auto += r.timings.totalMs;
      const score = scoreSynthetic(c, await decodeRaster(r.image, { width: size, height: c.source.height }), suite.palette);
      for (const kind of [c.record.kind, isGlobal(c.record.kind) ? "all global" : "all local"]) {
        const key = `${kind}|${config}`;
        const a = acc.get(key) ?? { n: 0, follow: 0, pres: 0, presN: 0, qual: 0, ms: 0 };
        a.n++;
        if (score.following) a.follow++;
        if (score.preservationError !== null) (a.pres += score.preservationError), a.presN++;
        a.qual += score.qualityError;
        a.ms += r.timings.totalMs;
        acc.set(key, a);
      }
    }
  }
  const rows: EditRow[] = [];
  for (const kind of [...LOCAL_KINDS, "all local", ...GLOBAL_KINDS, "all global"])
    for (const config of CONFIGS) {
      const a = acc.get(`${kind}|${config}`);
      if (!a) continue;
      rows.push({ kind, config, scenes: a.n, following: a.follow / a.n, preservation: a.presN ? a.pres / a.presN : null, quality: a.qual / a.n, ms: a.ms / a.n });
    }
  return { rows, addedMs: (auto - plain) / cases.length, ratio: auto / plain, plainMs: plain / cases.length };
}

export interface AutoMaskReport {
  rule: RelevanceRule;
  tuned: RuleScore;
  sweepTop: RuleScore[];
  kinds: KindRow[];
  edits: EditRow[];
  time: { plainMs: number; addedMs: number; ratio: number; edits: number };
  scenes: { tune: number; report: number };
}

export async function runAutoMaskBench(o: { limit: number; edits: number; modelDir: string; log?: (s: string) => void }): Promise<AutoMaskReport> {
  const model = await loadModel(o.modelDir);
  try {
    const suites = await Promise.all(SUITES.map((s) => loadSyntheticSuite(suiteDir(s))));
    const maps = await collectMaps(model, suites, SUITES, o.limit);
    o.log?.(`auto-mask: ${maps.length} maps`);
    const tune = maps.filter((s) => s.index % 2 === 0);
    const report = maps.filter((s) => s.index % 2 === 1);
    const { best, table } = sweep(tune);
    const rule = { ...RELEVANCE_RULE, levels: best.levels, threshold: best.threshold, global: { ...RELEVANCE_RULE.global, flatRatio: best.flatRatio } };
    const kinds = kindRows(report, RELEVANCE_RULE);
    // edits: the report half, every kind in turn so a short run still covers them all
    const byKind = new Map<Kind, { suite: SyntheticSuite; c: SyntheticCase; seed: number }[]>();
    for (const [s, suite] of suites.entries())
      for (const [index, c] of suite.cases.slice(0, o.limit).entries()) {
        if (index % 2 !== 1) continue;
        const list = byKind.get(c.record.kind) ?? [];
        list.push({ suite, c, seed: 1000 + 100 * s + index });
        byKind.set(c.record.kind, list);
      }
    const picked: { suite: SyntheticSuite; c: SyntheticCase; seed: number }[] = [];
    for (let k = 0; picked.length < o.edits && [...byKind.values()].some((l) => l.length > k); k++) for (const l of byKind.values()) if (l[k] && picked.length < o.edits) picked.push(l[k]);
    const edits = await compareEdits(model, picked);
    o.log?.(`auto-mask: ${picked.length} scenes edited three ways`);
    return {
      rule,
      tuned: best,
      sweepTop: [...table].sort((a, b) => merit(b) - merit(a)).slice(0, 8),
      kinds,
      edits: edits.rows,
      time: { plainMs: edits.plainMs, addedMs: edits.addedMs, ratio: edits.ratio, edits: picked.length },
      scenes: { tune: tune.length, report: report.length },
    };
  } finally {
    await model.dispose();
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const err = (x: number | null) => (x === null ? "-" : x.toFixed(4));

export function autoMaskMarkdown(r: AutoMaskReport): string {
  const rule = RELEVANCE_RULE;
  const g = rule.global;
  const lines = [
    `Rule in use (RELEVANCE_RULE): levels ${rule.levels.join(", ")} of the training schedule in one UNet batch of ${2 * rule.levels.length}; smoothing radius ${rule.smooth} latent cell; normalised by the map's ${rule.normaliseQuantile} quantile; threshold ${rule.threshold}; global when >= ${g.coverage} of the picture is at or above ${g.at} and the map's ${g.lowQuantile} quantile is >= ${g.flatRatio} x its median; grown ${(rule.grow * 64).toFixed(0)} px and feathered ${(rule.feather * 64).toFixed(0)} px per 64.`,
    `Best rule on the tuning half (${r.scenes.tune} scenes): levels ${r.tuned.levels.join(", ")}, threshold ${r.tuned.threshold}, flat ratio ${r.tuned.flatRatio}: local IoU ${r.tuned.localIoU.toFixed(3)}, local scenes judged global ${pct(r.tuned.localMissed)}, global scenes caught ${pct(r.tuned.globalCaught)}.`,
    "",
    "Top of the sweep (tuning half; merit = mean local IoU over kinds + 0.25 x global caught):",
    "",
    "| levels | threshold | flat ratio | local IoU | local judged global | global caught |",
    "| --- | --- | --- | --- | --- | --- |",
    ...r.sweepTop.map((s) => `| ${s.levels.join(", ")} | ${s.threshold} | ${s.flatRatio} | ${s.localIoU.toFixed(3)} | ${pct(s.localMissed)} | ${pct(s.globalCaught)} |`),
    "",
    `The map per edit kind (report half, ${r.scenes.report} scenes, rule in use):`,
    "",
    "| kind | scenes | IoU with the true region (mean) | IoU, 10th percentile | judged global (no mask) | coverage |",
    "| --- | --- | --- | --- | --- | --- |",
    ...r.kinds.map((k) => `| ${k.kind} | ${k.scenes} | ${k.iou.toFixed(3)} | ${k.iouP10.toFixed(3)} | ${pct(k.global)} | ${pct(k.coverage)} |`),
    "",
    `Edits (report half, ${r.time.edits} scenes, 20 steps, 5,5,5, seed per scene; preservation: mean absolute change outside the true region; quality: mean absolute error to the exact target inside it; 0..1, lower is better):`,
    "",
    "| kind | mask | scenes | following | preservation error | quality error | ms / edit |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...r.edits.map((e) => `| ${e.kind} | ${e.config} | ${e.scenes} | ${pct(e.following)} | ${err(e.preservation)} | ${err(e.quality)} | ${e.ms.toFixed(0)} |`),
    "",
    `Time: a plain edit ${r.time.plainMs.toFixed(0)} ms, auto adds ${r.time.addedMs.toFixed(0)} ms (${r.time.ratio.toFixed(3)}x), interleaved on the same scenes.`,
  ];
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { limit: { type: "string", default: "1000" }, edits: { type: "string", default: "120" }, model: { type: "string", default: BUNDLED_MODEL } } });
  const r = await runAutoMaskBench({ limit: Number(values.limit), edits: Number(values.edits), modelDir: values.model!, log: (s) => process.stderr.write(`${s}\n`) });
  const dir = path.join(ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "auto-mask.json"), JSON.stringify(r, null, 2));
  const md = `### auto_mask on the bundled editor's held-out scenes\n\n${autoMaskMarkdown(r)}\n`;
  writeFileSync(path.join(dir, "auto-mask.md"), md);
  process.stdout.write(md);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
