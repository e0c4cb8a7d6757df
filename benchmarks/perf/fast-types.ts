/** The shapes of issue 20's fast-edit measurements, shared by the runner (fast.ts) and the report (fast-report.ts). */
import type { EvalSettings } from "../evaluation/evaluate-synthetic.js";
import type { Stat } from "../../src/stats.js";

/** A named way of running an edit: the numbers and the sampling options. */
export interface FastConfig {
  name: string;
  /** What it changes against the reference row, in words. */
  what: string;
  settings: Omit<EvalSettings, "seed" | "rewards" | "keepPixels">;
}

export interface QualityRow {
  name: string;
  what: string;
  following: number;
  preservationError: number | null;
  qualityError: number;
  unetEvaluations: number;
  shallowEvaluations: number;
  editMs: number;
  perKind: Record<string, number>;
  perSuite: Record<string, number>;
}

export interface FidelityRow {
  scheduler: string;
  name: string;
  psnr: Stat & { mean: number };
  unetEvaluations: number;
  shallowEvaluations: number;
}

/** What one edit cost, measured in a child process (so its peak RSS is that configuration's alone). */
export interface CostRow {
  model: string;
  config: string;
  settings: string;
  size: string;
  unetEvaluations: number;
  shallowEvaluations: number;
  wallS: Stat;
  componentS: Record<string, number>;
  peakRssGb: number;
}

export interface FastReport {
  date: string;
  threads: number;
  suites: Record<string, number>;
  fast: FastConfig["settings"];
  quality: QualityRow[];
  fidelityScenes: number;
  fidelity: FidelityRow[];
  cost: CostRow[];
}
