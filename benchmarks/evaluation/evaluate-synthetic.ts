/**
 * Ground-truth evaluation of an editor on held-out synthetic scenes (issue 3): per instruction
 * kind, following accuracy, preservation error outside the region, quality error inside it.
 */
import { readFileSync } from "node:fs";
import { type EditOptions, type EditorModel, type Rewards, edit } from "../../editor/index.js";
import { decodeRaster } from "../../reward/local/raster.js";
import { type SyntheticScore, scoreSynthetic } from "../../reward/local/synthetic.js";
import { type SyntheticSuite, sourceFile } from "../../src/benchmark/synthetic-suite.js";

export interface EvalSettings {
  rewards?: Rewards;
  seed: number;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
  /** Sampler and guidance-schedule options (the fast path), passed to edit() as they are. */
  sampling?: Pick<EditOptions, "scheduler" | "karrasSigmas" | "guidanceInterval" | "adaptiveGuidance" | "cacheInterval">;
  /** Keep each result's working-size pixels (for fidelity against a reference run). */
  keepPixels?: boolean;
}

export interface KindMetrics {
  n: number;
  following: number;
  preservationError: number | null;
  qualityError: number;
}

export interface EvalResult {
  settings: EvalSettings;
  perKind: Record<string, KindMetrics>;
  overall: KindMetrics;
  samples: Array<{ id: string; kind: string; unetEvaluations: number; shallowEvaluations: number; editMs: number; pixels?: Float32Array } & SyntheticScore>;
  /** Mean whole-UNet evaluations (batch entries) per edit, and shallow ones (DeepCache). */
  unetEvaluations: number;
  shallowEvaluations: number;
  /** Mean wall time per edit. */
  editMs: number;
}

function aggregate(rows: SyntheticScore[]): KindMetrics {
  const pres = rows.map((r) => r.preservationError).filter((v): v is number => v !== null);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    n: rows.length,
    following: rows.filter((r) => r.following).length / rows.length,
    preservationError: pres.length ? mean(pres) : null,
    qualityError: mean(rows.map((r) => r.qualityError)),
  };
}

export async function evaluateSynthetic(
  model: EditorModel,
  suite: SyntheticSuite,
  settings: EvalSettings,
  onSample?: (done: number, total: number) => void,
): Promise<EvalResult> {
  const samples: EvalResult["samples"] = [];
  for (const [i, c] of suite.cases.entries()) {
    const r = await edit(model, {
      image: readFileSync(sourceFile(suite, c.record.id)),
      instruction: c.record.instruction,
      rewards: settings.rewards,
      seed: settings.seed + i,
      steps: settings.steps,
      textGuidance: settings.textGuidance,
      imageGuidance: settings.imageGuidance,
      ...settings.sampling,
      workingSize: true,
    });
    const edited = await decodeRaster(r.image, { width: c.source.width, height: c.source.height });
    samples.push({
      id: c.record.id,
      kind: c.record.kind,
      unetEvaluations: r.timings.unetEvaluations,
      shallowEvaluations: r.timings.shallowEvaluations,
      editMs: r.timings.totalMs,
      pixels: settings.keepPixels ? edited.data : undefined,
      ...scoreSynthetic(c, edited, suite.palette),
    });
    onSample?.(i + 1, suite.cases.length);
  }
  const kinds = [...new Set(samples.map((s) => s.kind))].sort();
  return {
    settings,
    perKind: Object.fromEntries(kinds.map((k) => [k, aggregate(samples.filter((s) => s.kind === k))])),
    overall: aggregate(samples),
    samples,
    unetEvaluations: samples.reduce((a, x) => a + x.unetEvaluations, 0) / samples.length,
    shallowEvaluations: samples.reduce((a, x) => a + x.shallowEvaluations, 0) / samples.length,
    editMs: samples.reduce((a, x) => a + x.editMs, 0) / samples.length,
  };
}
