/**
 * `npm run bench`: speed as a measured property. Every comparison is measured side by side in
 * one run and reported as medians with min-max (the machine is shared and noisy):
 *   a. pipeline overhead: wall time of one edit / time inside ONNX Runtime's run() calls
 *   b. the same model and sampling loop in PyTorch eager (models/train/reference.py), same threads
 *   c. full scale: an SD1.5-architecture UNet step at 512x512 vs the sgemm peak (BENCH_FULLSCALE=0 skips)
 *   d. the HTTP server under 1, 2, 4, 8 concurrent clients, and its RSS over 500 requests
 * Writes bench-results/perf.json and bench-results/perf.md.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { edit, loadModel } from "../../editor/index.js";
import { BUNDLED_MODEL, CLI_PATH, ROOT, TEST_MODEL } from "../paths.js";
import { measureFullScale } from "./fullscale.js";

interface Stat {
  median: number;
  min: number;
  max: number;
}

const stat = (xs: number[]): Stat => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
};
const pctl = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const SMALL_IMAGE = path.join(ROOT, "models", "heldout", "syn-0000-source.png");

/** a. wall time vs time inside ORT, per edit. */
export async function measureEdits(dir: string, opts: { repeats: number; steps: number; image: string }) {
  const model = await loadModel(dir, { intraOpThreads: THREADS, interOpThreads: 1 });
  const image = readFileSync(opts.image);
  const run = (seed: number) => edit(model, { image, instruction: "make the mug red", steps: opts.steps, seed });
  await run(0); // warm-up: first runs allocate ORT arenas
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
  return { clients, requests: clients * perClient, errors, throughput_rps: latencies.length / seconds, p50_ms: pctl(latencies, 0.5), p99_ms: pctl(latencies, 0.99) };
}

async function rss(url: string): Promise<number> {
  const m = /process_resident_memory_bytes (\d+)/.exec(await (await fetch(`${url}/metrics`)).text());
  return m ? Number(m[1]) : Number.NaN;
}

async function measureServer(dir: string) {
  const child = spawn(process.execPath, [CLI_PATH, "serve"], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", REWARD_EDIT_MODEL: dir, ORT_THREADS: String(THREADS), REWARD_EDIT_QUEUE_SIZE: "64", LOG_LEVEL: "silent" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let err = "";
      child.stderr.on("data", (d) => {
        err += d;
        const m = /on (http:\/\/\S+)/.exec(err);
        if (m) resolve(m[1]);
      });
      child.on("exit", () => reject(new Error(err)));
    });
    const image = readFileSync(SMALL_IMAGE);
    await load(url, image, 1, 5); // warm-up
    const single = await load(url, image, 1, 20);
    const levels = [];
    for (const c of [1, 2, 4, 8]) {
      const r = await load(url, image, c, Math.max(5, Math.round(40 / c)));
      // one worker serves one edit at a time: c clients in a closed loop wait for c - 1 others
      const predicted = c * single.p50_ms;
      levels.push({ ...r, predicted_p99_ms: predicted, p99_vs_queueing: r.p99_ms / predicted });
    }
    const before = await rss(url);
    await load(url, image, 4, 125);
    const after = await rss(url);
    return { service_ms_single_client: single.p50_ms, levels, rss_before_mb: before / 2 ** 20, rss_after_500_mb: after / 2 ** 20, rss_growth_pct: (100 * (after - before)) / before };
  } finally {
    child.kill("SIGTERM");
  }
}

