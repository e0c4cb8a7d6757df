/**
 * Memory and first-edit time on the full-size converted folder (issue 33): each configuration in
 * its own process (a process's peak RSS never falls, so configurations cannot share one), a
 * `fast` edit of a 512 px photo, then a second edit of the same photo and instruction (another
 * seed: what best-of-N, refinement and `n` do), with the resident set after loading, after each
 * edit and its peak (VmHWM), and the time from process start to the first finished edit.
 *
 *   node dist/benchmarks/perf/memory.js [config ...]       all configurations, or the named ones
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type EditOptions, createSession, decodeLatent, edit, loadModel, warmUp } from "../../editor/index.js";
import { Generator } from "../../editor/tensor/random.js";
import { resolveParams } from "../../src/edit-params.js";
import { PYTHON, ROOT } from "../../src/paths.js";
import { loadPresets } from "../../src/presets/index.js";
import { FULLSCALE_CACHE, FULLSCALE_CHECKPOINT, FULLSCALE_INT8, FULLSCALE_INT8_COMPUTE, ensureComputeModel, ensureFullScaleModel, ensureInt8Model } from "./fullscale.js";
import { type Int8Row, int8Table } from "./int8.js";
import { peakRssGb } from "./peak-rss.js";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);

export interface MemoryConfig {
  name: string;
  what: string;
  options: Partial<EditOptions>;
  /** Session options beyond the threads. */
  session?: Record<string, unknown>;
  /** Environment of the child (glibc's malloc tunables). */
  env?: Record<string, string>;
  /** Run the server's warm-up (the /readyz condition) between loading and the first edit. */
  warmUp?: boolean;
  /** Edits of the same photo after the first (default 1; 0: none): where the resident set settles. */
  repeats?: number;
  /**
   * The same checkpoint with other weights than float32: its float16 conversion (half the files),
   * or the float32 folder with the UNets' and text encoder's weights in int8 (models quantize).
   */
  weights?: "float16" | "int8" | "int8-c1280" | "int8-compute";
  /** The default schedule (20 steps, three branches) instead of the `fast` preset. */
  schedule?: "default";
}

const ORT_CACHE = path.join(path.dirname(FULLSCALE_CACHE), "ort-optimized");
/** The same random-weight checkpoint converted with --dtype float16. */
const FULLSCALE_F16 = path.join(path.dirname(FULLSCALE_CACHE), "mrc-random-float16");
/** int8 but for the convolutions under 1280 output channels (quantize.py --conv-min-channels 1280). */
const FULLSCALE_INT8_C1280 = `${FULLSCALE_INT8}-c1280`;
const folderFor = (c: MemoryConfig) =>
  c.weights === "float16" ? FULLSCALE_F16 : c.weights === "int8" ? FULLSCALE_INT8 : c.weights === "int8-c1280" ? FULLSCALE_INT8_C1280 : c.weights === "int8-compute" ? FULLSCALE_INT8_COMPUTE : FULLSCALE_CACHE;

