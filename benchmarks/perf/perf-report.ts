/** perf.json's shape and its Markdown rendering (bench-results/perf.md). */
import type { compareFloat16 } from "./float16.js";
import { renderDetail, type runDetailBench } from "../evaluation/detail.js";
import type { measureFullScale } from "./fullscale.js";
import type { Stat } from "../../src/stats.js";

export interface OverheadRow {
  model: string;
  image: string;
  steps: number;
  wall_ms: Stat;
  ort_ms: Stat;
  overhead_ratio: Stat;
}

export interface LoadLevel {
  clients: number;
  throughput_rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  predicted_p99_ms: number;
  p99_vs_queueing: number;
  naive_p99_ms: number;
  service_p50_ms: number;
}

export interface PerfReport {
  date: string;
  node: string;
  threads: number;
  model: string;
  overhead: OverheadRow[];
  overhead_ratio: number;
  pytorch: { ours_ms: Stat; pytorch_eager_ms: Stat | null };
  pytorch_eager_ratio: number | null;
  session_options: Array<{ label: string; edit_ms: Stat; vs_default: number }>;
  float16: Awaited<ReturnType<typeof compareFloat16>>;
  server: {
    levels: LoadLevel[];
    rss_before_mb: number;
    rss_after_500_mb: number;
    rss_growth_pct: number;
    rss_after_1000_mb: number;
    rss_growth_second_500_pct: number;
  } | null;
  worker_layouts: Array<{ workers: number; threads: number; clients: number; throughput_rps: Stat; p99_ms: Stat }> | null;
  job_stores: { memory_ms: Stat; redis_ms: Stat; added_ms: number; ratio: number } | null;
  full_scale: Awaited<ReturnType<typeof measureFullScale>> | null;
  detail: Awaited<ReturnType<typeof runDetailBench>> | null;
}

const f = (x: number, d = 1) => x.toFixed(d);
const range = (s: Stat, d = 1) => `${f(s.min, d)}-${f(s.max, d)}`;

function float16Lines(r: PerfReport["float16"], what: string): string[] {
  if ("error" in r) return [`- float16 ${what}: not measured (${r.error})`];
  return [
    `- float16 ${what}: ${f(r.float16_ms.median)} ms vs float32 ${f(r.float32_ms.median)} ms per batch-3 call (float32 / float16 = ${f(r.speedup, 2)}); max |difference| ${r.max_abs_diff.toExponential(2)} on outputs up to ${f(r.max_abs_output, 2)}`,
  ];
}

