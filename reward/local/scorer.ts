/**
 * The embedded offline scorer (no network; the default when no judge is configured).
 * On a real photo it can measure change and image quality, but it cannot know whether the
 * instruction was followed: it says so instead of guessing. On a synthetic scene whose truth is
 * known it scores all three perspectives exactly.
 */
import type { EditToScore, PerspectiveResult, ScoreResult, Scorer } from "../types.js";
import { type ChangeMap, changeMap, heatMapPng } from "../../raster/change-map.js";
import { decodeMask, resizeMask } from "../../raster/mask.js";
import { qualityFigure, qualityMeasures } from "./quality.js";
import { decodeRaster } from "./raster.js";
import { type Palette, type SyntheticCase, type SyntheticScore, scoreSynthetic } from "./synthetic.js";

export const LOCAL_VERSION = "local-v1";

const scored = (score: number, reason: string, extra: Partial<PerspectiveResult> = {}): PerspectiveResult => ({
  status: "scored",
  score: Math.round(score * 100) / 100,
  spread: 0,
  reason,
  passes: [{ score, latencyMs: 0, attempts: 1 }],
  ...extra,
});

export interface LocalScoreExtras {
  changeMap: ChangeMap;
  heatMap: () => Promise<Buffer>;
}

/**
 * Pixels the mask keeps (under half white) and that are not next to one it lets change: the
 * change map is smoothed over 3x3, so an edit that stops at the mask's edge shows one pixel past it.
 */
async function outsideMask(mask: Buffer, width: number, height: number): Promise<Uint8Array> {
  const m = await resizeMask(await decodeMask(mask), width, height);
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      let keep = 1;
      for (let dy = -1; dy <= 1 && keep; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = Math.min(height - 1, Math.max(0, y + dy));
          const xx = Math.min(width - 1, Math.max(0, x + dx));
          if (m[yy * width + xx] >= 128) {
            keep = 0;
            break;
          }
        }
      out[y * width + x] = keep;
    }
  return out;
}

function changedOutside(changed: Uint8Array, outside: Uint8Array): number {
  let n = 0;
  let c = 0;
  for (let i = 0; i < outside.length; i++) if (outside[i]) (n++, changed[i] && c++);
  return n ? c / n : 0;
}

export class LocalScorer implements Scorer {
  readonly name = "local";

  async scoreWithMap(input: EditToScore, synthetic?: { case: SyntheticCase; palette: Palette }): Promise<ScoreResult & LocalScoreExtras> {
    const t0 = performance.now();
    const source = await decodeRaster(input.source);
    const edited = await decodeRaster(input.edited, { width: source.width, height: source.height });
    const map = changeMap(source, edited);
    const outside = input.mask ? await outsideMask(input.mask, source.width, source.height) : null;
    const q = qualityMeasures(edited);
    const changedPct = (100 * map.changedFraction).toFixed(1);
    let perspectives: ScoreResult["perspectives"];
    let truth: SyntheticScore | undefined;
    if (synthetic) {
      const s = (truth = scoreSynthetic(synthetic.case, edited, synthetic.palette));
      perspectives = {
        following: scored(s.following ? 5 : 0, `exact: the scene ${s.following ? "shows" : "does not show"} the requested change`, { yesRate: s.following ? 1 : 0 }),
        preserving:
          s.preservationError === null
            ? { status: "not_judged", reason: "global edit: nothing lies outside the instruction's region", passes: [] }
            : scored(5 * (1 - Math.min(1, s.preservationError / 0.2)), `exact: mean change outside the region ${s.preservationError.toFixed(3)}`),
        quality: scored(5 * (1 - Math.min(1, s.qualityError / 0.3)), `exact: mean error to the true target ${s.qualityError.toFixed(3)}`),
      };
    } else {
      const sourceQ = qualityMeasures(source);
      perspectives = {
        following: { status: "not_judged", reason: "the local scorer cannot tell whether a real photo follows an instruction; configure a judge", passes: [] },
        preserving: outside
          ? scored(5 * (1 - changedOutside(map.mask, outside)), `model-free: ${(100 * changedOutside(map.mask, outside)).toFixed(1)} % of the image outside the mask changed`)
          : scored(5 * (1 - map.changedFraction), `model-free: ${changedPct} % of the image changed in ${map.boxes.length} region(s); requested and collateral change are not told apart`),
        quality: scored(
          qualityFigure(q, sourceQ),
          `noise ${q.noiseSigma.toFixed(3)}, blockiness ${q.blockiness.toFixed(2)}, sharpness ${q.laplacianVariance.toExponential(2)} (source ${sourceQ.laplacianVariance.toExponential(2)})`,
        ),
      };
    }
    return {
      backend: "local",
      protocol: synthetic ? "synthetic-exact" : "local",
      promptVersion: LOCAL_VERSION,
      model: "local",
      passes: 1,
      perspectives,
      latencyMs: performance.now() - t0,
      cached: false,
      measures: { changedFraction: map.changedFraction, boxes: map.boxes.slice(0, 20), ...q, ...(truth ? { truth } : {}) },
      changeMap: map,
      heatMap: () => heatMapPng(edited, map),
    };
  }

  async score(input: EditToScore): Promise<ScoreResult> {
    const { changeMap: _m, heatMap: _h, ...rest } = await this.scoreWithMap(input);
    return rest;
  }
}
