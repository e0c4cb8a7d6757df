/**
 * `npm run bench:hub -- CHECKPOINT_DIR`: what a folder pull costs, on the loopback Hub (no network
 * here): a diffusers checkpoint folder served as a repository with the decoys a published one
 * holds (a safety checker, single-file copies at the root, a second weight format), pulled into a
 * fresh cache. Reports bytes requested against bytes needed, the pull's time and rate (transfer +
 * sha256 check + cache links), and a cached re-pull's time; with --convert, the conversion too.
 * Not a test: figures for docs/real-models.md.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { hubEnv } from "../src/hub/index.js";
import { pullModel, pullSnapshot } from "../src/pull/model.js";
import { peakRssGb } from "./perf/peak-rss.js";
import { HubServer, filesOf, hubFile } from "../test/support/hub-server.js";

async function main(): Promise<void> {
  const src = process.argv[2];
  const convert = process.argv.includes("--convert");
  if (!src) throw new Error("usage: hub-pull.js CHECKPOINT_DIR [--convert]");
  const hub = new HubServer();
  hub.pageSize = 50;
  const files = filesOf(src);
  const folderBytes = [...files.values()].reduce((s, f) => s + f.size, 0);
  // decoys the size of what a published editor repository carries beside its folders; listed with
  // their sizes but never materialised (a request for one is counted by name below)
  const decoy = (n: number, seed: string) => ({ ...hubFile(Buffer.from(seed), true), size: n });
  const unet = files.get("unet/diffusion_pytorch_model.safetensors")?.size ?? 0;
  const decoys = new Map([
    ["safety_checker/model.safetensors", decoy(Math.round(folderBytes * 0.28), "a")],
    ["v1-single-file.safetensors", decoy(folderBytes, "b")],
    ["v1-single-file.ckpt", decoy(folderBytes, "c")],
    ["unet/diffusion_pytorch_model.fp16.safetensors", decoy(Math.round(unet / 2), "d")],
  ]);
  for (const [k, v] of decoys) files.set(k, v);
  const total = [...files.values()].reduce((s, f) => s + f.size, 0);
  hub.add({ type: "model", name: "bench/editor", files });
  const url = await hub.start();
  const root = mkdtempSync(path.join(os.tmpdir(), "bench-hub-"));
  const env = hubEnv({ HF_ENDPOINT: url, HF_HUB_CACHE: path.join(root, "hub"), HF_HOME: path.join(root, "home") });
  try {
    let t0 = performance.now();
    const snap = await pullSnapshot({ repo: "bench/editor", env });
    const pullS = (performance.now() - t0) / 1000;
    const needed = snap.files.reduce((s, f) => s + files.get(f)!.size, 0);
    const requested = hub.transfers().reduce((s, t) => s + t.sent, 0);
    const before = hub.log.length;
    t0 = performance.now();
    await pullSnapshot({ repo: "bench/editor", env });
    const repullMs = performance.now() - t0;
    const report: Record<string, unknown> = {
      repository_bytes: total,
      needed_bytes: needed,
      requested_bytes: requested,
      decoy_files_requested: hub.transfers().filter((t) => decoys.has(t.file!)).length,
      pull_s: Number(pullS.toFixed(2)),
      pull_mb_per_s: Number((needed / 1e6 / pullS).toFixed(1)),
      cached_repull_ms: Number(repullMs.toFixed(1)),
      cached_repull_requests: hub.log.length - before,
      cached_repull_file_requests: hub.log.slice(before).filter((r) => r.file !== undefined).length,
    };
    if (convert) {
      process.env.REWARD_EDIT_CACHE = path.join(root, "reward-edit");
      t0 = performance.now();
      const r = await pullModel({ repo: "bench/editor", env, converterOutput: "stderr" });
      report.convert_s = Number(((performance.now() - t0) / 1000).toFixed(1));
      t0 = performance.now();
      const again = await pullModel({ repo: "bench/editor", env });
      report.second_pull_model_ms = Number((performance.now() - t0).toFixed(1));
      report.second_pull_converted = again.converted;
      report.folder = r.dir;
    }
    report.bench_peak_rss_gb = Number(peakRssGb().toFixed(2));
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await hub.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
