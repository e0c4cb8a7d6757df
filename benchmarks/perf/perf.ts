/**
 * `npm run bench`: speed as a measured property. Every comparison is measured side by side in
 * one run and reported as medians with min-max (the machine is shared and noisy):
 *   a. pipeline overhead: wall time of one edit / time inside ONNX Runtime's run() calls
 *   b. the same model and sampling loop in PyTorch eager (models/train/reference.py), same threads
 *   c. full scale: SD1.5-shaped UNet step at 512x512 and a whole 20-step edit vs the sgemm peak (BENCH_FULLSCALE=0 skips)
 *   d. the HTTP server under 1, 2, 4, 8 concurrent clients, and its RSS over two blocks of 500 requests
 *   e. what to optimise: session options, a float16 UNet, workers vs intra-op threads
 *   f. full-resolution results, detail keep vs off (detail.ts)
 *   g. the shared job store: sync edits through the in-memory queue and through Redis
 *   h. fast edits (issue 20): samplers, guidance shortcuts and DeepCache, quality beside cost (fast.ts)
 * Writes bench-results/perf.json and bench-results/perf.md (h: bench-results/fast.md).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Generator, type SessionOptions, edit, loadModel } from "../../editor/index.js";
import { BUNDLED_MODEL, CLI_PATH, ROOT, TEST_MODEL } from "../../src/paths.js";
import { compareFloat16 } from "./float16.js";
import { runDetailBench } from "../evaluation/detail.js";
import { runBatchBench } from "./batch.js";
import { runFastBench, writeFastReport } from "./fast.js";
import { runMaskBench, writeMaskReport } from "../evaluation/masks.js";
import { FULLSCALE_CACHE, measureFullScale } from "./fullscale.js";
import { writeMemoryReport } from "./memory.js";
import { percentile } from "../../src/benchmark/metrics.js";
import { type PerfReport, renderPerf } from "./perf-report.js";
import { PhaseProgress } from "./phases.js";
import { stat } from "../../src/stats.js";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const SMALL_IMAGE = path.join(ROOT, "models", "heldout", "syn-0000-source.png");

/** a. wall time vs time inside ORT, per edit. */
export async function measureEdits(dir: string, opts: { repeats: number; steps: number; image: string }) {
  const model = await loadModel(dir, { intraOpThreads: THREADS, interOpThreads: 1 });
  const image = readFileSync(opts.image);
  // whole edits each time: the encode cache would skip both encoders after the first
  const run = (seed: number) => edit(model, { image, instruction: "make the mug red", steps: opts.steps, seed, encodeCache: null });
  // warm-up: the first runs grow ORT's arenas and get the loop's JavaScript compiled by V8's
  // optimising tier; a serving process is in that state after its first few edits
  for (let i = 0; i < 3; i++) await run(i);
  const wall: number[] = [];
  const ort: number[] = [];
  for (let i = 0; i < opts.repeats; i++) {
    const r = await run(i);
    wall.push(r.timings.totalMs);
    ort.push(r.timings.ortMs);
  }
  await model.dispose();
  return { model: path.basename(dir), image: path.basename(opts.image), steps: opts.steps, wall_ms: stat(wall), ort_ms: stat(ort), overhead_ratio: stat(wall.map((w, i) => w / ort[i])), samples_ms: wall };
}