async function main(): Promise<void> {
  const repeats = Number(process.env.BENCH_REPEATS ?? 7);
  const bundled = existsSync(BUNDLED_MODEL) ? BUNDLED_MODEL : TEST_MODEL;
  const photo = path.join(ROOT, "src", "bench", "sample", "images", "coffee.png");
  const overhead = [
    await measureEdits(bundled, { repeats, steps: 20, image: SMALL_IMAGE }),
    await measureEdits(bundled, { repeats, steps: 20, image: photo }),
  ];
  // b: ours and PyTorch alternate, so drift in machine load hits both
  const oursMs: number[] = [];
  const torchMs: number[] = [];
  for (let round = 0; round < 3; round++) {
    oursMs.push(...(await measureEdits(bundled, { repeats: 3, steps: 20, image: SMALL_IMAGE })).samples_ms);
    const t = measurePyTorch(bundled, 20, 3);
    if (t) torchMs.push(...t);
  }
  const pytorchRatio = torchMs.length ? stat(torchMs).median / stat(oursMs).median : null;
  const server = process.env.BENCH_SKIP_SERVER ? null : await measureServer(bundled);
  const fullScale = process.env.BENCH_FULLSCALE === "0" ? null : await measureFullScale(THREADS);
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    threads: THREADS,
    model: path.basename(bundled),
    overhead,
    overhead_ratio: overhead[0].overhead_ratio.median,
    pytorch: { ours_ms: stat(oursMs), pytorch_eager_ms: torchMs.length ? stat(torchMs) : null },
    pytorch_eager_ratio: pytorchRatio,
    server,
    full_scale: fullScale,
  };
  const outDir = path.join(ROOT, "bench-results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "perf.json"), JSON.stringify(report, null, 2));
  const md = [
    `## Performance (${report.model}, ${THREADS} threads, ${report.date})`,
    "",
    "| measure | median | min-max |",
    "| --- | --- | --- |",
    ...overhead.map((o) => `| edit wall / ORT time, ${o.image}, ${o.steps} steps | ${o.overhead_ratio.median.toFixed(3)} (${o.wall_ms.median.toFixed(1)} / ${o.ort_ms.median.toFixed(1)} ms) | ${o.overhead_ratio.min.toFixed(3)}-${o.overhead_ratio.max.toFixed(3)} |`),
    `| ours, 20-step edit (ms) | ${stat(oursMs).median.toFixed(1)} | ${stat(oursMs).min.toFixed(1)}-${stat(oursMs).max.toFixed(1)} |`,
    torchMs.length ? `| PyTorch eager, same loop (ms) | ${stat(torchMs).median.toFixed(1)} | ${stat(torchMs).min.toFixed(1)}-${stat(torchMs).max.toFixed(1)} |` : "| PyTorch eager | not available | |",
    `| pytorch_eager_ratio (PyTorch / ours) | ${pytorchRatio?.toFixed(2) ?? "n/a"} | |`,
    ...(server
      ? [
          "",
          `Server (1 worker, single-client service time ${server.service_ms_single_client.toFixed(1)} ms):`,
          "",
          "| clients | req/s | p50 ms | p99 ms | predicted p99 (c x service) | p99 / predicted | errors |",
          "| --- | --- | --- | --- | --- | --- | --- |",
          ...server.levels.map((l) => `| ${l.clients} | ${l.throughput_rps.toFixed(1)} | ${l.p50_ms.toFixed(1)} | ${l.p99_ms.toFixed(1)} | ${l.predicted_p99_ms.toFixed(1)} | ${l.p99_vs_queueing.toFixed(2)} | ${l.errors} |`),
          "",
          `RSS ${server.rss_before_mb.toFixed(0)} MB before, ${server.rss_after_500_mb.toFixed(0)} MB after 500 requests (${server.rss_growth_pct.toFixed(1)} %).`,
        ]
      : []),
    ...(fullScale
      ? [
          "",
          `Full scale (SD1.5 UNet architecture, ${fullScale.params_m.toFixed(1)} M parameters, 8 input channels, batch 3 at 512x512, ${fullScale.tflop_per_step.toFixed(2)} TFLOP per step):`,
          "",
          `- one guided step: ${fullScale.step_ms.min.toFixed(0)} ms; a 20-step edit, UNet only: ${fullScale.unet_only_20_step_edit_s.toFixed(1)} s`,
          `- achieved ${fullScale.achieved_gflops.toFixed(1)} GFLOP/s vs sgemm peak ${fullScale.sgemm_peak_gflops.toFixed(1)} GFLOP/s (${(100 * fullScale.fraction_of_peak).toFixed(1)} %)`,
          `- top operators: ${fullScale.top_operators.map((o) => `${o.op} ${(100 * o.share).toFixed(1)} %`).join(", ")}`,
        ]
      : []),
  ].join("\n");
  writeFileSync(path.join(outDir, "perf.md"), md + "\n");
  process.stdout.write(md + "\n");
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
