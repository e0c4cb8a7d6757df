/**
 * Tiled against whole VAE (issue 33) on the bundled editor, whose 64 px working size is tiled
 * with 16 and 32 px tiles (a 512 px SD edit in 128 and 256 px tiles, scaled): the decoder output's
 * PSNR against the whole decode on the detail benchmark's scenes, and the held-out suite's
 * following and preservation with each setting.
 *
 *   node dist/benchmarks/evaluation/vae-tiling.js [limit]
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { type EditOptions, edit, loadModel } from "../../editor/index.js";
import { loadSyntheticSuite } from "../../src/benchmark/synthetic-suite.js";
import { BUNDLED_MODEL, ROOT } from "../../src/paths.js";
import { type EvalSettings, evaluateSynthetic } from "./evaluate-synthetic.js";
import { texturedScene } from "./detail.js";

const TILES = [0, 32, 16];

function psnr(a: Float32Array, b: Float32Array): number {
  let mse = 0;
  for (let i = 0; i < a.length; i++) mse += ((Math.min(1, Math.max(-1, a[i])) - Math.min(1, Math.max(-1, b[i]))) / 2) ** 2;
  return 10 * Math.log10(1 / (mse / a.length));
}

const tiling = (tile: number): Partial<EditOptions> => (tile === 0 ? { vaeTiling: "off" } : { vaeTiling: "on", vaeTile: tile });

export async function runTilingEval(limit = 200) {
  const heldout = path.join(ROOT, "models", "heldout");
  const model = await loadModel(BUNDLED_MODEL, { intraOpThreads: 2, interOpThreads: 1 });
  try {
    const scenes = readFileSync(path.join(heldout, "scenes.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { id: string; kind: string; instruction: string });
    const kinds = ["recolour", "background", "remove", "add"];
    const detailScenes = kinds.flatMap((k) => scenes.filter((s) => s.kind === k).slice(0, 4));
    const decodePsnr: Record<number, number[]> = Object.fromEntries(TILES.slice(1).map((t) => [t, []]));
    for (const sc of detailScenes) {
      const { png } = await texturedScene(sc.id, 512);
      const outs: Float32Array[] = [];
      for (const t of TILES) outs.push((await edit(model, { image: png, instruction: sc.instruction, seed: 11, keepDecoded: true, encodeCache: null, ...tiling(t) })).decoded!.data);
      TILES.slice(1).forEach((t, i) => decodePsnr[t].push(psnr(outs[0], outs[i + 1])));
    }
    const suite = await loadSyntheticSuite(heldout, limit);
    const quality = [];
    for (const t of TILES) {
      const r = await evaluateSynthetic(model, suite, { seed: 0, sampling: { ...tiling(t), encodeCache: null } as EvalSettings["sampling"] });
      quality.push({ tile: t, following: r.overall.following, preservationError: r.overall.preservationError, n: r.overall.n });
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    return {
      decode: TILES.slice(1).map((t) => ({ tile: t, scenes: decodePsnr[t].length, psnrMeanDb: mean(decodePsnr[t]), psnrMinDb: Math.min(...decodePsnr[t]) })),
      quality,
    };
  } finally {
    await model.dispose();
  }
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  process.stdout.write(JSON.stringify(await runTilingEval(process.argv[2] ? Number(process.argv[2]) : undefined), null, 1) + "\n");
}