/** b. PyTorch eager on the same weights and loop; OpenBLAS single-threaded so it does not fight torch's threads. */
function measurePyTorch(dir: string, steps: number, repeats: number): number[] | null {
  const weights = path.join(dir, "reference", "weights.pt");
  if (!existsSync(weights)) return null;
  const r = spawnSync("/usr/bin/python3", [path.join(ROOT, "models", "train", "reference.py"), "time", "--weights", weights, "--image", SMALL_IMAGE, "--steps", String(steps), "--repeats", String(repeats), "--threads", String(THREADS)], {
    env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
    encoding: "utf8",
  });
  if (r.status !== 0) {
    process.stderr.write(`pytorch reference failed: ${r.stderr.slice(-500)}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split("\n").pop()!).edit_ms as number[];
}

/**
 * Session options side by side: every variant loaded at once and measured in alternating rounds,
 * so drift in machine load hits all of them alike. Ratios are against the first (the default).
 */
export async function sweepSessionOptions(dir: string, rounds = 4, perRound = 3) {
  const variants: Array<{ label: string; options: SessionOptions }> = [
    { label: `default (${THREADS} threads, optimisation all, arena, no spinning)`, options: {} },
    { label: "1 intra-op thread", options: { intraOpThreads: 1 } },
    { label: "optimisation basic", options: { graphOptimizationLevel: "basic" } },
    { label: "optimisation disabled", options: { graphOptimizationLevel: "disabled" } },
    { label: "no CPU memory arena", options: { enableCpuMemArena: false } },
    { label: "thread spinning on", options: { allowSpinning: true } },
  ];
  const image = readFileSync(SMALL_IMAGE);
  const models = [];
  for (const v of variants) models.push(await loadModel(dir, { intraOpThreads: THREADS, interOpThreads: 1, ...v.options }));
  const samples: number[][] = variants.map(() => []);
  try {
    for (const m of models) await edit(m, { image, instruction: "make the mug red", steps: 20, seed: 0, encodeCache: null });
    for (let r = 0; r < rounds; r++) {
      for (const [k, m] of models.entries()) {
        for (let i = 0; i < perRound; i++) samples[k].push((await edit(m, { image, instruction: "make the mug red", steps: 20, seed: i, encodeCache: null })).timings.totalMs);
      }
    }
  } finally {
    for (const m of models) await m.dispose();
  }
  const base = stat(samples[0]).median;
  return variants.map((v, k) => ({ label: v.label, edit_ms: stat(samples[k]), vs_default: stat(samples[k]).median / base }));
}

/** d. A closed-loop load: `clients` loops, each sending its next request when the last returns. */
async function load(url: string, image: Buffer, clients: number, perClient: number) {
  const latencies: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        const form = new FormData();
        form.append("image", new Blob([new Uint8Array(image)]), "s.png");
        form.append("instruction", "make the mug red");
        form.append("seed", String(c * 1000 + i));
        const s = performance.now();
        const res = await fetch(`${url}/v1/edits`, { method: "POST", body: form });
        await res.arrayBuffer();
        if (res.status === 200) latencies.push(performance.now() - s);
        else errors++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { clients, requests: clients * perClient, errors, throughput_rps: latencies.length / seconds, p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99), latencies };
}

/**
 * What queueing predicts for c closed-loop clients on one FIFO worker: a request that returns is
 * resent at once and finds the other c - 1 waiting, so its latency is the sum of c service times.
 * The p99 of that sum, drawn from the measured single-client latencies (not c x the median, which
 * ignores how service times vary).
 */
export function closedLoopP99(service: number[], clients: number, draws = 20_000): number {
  const rng = new Generator(clients);
  const sums = new Array<number>(draws);
  for (let d = 0; d < draws; d++) {
    let sum = 0;
    for (let k = 0; k < clients; k++) sum += service[Math.floor(rng.uniform() * service.length)];
    sums[d] = sum;
  }
  return percentile(sums, 0.99);
}

async function rss(url: string): Promise<number> {
  const m = /process_resident_memory_bytes (\d+)/.exec(await (await fetch(`${url}/metrics`)).text());
  return m ? Number(m[1]) : Number.NaN;
}

async function startServer(dir: string, workers: number, threads: number, extraEnv: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [CLI_PATH, "serve"], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", REWARD_EDIT_MODEL: dir, REWARD_EDIT_WORKERS: String(workers), ORT_THREADS: String(threads), REWARD_EDIT_QUEUE_SIZE: "64", LOG_LEVEL: "silent", ...extraEnv },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
      const m = /on (http:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on("exit", () => reject(new Error(err)));
  });
  return { url, stop: () => child.kill("SIGTERM") };
}

/**
 * The same cores split two ways: one worker with all intra-op threads, or one worker per thread.
 * 8 closed-loop clients; the two layouts alternate twice.
 */
async function compareWorkerLayouts(dir: string) {
  const layouts = [
    { workers: 1, threads: THREADS },
    { workers: THREADS, threads: 1 },
  ];
  const image = readFileSync(SMALL_IMAGE);
  const rps: number[][] = layouts.map(() => []);
  const p99: number[][] = layouts.map(() => []);
  for (let round = 0; round < 2; round++) {
    for (const [k, l] of layouts.entries()) {
      const server = await startServer(dir, l.workers, l.threads);
      try {
        await load(server.url, image, l.workers, 3); // warm-up: every worker's first edit
        const r = await load(server.url, image, 8, 8);
        rps[k].push(r.throughput_rps);
        p99[k].push(r.p99_ms);
      } finally {
        server.stop();
      }
    }
  }
  return layouts.map((l, k) => ({ ...l, clients: 8, throughput_rps: stat(rps[k]), p99_ms: stat(p99[k]) }));
}

/**
 * g. What the shared job store costs: the same synchronous edits through a server with the
 * in-memory queue and one with REDIS_URL (Debian's redis-server on loopback), alternating rounds.
 */
async function compareJobStores(dir: string, rounds = 4, perRound = 6) {
  const port = await new Promise<number>((resolve) => {
    const s = createNetServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--dir", mkdtempSync(path.join(tmpdir(), "bench-redis-"))], { stdio: "ignore" });
  const failed = await new Promise<boolean>((resolve) => {
    redis.once("error", () => resolve(true));
    setTimeout(() => resolve(false), 500);
  });
  if (failed) return null;
  const servers = [await startServer(dir, 1, THREADS), await startServer(dir, 1, THREADS, { REDIS_URL: `redis://127.0.0.1:${port}` })];
  try {
    const image = readFileSync(SMALL_IMAGE);
    for (const s of servers) await load(s.url, image, 1, 3); // warm-up
    const ms: number[][] = [[], []];
    for (let r = 0; r < rounds; r++) for (const [k, s] of servers.entries()) ms[k].push(...(await load(s.url, image, 1, perRound)).latencies);
    const [memory, withRedis] = ms.map(stat);
    return { memory_ms: memory, redis_ms: withRedis, added_ms: withRedis.median - memory.median, ratio: withRedis.median / memory.median };
  } finally {
    for (const s of servers) s.stop();
    redis.kill();
  }
}

async function measureServer(dir: string) {
  const { url, stop } = await startServer(dir, 1, THREADS);
  try {
    const image = readFileSync(SMALL_IMAGE);
    await load(url, image, 1, 5); // warm-up
    const levels = [];
    for (const c of [1, 2, 4, 8]) {
      // the service-time sample is taken right before each level: this machine's speed drifts
      // within minutes, and a sample from the start of the run mispredicts the later levels
      const single = await load(url, image, 1, 16);
      const { latencies: _, ...r } = await load(url, image, c, Math.max(10, Math.round(80 / c)));
      const predicted = closedLoopP99(single.latencies, c);
      levels.push({ ...r, service_p50_ms: single.p50_ms, predicted_p99_ms: predicted, p99_vs_queueing: r.p99_ms / predicted, naive_p99_ms: c * single.p50_ms });
    }
    // RSS in steady state: after a warm-up under the same load, then over two blocks of 500
    await load(url, image, 4, 25);
    const before = await rss(url);
    await load(url, image, 4, 125);
    const after = await rss(url);
    await load(url, image, 4, 125);
    const after1000 = await rss(url);
    return {
      levels,
      rss_before_mb: before / 2 ** 20,
      rss_after_500_mb: after / 2 ** 20,
      rss_growth_pct: (100 * (after - before)) / before,
      rss_after_1000_mb: after1000 / 2 ** 20,
      rss_growth_second_500_pct: (100 * (after1000 - after)) / after,
    };
  } finally {
    stop();
  }
}

async function main(): Promise<void> {
  const repeats = Number(process.env.BENCH_REPEATS ?? 7);
  const bundled = existsSync(BUNDLED_MODEL) ? BUNDLED_MODEL : TEST_MODEL;
  const photo = path.join(ROOT, "src", "benchmark", "sample", "images", "coffee.png");
  const withServer = !process.env.BENCH_SKIP_SERVER;
  const withFullScale = process.env.BENCH_FULLSCALE !== "0";
  const phase = {
    overhead: { name: "a. pipeline overhead (64 px and a 600x400 photo)", estimateS: 15 },
    pytorch: { name: "b. ours vs PyTorch eager, alternating", estimateS: 60 },
    options: { name: "e. session-option sweep", estimateS: 60 },
    float16: { name: "e. float16 UNet vs float32", estimateS: 40 },
    detail: { name: "f. full-resolution results: detail keep vs off at 512 and 1024 px", estimateS: 60 },
    server: { name: "d. server at 1, 2, 4, 8 clients and RSS over 1,000 requests", estimateS: 300 },
    layouts: { name: "e. workers x intra-op threads at 8 clients", estimateS: 90 },
    stores: { name: "g. job store: in-memory queue vs Redis (sync edits, alternating)", estimateS: 40 },
    // the first run also writes the full-size checkpoint and converts it (~10 GB, see models/README.md)
    fast: { name: "h. fast edits: quality, fidelity and cost of the fast path (bench-results/fast.md)", estimateS: withFullScale ? 1500 : 600 },
    masks: { name: "i. masks: paste only vs blend during sampling (bench-results/masks.md)", estimateS: 600 },
    batch: { name: "j. catalogue batch: 50 photos, a kill and resume, against one CLI run per photo (bench-results/batch.md)", estimateS: 240 },
    memory: { name: "k. memory: full-size fast edits whole and tiled, cached, 768/1024 px, tiny decoder, int8 weights and int8 arithmetic, default-schedule edits (bench-results/memory.md)", estimateS: 5100 },
    fullScale: { name: "c. full scale: UNet steps and a 20-step 512x512 edit of a converted Multi-Reward folder", estimateS: existsSync(FULLSCALE_CACHE) ? 900 : 1500 },
  };
  const progress = new PhaseProgress([
    phase.overhead,
    phase.pytorch,
    phase.options,
    phase.float16,
    phase.detail,
    ...(withServer ? [phase.server, phase.layouts, phase.stores] : []),
    ...(withFullScale ? [phase.fullScale] : []),
    phase.fast,
    phase.masks,
    phase.batch,
    ...(withFullScale ? [phase.memory] : []),
  ]);
  progress.start(phase.overhead);
  const overhead = [
    await measureEdits(bundled, { repeats, steps: 20, image: SMALL_IMAGE }),
    await measureEdits(bundled, { repeats, steps: 20, image: photo }),
  ];
  // b: ours and PyTorch alternate, so drift in machine load hits both
  progress.start(phase.pytorch);
  const oursMs: number[] = [];
  const torchMs: number[] = [];
  for (let round = 0; round < 3; round++) {
    oursMs.push(...(await measureEdits(bundled, { repeats: 3, steps: 20, image: SMALL_IMAGE })).samples_ms);
    const t = measurePyTorch(bundled, 20, 3);
    if (t) torchMs.push(...t);
  }
  progress.start(phase.options);
  const sessionOptions = await sweepSessionOptions(bundled);
  progress.start(phase.float16);
  const fp16 = await compareFloat16(bundled, THREADS);
  progress.start(phase.detail);
  const detail = await runDetailBench({ model: bundled });
  let server = null;
  let workerLayouts = null;
  let jobStores = null;
  if (withServer) {
    progress.start(phase.server);
    server = await measureServer(bundled);
    progress.start(phase.layouts);
    workerLayouts = await compareWorkerLayouts(bundled);
    progress.start(phase.stores);
    jobStores = await compareJobStores(bundled);
  }
  let fullScale = null;
  if (withFullScale) {
    progress.start(phase.fullScale);
    fullScale = await measureFullScale(THREADS);
  }
  progress.start(phase.fast);
  writeFastReport(await runFastBench({ fullScale: withFullScale }));
  progress.start(phase.masks);
  await writeMaskReport(await runMaskBench({ limit: 120, hires: 12, modelDir: bundled }));
  progress.start(phase.batch);
  await runBatchBench({ photos: "47", steps: "20" });
  if (withFullScale) {
    progress.start(phase.memory);
    await writeMemoryReport((s) => process.stderr.write(`${s}\n`));
  }
  progress.done();
  const report: PerfReport = {
    date: new Date().toISOString(),
    node: process.version,
    threads: THREADS,
    model: path.basename(bundled),
    overhead,
    overhead_ratio: overhead[0].overhead_ratio.median,
    pytorch: { ours_ms: stat(oursMs), pytorch_eager_ms: torchMs.length ? stat(torchMs) : null },
    pytorch_eager_ratio: torchMs.length ? stat(torchMs).median / stat(oursMs).median : null,
    session_options: sessionOptions,
    float16: fp16,
    server,
    worker_layouts: workerLayouts,
    job_stores: jobStores,
    full_scale: fullScale,
    detail,
  };
  const outDir = path.join(ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "perf.json"), JSON.stringify(report, null, 2));
  const md = renderPerf(report);
  writeFileSync(path.join(outDir, "perf.md"), md);
  process.stdout.write(md);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