export const MEMORY_CONFIGS: MemoryConfig[] = [
  { name: "whole", what: "whole-image VAE (vae_tiling off), as before issue 33", options: { vaeTiling: "off" } },
  { name: "tiled-256", what: "VAE in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256 } },
  { name: "tiled-192", what: "VAE in 192 px tiles", options: { vaeTiling: "on", vaeTile: 192 } },
  { name: "tiled-352", what: "VAE in 352 px tiles (2 x 2 at 512 px)", options: { vaeTiling: "on", vaeTile: 352 }, repeats: 2 },
  { name: "tiny", what: "--decoder tiny (TAESD, random weights; the whole SD VAE encoder)", options: { decoder: "tiny" } },
  // the same configuration twice: the first start writes ONNX Runtime's optimised graphs, the second loads them
  { name: "ort-cache-write", what: "REWARD_EDIT_ORT_CACHE, first start (writes the optimised graphs)", options: {}, session: { optimizedCacheDir: ORT_CACHE }, repeats: 0 },
  { name: "ort-cache-read", what: "REWARD_EDIT_ORT_CACHE, later starts (loads them), then the warm-up /readyz waits for", options: {}, session: { optimizedCacheDir: ORT_CACHE }, warmUp: true, repeats: 0 },
  { name: "f16-whole", what: "float16 weights (models convert --dtype float16), whole-image VAE", options: { vaeTiling: "off" }, weights: "float16" },
  { name: "f16-tiled-256", what: "float16 weights, VAE in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256 }, weights: "float16" },
  // issue 33's 4 GB pod: weights that stay int8 in memory (DequantizeLinear is not folded away)
  { name: "int8-whole", what: "int8 UNet, shallow UNet and text encoder (models quantize), whole-image VAE", options: { vaeTiling: "off" }, weights: "int8" },
  { name: "int8-tiled-256", what: "int8 weights, VAE in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256 }, weights: "int8", repeats: 2 },
  { name: "int8-tiled-352", what: "int8 weights, VAE in 352 px tiles", options: { vaeTiling: "on", vaeTile: 352 }, weights: "int8", repeats: 2 },
  { name: "int8-c1280-tiled-256", what: "int8 but the convolutions under 1280 channels, VAE in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256 }, weights: "int8-c1280", repeats: 2 },
  { name: "int8-ort-cache-write", what: "int8 weights, REWARD_EDIT_ORT_CACHE, first start", options: { vaeTiling: "on", vaeTile: 256 }, session: { optimizedCacheDir: ORT_CACHE }, weights: "int8", repeats: 0 },
  { name: "int8-ort-cache-read", what: "int8 weights, REWARD_EDIT_ORT_CACHE, later starts, then the warm-up", options: { vaeTiling: "on", vaeTile: 256 }, session: { optimizedCacheDir: ORT_CACHE }, weights: "int8", warmUp: true, repeats: 0 },
  { name: "int8-tiny", what: "int8 weights, --decoder tiny, VAE encoder in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256, decoder: "tiny" }, weights: "int8" },
  // issue 42: int8 arithmetic against float32 and int8 weights, `fast` and the default schedule
  { name: "int8c-tiled-256", what: "int8 arithmetic (models quantize --compute int8), VAE in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256 }, weights: "int8-compute", repeats: 2 },
  { name: "int8c-whole", what: "int8 arithmetic, whole-image VAE", options: { vaeTiling: "off" }, weights: "int8-compute" },
  { name: "default-tiled-256", what: "float32, default schedule (20 steps, 3 branches), VAE in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256 }, schedule: "default", repeats: 0 },
  { name: "int8-default-tiled-256", what: "int8 weights, default schedule, VAE in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256 }, weights: "int8", schedule: "default", repeats: 0 },
  { name: "int8c-default-tiled-256", what: "int8 arithmetic, default schedule, VAE in 256 px tiles", options: { vaeTiling: "on", vaeTile: 256 }, weights: "int8-compute", schedule: "default", repeats: 0 },
  { name: "r768", what: "--resolution 768 (auto: 256 px tiles)", options: { resolution: 768 }, repeats: 0 },
  { name: "r1024", what: "--resolution 1024 (auto: 256 px tiles)", options: { resolution: 1024 }, repeats: 0 },
];

const rssGb = () => {
  const m = /^VmRSS:\s*(\d+)\s*kB/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? (Number(m[1]) * 1024) / 2 ** 30 : NaN;
};

export interface MemoryRow {
  name: string;
  what: string;
  size: string;
  loadS: number;
  rssAfterLoadGb: number;
  warmUpS: number | null;
  firstEditS: number;
  firstEditFromStartS: number;
  rssAfterFirstGb: number;
  peakAfterFirstGb: number;
  secondEditS: number | null;
  secondCached: { latent: boolean; text: boolean } | null;
  rssAfterSecondGb: number | null;
  /** Wall time and resident set after each later edit of the same photo. */
  laterEditS: number[];
  rssAfterLaterGb: number[];
  peakGb: number;
  componentS: Record<string, number>;
  secondComponentS: Record<string, number>;
}

async function child(c: MemoryConfig): Promise<MemoryRow> {
  const t0 = performance.now();
  const model = await loadModel(folderFor(c), { intraOpThreads: THREADS, interOpThreads: 1, ...(c.session ?? {}) });
  const loadS = (performance.now() - t0) / 1000;
  const rssAfterLoadGb = rssGb();
  const warmUpS = c.warmUp ? (await warmUp(model)).ms / 1000 : null;
  const image = readFileSync(path.join(ROOT, "src", "benchmark", "sample", "images", "astronaut.png"));
  const fast = resolveParams({ preset: "fast" }, loadPresets(), { deepCache: model.unetShallow !== undefined });
  const schedule = c.schedule === "default" ? {} : { rewards: fast.rewards, steps: fast.steps, textGuidance: fast.textGuidance, imageGuidance: fast.imageGuidance, ...fast.sampling };
  const o = { image, instruction: "turn the suit gold", ...schedule, ...c.options };
  const sessions = { text_encoder: model.textEncoder, vae_encoder: model.vaeEncoder, unet: model.unet, unet_shallow: model.unetShallow, vae_decoder: model.vaeDecoder };
  const ms = () => Object.fromEntries(Object.entries(sessions).map(([k, s]) => [k, (s?.runMs ?? 0) / 1000]));
  const diff = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
  const m0 = ms();
  const r1 = await edit(model, { ...o, seed: 0 });
  const firstEditFromStartS = process.uptime();
  const rssAfterFirstGb = rssGb();
  const peakAfterFirstGb = peakRssGb();
  const m1 = ms();
  const repeats = c.repeats ?? 1;
  const r2 = repeats > 0 ? await edit(model, { ...o, seed: 1 }) : null;
  const m2 = ms();
  const rssAfterSecondGb = r2 ? rssGb() : null;
  const laterEditS: number[] = [];
  const rssAfterLaterGb: number[] = [];
  for (let k = 2; k <= repeats; k++) {
    laterEditS.push((await edit(model, { ...o, seed: k })).timings.totalMs / 1000);
    rssAfterLaterGb.push(rssGb());
  }
  const row: MemoryRow = {
    name: c.name,
    what: c.what,
    size: `${r1.parameters.workingWidth}x${r1.parameters.workingHeight}`,
    loadS,
    rssAfterLoadGb,
    warmUpS,
    firstEditS: r1.timings.totalMs / 1000,
    firstEditFromStartS,
    rssAfterFirstGb,
    peakAfterFirstGb,
    secondEditS: r2 ? r2.timings.totalMs / 1000 : null,
    secondCached: r2?.timings.cached ?? null,
    rssAfterSecondGb,
    laterEditS,
    rssAfterLaterGb,
    peakGb: peakRssGb(),
    componentS: diff(m0, m1),
    secondComponentS: diff(m1, m2),
  };
  await model.dispose();
  return row;
}

export async function measureMemory(configs: MemoryConfig[] = MEMORY_CONFIGS, log: (s: string) => void = () => {}): Promise<MemoryRow[]> {
  ensureFullScaleModel();
  if (configs.some((c) => c.weights === "float16") && !existsSync(path.join(FULLSCALE_F16, "reward-edit.json"))) {
    const r = spawnSync(PYTHON, [path.join(ROOT, "models", "convert", "convert.py"), FULLSCALE_CHECKPOINT, FULLSCALE_F16, "--dtype", "float16"], { stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) throw new Error("the float16 conversion of the full-size checkpoint failed");
  }
  if (configs.some((c) => c.name.endsWith("ort-cache-write"))) rmSync(ORT_CACHE, { recursive: true, force: true });
  // the tiny decoder's rows: a random-weight TAESD of the real shape (the weights cannot be fetched here)
  const taesd = (folder: string) => {
    if (existsSync(path.join(folder, "preview_decoder", "model.onnx"))) return;
    const t = spawnSync(PYTHON, [path.join(ROOT, "models", "convert", "taesd.py"), "--random", "--folder", folder], { stdio: ["ignore", "ignore", "inherit"] });
    if (t.status !== 0) throw new Error("taesd.py failed");
  };
  taesd(FULLSCALE_CACHE);
  if (configs.some((c) => c.weights === "int8")) {
    ensureInt8Model();
    taesd(FULLSCALE_INT8);
  }
  if (configs.some((c) => c.weights === "int8-compute")) await ensureComputeModel();
  if (configs.some((c) => c.weights === "int8-c1280")) ensureInt8Model(FULLSCALE_INT8_C1280, ["--conv-min-channels", "1280"]);
  const rows: MemoryRow[] = [];
  for (const c of configs) {
    log(`memory: ${c.name}`);
    const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, "--child", JSON.stringify(c)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20, env: { ...process.env, ...(c.env ?? {}) } });
    if (r.status !== 0) throw new Error(`memory run ${c.name} failed (exit ${r.status})`);
    rows.push(JSON.parse(r.stdout.trim().split("\n").pop()!));
    log(JSON.stringify(rows.at(-1)));
  }
  return rows;
}

const f = (x: number, d = 2) => x.toFixed(d);

export function memoryTable(rows: MemoryRow[]): string {
  const out = [
    "| configuration | working size | load s | RSS after load GB | first edit s | start to first edit s | peak RSS GB | VAE enc s | VAE dec s | second edit s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const c = r.secondCached;
    const cached = !c ? "" : c.latent && c.text ? " (latent + text cached)" : c.latent ? " (latent cached)" : c.text ? " (text cached)" : " (nothing cached)";
    const second = r.secondEditS === null ? "-" : `${f(r.secondEditS, 1)}${cached}`;
    out.push(`| ${r.name}: ${r.what} | ${r.size} | ${f(r.loadS, 1)} | ${f(r.rssAfterLoadGb)} | ${f(r.firstEditS, 1)} | ${f(r.firstEditFromStartS, 1)} | ${f(r.peakGb)} | ${f(r.componentS.vae_encoder)} | ${f(r.componentS.vae_decoder)} | ${second} |`);
  }
  return out.join("\n");
}

export interface VaeTileRow {
  tile: number;
  tiles: number;
  decodeS: number[];
  /** Against the whole decode of the same latent (random weights: a check of the blend, not of quality). */
  psnrDb: number | null;
}

/**
 * Decode time per tile size, side by side in one process, rounds alternating so the machine's
 * drift falls on every size alike; only the decoder session is loaded.
 */
export async function measureVaeTiles(tiles = [0, 384, 352, 256, 192], rounds = 2, latentSide = 64): Promise<VaeTileRow[]> {
  const dec = await createSession(path.join(FULLSCALE_CACHE, "vae_decoder", "model.onnx"), { intraOpThreads: THREADS, interOpThreads: 1 });
  const latent = { data: new Generator(7).randn(new Float32Array(4 * latentSide * latentSide)), channels: 4, height: latentSide, width: latentSide };
  const rows: VaeTileRow[] = tiles.map((tile) => ({ tile, tiles: 0, decodeS: [], psnrDb: null }));
  let whole: Float32Array | null = null;
  for (let r = 0; r < rounds; r++) {
    for (const row of rows) {
      let runs = 0;
      const counted = { ...dec, run: (f: Parameters<typeof dec.run>[0]) => (runs++, dec.run(f)) } as typeof dec;
      const t = performance.now();
      const out = await decodeLatent(counted, latent, 8, row.tile);
      row.decodeS.push((performance.now() - t) / 1000);
      row.tiles = runs;
      if (row.tile === 0) whole = out.data;
      else if (whole && row.psnrDb === null) {
        let mse = 0;
        for (let i = 0; i < whole.length; i++) mse += ((Math.min(1, Math.max(-1, whole[i])) - Math.min(1, Math.max(-1, out.data[i]))) / 2) ** 2;
        row.psnrDb = 10 * Math.log10(1 / (mse / whole.length));
      }
    }
  }
  await dec.dispose();
  return rows;
}

export function vaeTilesTable(rows: VaeTileRow[]): string {
  const whole = rows.find((r) => r.tile === 0);
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const out = ["| tile px | decoder runs | decode s (each round) | vs whole | PSNR vs whole dB |", "| --- | --- | --- | --- | --- |"];
  for (const r of rows) {
    const ratio = whole ? med(r.decodeS) / med(whole.decodeS) : NaN;
    out.push(`| ${r.tile || "whole"} | ${r.tiles} | ${r.decodeS.map((s) => f(s, 1)).join(", ")} | ${f(ratio)} | ${r.psnrDb === null ? "-" : f(r.psnrDb, 1)} |`);
  }
  return out.join("\n");
}

/** The perf phase: every configuration, then the decoder's tile sizes side by side; bench-results/memory.{json,md}. */
export async function writeMemoryReport(log: (s: string) => void = () => {}): Promise<void> {
  const rows = await measureMemory(MEMORY_CONFIGS, log);
  const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, "--vae-tiles"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const tiles = r.status === 0 ? (JSON.parse(r.stdout.trim().split("\n").pop()!) as VaeTileRow[]) : [];
  // int8 against float32 graph by graph, in a process of its own (both UNets resident at once)
  const q = spawnSync(process.execPath, [path.join(path.dirname(new URL(import.meta.url).pathname), "int8.js")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const int8 = q.status === 0 ? (JSON.parse(q.stdout.trim().split("\n")[0]) as Int8Row[]) : [];
  const dir = path.join(ROOT, "bench-results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "memory.json"), JSON.stringify({ date: new Date().toISOString(), threads: THREADS, rows, tiles, int8 }, null, 1));
  writeFileSync(
    path.join(dir, "memory.md"),
    `# Memory, tiling and the first edit (issue 33)\n\n${memoryTable(rows)}\n\nVAE decoder alone, 512 px, tile sizes side by side:\n\n${vaeTilesTable(tiles)}\n\nfloat32, int8 weights and int8 arithmetic, each graph side by side (512 px):\n\n${int8Table(int8)}\n`,
  );
}

if (process.argv[2] === "--vae-tiles") {
  process.stdout.write(JSON.stringify(await measureVaeTiles()) + "\n");
} else if (process.argv[2] === "--child") {
  const row = await child(JSON.parse(process.argv[3]) as MemoryConfig);
  process.stdout.write(JSON.stringify(row) + "\n");
} else if (process.argv[1] === new URL(import.meta.url).pathname) {
  const names = process.argv.slice(2);
  const rows = await measureMemory(names.length ? MEMORY_CONFIGS.filter((c) => names.includes(c.name)) : MEMORY_CONFIGS, (s) => process.stderr.write(s + "\n"));
  process.stdout.write(memoryTable(rows) + "\n");
}
