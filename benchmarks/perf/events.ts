/**
 * Job events measured (docs/progress.md): time from submission to the first event, and fan-out:
 * N listeners with previews on one job, the server's RSS and how far apart the listeners get
 * each event.
 *   node dist/benchmarks/perf/events.js [LISTENERS=50] [STEPS=400]
 * In-process server, memory mode, the bundled model, one inference worker.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { pino } from "pino";
import { BUNDLED_MODEL } from "../../src/paths.js";
import { startServer } from "../../src/server/server.js";

const listeners = Number(process.argv[2] ?? 50);
const steps = Number(process.argv[3] ?? 400);
const s = await startServer(pino({ level: "silent" }), { port: 0, host: "127.0.0.1", modelDir: BUNDLED_MODEL, workers: 1, maxSteps: 1000 }, {});
const image = await readFile(path.join(BUNDLED_MODEL, "examples", "lemon-on-wood.png"));
const submit = async () => {
  const f = new FormData();
  f.append("image", new Blob([new Uint8Array(image)]), "x.png");
  f.append("instruction", "make the background blue");
  f.append("steps", String(steps));
  const t = performance.now();
  const r = await fetch(`${s.url}/v1/jobs`, { method: "POST", body: f });
  return { id: ((await r.json()) as { id: string }).id, t };
};

/** Arrival times of every event id on one listener. */
async function listen(id: string, previews: boolean, first?: (ms: number) => void): Promise<Map<string, number>> {
  const res = await fetch(`${s.url}/v1/jobs/${id}/events${previews ? "?previews=1" : ""}`);
  const seen = new Map<string, number>();
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return seen;
    buf += value;
    for (const m of buf.matchAll(/^id: (\d+)$/gm)) {
      if (!seen.has(m[1])) {
        seen.set(m[1], performance.now());
        if (seen.size === 1) first?.(performance.now());
      }
    }
    buf = buf.slice(buf.lastIndexOf("\n") + 1);
  }
}

// warm-up, then the time to the first event of a fresh job on an idle server
await listen((await submit()).id, false);
const firsts: number[] = [];
for (let r = 0; r < 5; r++) {
  const { id, t } = await submit();
  await listen(id, false, (ms) => firsts.push(ms - t));
}
const rss0 = process.memoryUsage().rss;
const { id } = await submit();
let peak = rss0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const all = await Promise.all(Array.from({ length: listeners }, () => listen(id, true)));
clearInterval(sampler);
const spreads: number[] = [];
for (const eid of all[0].keys()) {
  const times = all.map((m) => m.get(eid)).filter((x): x is number => x !== undefined);
  if (times.length === all.length) spreads.push(Math.max(...times) - Math.min(...times));
}
spreads.sort((a, b) => a - b);
const sorted = [...firsts].sort((a, b) => a - b);
console.log(
  JSON.stringify(
    {
      first_event_ms_median: sorted[Math.floor(sorted.length / 2)],
      first_event_ms: firsts.map((x) => Math.round(x * 10) / 10),
      listeners,
      events_per_listener: all[0].size,
      spread_ms_median: spreads[Math.floor(spreads.length / 2)],
      spread_ms_p95: spreads[Math.floor(spreads.length * 0.95)],
      rss_mb_before: Math.round(rss0 / 2 ** 20),
      rss_mb_peak: Math.round(peak / 2 ** 20),
    },
    null,
    2,
  ),
);
await s.stop();
