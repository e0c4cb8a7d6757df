/**
 * Catalogue batches (issue 21), measured as a user runs them:
 *   1. 50 photos (47 held-out scenes + 3 broken files) in one `reward-edit batch`: results and
 *      error rows counted;
 *   2. the same folder again, killed (SIGKILL) half-way and restarted: every row once;
 *   3. the same 47 edits one by one with `reward-edit edit` (a process each, as a shell loop
 *      would): the throughput ratio.
 * Writes bench-results/batch.json and batch.md.
 *
 *   node dist/benchmarks/perf/batch.js [--photos 47] [--steps 20]
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../../src/paths.js";

const CLI = path.join(ROOT, "bin", "reward-edit.js");
const SCENES = path.join(ROOT, "models", "heldout-v2", "scenes");

function run(args: string[], killWhen?: () => boolean): Promise<{ code: number | null; ms: number; killed: boolean }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "ignore", "ignore"] });
    let killed = false;
    const timer = killWhen
      ? setInterval(() => {
          if (!killed && killWhen()) {
            killed = true;
            child.kill("SIGKILL");
          }
        }, 20)
      : undefined;
    child.on("error", reject);
    child.on("exit", (code) => {
      if (timer) clearInterval(timer);
      resolve({ code, ms: performance.now() - t0, killed });
    });
  });
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l.trim()) : []);

export async function runBatchBench(values: { photos: string; steps: string }): Promise<string> {
  const n = Number(values.photos);
  const dir = mkdtempSync(path.join(os.tmpdir(), "reward-edit-batch-bench-"));
  const input = path.join(dir, "photos");
  mkdirSync(input);
  for (let i = 0; i < n; i++) copyFileSync(path.join(SCENES, `syn-${String(i).padStart(4, "0")}-source.png`), path.join(input, `p${String(i).padStart(3, "0")}.png`));
  for (const b of ["broken-1.png", "broken-2.jpg", "broken-3.webp"]) writeFileSync(path.join(input, b), "not a photo");
  const instruction = "make it black and white";
  const common = ["--instruction", instruction, "--steps", values.steps, "--seed", "0"];

  // 1. one batch
  const outA = path.join(dir, "batch");
  const a = await run(["batch", "--input", input, "--out", outA, ...common]);
  const rowsA = lines(path.join(outA, "summary.jsonl")).map((l) => JSON.parse(l) as { row: number; error?: string });

  // 2. killed half-way, then resumed
  const outB = path.join(dir, "resumed");
  const total = n + 3;
  const killedRun = await run(["batch", "--input", input, "--out", outB, ...common], () => lines(path.join(outB, "summary.jsonl")).length >= total / 2);
  const afterKill = lines(path.join(outB, "summary.jsonl")).length;
  const resumed = await run(["batch", "--input", input, "--out", outB, ...common]);
  const rowsB = lines(path.join(outB, "summary.jsonl")).map((l) => JSON.parse(l) as { row: number });
  const unique = new Set(rowsB.map((r) => r.row)).size;

  // 3. the same edits one by one, a CLI process each
  const outC = path.join(dir, "one-by-one");
  mkdirSync(outC);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const name = `p${String(i).padStart(3, "0")}.png`;
    await run(["edit", "--image", path.join(input, name), "--out", path.join(outC, name), "--instruction", instruction, "--steps", values.steps, "--seed", String(i + 3)]);
  }
  const oneByOneMs = performance.now() - t0;

  const result = {
    photos: n,
    broken: 3,
    steps: Number(values.steps),
    batch: { ms: a.ms, exit: a.code, results: rowsA.filter((r) => !r.error).length, errors: rowsA.filter((r) => r.error).length },
    resume: { killed: killedRun.killed, rows_when_killed: afterKill, rows_after: rowsB.length, unique_rows: unique, exit: resumed.code },
    one_by_one: { ms: oneByOneMs },
    speedup: oneByOneMs / a.ms,
    cores: os.availableParallelism(),
  };
  const out = path.join(ROOT, "bench-results");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, "batch.json"), JSON.stringify(result, null, 2));
  const md = [
    `### Catalogue batch: ${n} photos + 3 broken files, ${values.steps} steps, bundled editor, ${result.cores} cores`,
    "",
    "| run | wall time | result |",
    "| --- | --- | --- |",
    `| \`reward-edit batch\` (worker pool, auto layout) | ${(a.ms / 1000).toFixed(1)} s | ${result.batch.results} results, ${result.batch.errors} error rows, exit ${a.code} |`,
    `| killed at ${afterKill} of ${total} rows, then resumed | ${(resumed.ms / 1000).toFixed(1)} s for the rest | ${rowsB.length} rows, ${unique} distinct (none twice: ${rowsB.length === unique}) |`,
    `| the same ${n} edits one by one, \`reward-edit edit\` per photo | ${(oneByOneMs / 1000).toFixed(1)} s | throughput ratio ${result.speedup.toFixed(2)}x for the batch |`,
    "",
  ].join("\n");
  writeFileSync(path.join(out, "batch.md"), md);
  return md;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { photos: { type: "string", default: "47" }, steps: { type: "string", default: "20" } } });
  process.stdout.write(await runBatchBench({ photos: values.photos!, steps: values.steps }));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