export function renderPerf(r: PerfReport): string {
  const lines = [
    `## Performance (${r.model}, ${r.threads} threads, ${r.date})`,
    "",
    "| measure | median | min-max |",
    "| --- | --- | --- |",
    ...r.overhead.map((o) => `| edit wall / ORT time, ${o.image}, ${o.steps} steps | ${f(o.overhead_ratio.median, 4)} (${f(o.wall_ms.median)} / ${f(o.ort_ms.median)} ms) | ${range(o.overhead_ratio, 4)} |`),
    `| ours, 20-step edit (ms) | ${f(r.pytorch.ours_ms.median)} | ${range(r.pytorch.ours_ms)} |`,
    r.pytorch.pytorch_eager_ms ? `| PyTorch eager, same loop (ms) | ${f(r.pytorch.pytorch_eager_ms.median)} | ${range(r.pytorch.pytorch_eager_ms)} |` : "| PyTorch eager | not available | |",
    `| pytorch_eager_ratio (PyTorch / ours) | ${r.pytorch_eager_ratio?.toFixed(2) ?? "n/a"} | |`,
    "",
    "Session options (20-step edit, all variants loaded together, alternating rounds):",
    "",
    "| variant | median ms | min-max | vs default |",
    "| --- | --- | --- | --- |",
    ...r.session_options.map((v) => `| ${v.label} | ${f(v.edit_ms.median)} | ${range(v.edit_ms)} | ${f(v.vs_default, 3)} |`),
    "",
    ...float16Lines(r.float16, `UNet (${r.model}, 32x32 latents)`),
  ];
  if (r.server) {
    lines.push(
      "",
      "Server (1 worker; before each level, 16 single-client requests measure the service time it is predicted from):",
      "",
      "| clients | service p50 ms | req/s | p50 ms | p99 ms | predicted p99 (sum of c service times) | p99 / predicted | c x median service | errors |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
      ...r.server.levels.map((l) => `| ${l.clients} | ${f(l.service_p50_ms)} | ${f(l.throughput_rps)} | ${f(l.p50_ms)} | ${f(l.p99_ms)} | ${f(l.predicted_p99_ms)} | ${f(l.p99_vs_queueing, 2)} | ${f(l.naive_p99_ms)} | ${l.errors} |`),
      "",
      `RSS after a warm-up ${f(r.server.rss_before_mb, 0)} MB, after 500 more requests ${f(r.server.rss_after_500_mb, 0)} MB (${f(r.server.rss_growth_pct)} %), after 500 more ${f(r.server.rss_after_1000_mb, 0)} MB (${f(r.server.rss_growth_second_500_pct)} %).`,
    );
  }
  if (r.worker_layouts) {
    lines.push(
      "",
      "The same cores as one worker with every thread, or one worker per thread (8 clients):",
      "",
      "| workers x intra-op threads | req/s | p99 ms |",
      "| --- | --- | --- |",
      ...r.worker_layouts.map((l) => `| ${l.workers} x ${l.threads} | ${f(l.throughput_rps.median, 2)} (${range(l.throughput_rps, 2)}) | ${f(l.p99_ms.median)} |`),
    );
  }
  if (r.job_stores) {
    const j = r.job_stores;
    lines.push(
      "",
      `Job store, one client, synchronous edits of the 64 px scene, alternating: in-memory ${f(j.memory_ms.median)} ms (${range(j.memory_ms)}), Redis ${f(j.redis_ms.median)} ms (${range(j.redis_ms)}): ${f(j.added_ms)} ms added per job (x${f(j.ratio, 3)}).`,
    );
  }
  const fs = r.full_scale;
  if (fs) {
    const e = fs.edit;
    lines.push(
      "",
      `Full scale (a Multi-Reward checkpoint in the real diffusers layout with random weights, converted by models/convert; UNet ${f(fs.params_m)} M parameters with 8 input channels, ${f(fs.tflop_per_step, 2)} TFLOP per batch-3 step at 512x512; whole folder ${f(e.params_m)} M):`,
      "",
      ...(fs.conversion
        ? [`- conversion (first run only): ${f(fs.conversion.seconds)} s, ${f(fs.conversion.total_bytes / 2 ** 30, 2)} GiB of ONNX (${fs.conversion.dtype}; UNet ${f(fs.conversion.bytes.unet / 2 ** 30, 2)} GiB)`]
        : []),
      `- one guided UNet step: ${f(fs.step_ms.min / 1000, 2)} s = ${f(fs.achieved_gflops)} GFLOP/s vs this machine's sgemm peak ${f(fs.sgemm_peak_gflops)} GFLOP/s (${f(100 * fs.fraction_of_peak)} %; the peak is the best of ${fs.sgemm_samples_gflops.length} samples taken between steps, ${f(Math.min(...fs.sgemm_samples_gflops))}-${f(fs.sgemm_peak_gflops)})`,
      `- a whole ${e.steps}-step edit of a ${e.size} photo through loadModel + edit() (${f(e.tflop)} TFLOP): ${f(e.wall_s)} s wall, ${f(e.ort_s)} s in ORT (wall / ORT ${f(e.overhead_ratio, 4)}); text encoder ${f(e.component_s.text_encoder, 2)} s, VAE encoder ${f(e.component_s.vae_encoder)} s, UNet ${f(e.component_s.unet)} s, VAE decoder ${f(e.component_s.vae_decoder)} s; ${f(e.achieved_gflops)} GFLOP/s (${f(100 * e.fraction_of_peak)} % of peak); peak RSS ${f(e.peak_rss_gb)} GB`,
      `- top operators in the UNet step: ${fs.top_operators.map((o) => `${o.op} ${f(100 * o.share)} %`).join(", ")}`,
      ...(fs.float16 ? float16Lines(fs.float16, "UNet at full scale (64x64 latents)") : []),
    );
  }
  if (r.detail) lines.push("", renderDetail(r.detail).trimEnd());
  return lines.join("\n") + "\n";
}
