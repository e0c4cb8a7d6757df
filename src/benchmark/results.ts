/**
 * The append-only results file: one JSON line per finished (model, preset, seed, sample).
 * A killed run leaves at most one partial last line; reading ignores it and the next append
 * first cuts it off, so a resumed run has no duplicate and no lost row.
 */
import { appendFileSync, existsSync, readFileSync, truncateSync } from "node:fs";
import type { JudgeRecord, PerspectiveStatus, TokenUsage, VieScoreResult } from "../../reward/index.js";
import type { GeditInfo } from "./gedit-facts.js";
import type { Category } from "./suites.js";

export interface PerspectiveCell {
  status: PerspectiveStatus;
  score?: number;
  yes?: boolean;
  reason?: string;
  raw?: string;
}

/** One repeat's figures, as a row keeps them (no replies: those stay in the merged cells). */
export interface RepeatScores {
  following?: { status: string; score?: number; yes?: boolean };
  preserving?: { status: string; score?: number };
  quality?: { status: string; score?: number };
  /** VIEScore's figures on 0..10. */
  viescore?: { sc?: number; pq?: number; o?: number };
}

export interface ResultRow {
  key: string;
  sample: string;
  category: Category;
  /** GEdit-Bench rows: task type, language, whether in the intersection subset, the row's key. */
  gedit?: GeditInfo;
  instruction: string;
  image: string;
  model: string;
  preset: string;
  seed: number;
  /** refused: the editor's provider declined (content policy); missing: no edit delivered for the sample. */
  status: "ok" | "edit_failed" | "refused" | "missing";
  /** What the returned edit was made with (the model's defaults filled in; with --refine, its round's). */
  settings?: { rewards: [number, number, number] | null; steps: number; textGuidance: number; imageGuidance: number; seed: number };
  error?: string;
  edited?: string;
  scores?: { following: PerspectiveCell; preserving: PerspectiveCell; quality: PerspectiveCell };
  scorer?: { backend: string; protocol: string; version: string; model: string };
  /** With the VIEScore protocol: SC, PQ (0..10, each the minimum of its sub-scores, kept too) and O. */
  viescore?: VieScoreResult;
  /** Exact metrics for synthetic scenes. */
  truth?: { following: boolean; preservationError: number | null; qualityError: number };
  latency: { editMs: number; scoreMs: number };
  /** Who judged this row (judge backend only): host, model, answered snapshot, settings, prompt hash. */
  judge?: JudgeRecord;
  /** Judge tokens spent on this row, summed over passes, retries, repeats and refinement rounds. */
  judgeUsage?: TokenUsage;
  /** With --judge-repeats K > 1: each repeat's figures; `scores` then hold their mean. */
  repeats?: RepeatScores[];
  /**
   * Which editor made it. latencyMs and usage (as the provider sent it) for a remote editor, whose
   * attempts count its retried requests; a local edit's time is latency.editMs.
   */
  editor?: { kind: "local" | "openai" | "outputs"; name: string; latencyMs?: number; usage?: Record<string, unknown>; attempts?: number };
  /** With --sweep: the swept perspective and the level this row's edit requested. */
  sweep?: { perspective: "following" | "preserving" | "quality"; level: number };
  /** With --refine N: the rounds run, which one was returned, and what each round changed. */
  refine?: { rounds: number; best: number; stopped: "met" | "rounds"; changes: string[][]; merits: number[] };
}

export function readRows(file: string): ResultRow[] {
  if (!existsSync(file)) return [];
  const rows: ResultRow[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as ResultRow);
    } catch {
      // a line cut short by a kill: that sample is simply run again
    }
  }
  return rows;
}

export class ResultsFile {
  constructor(readonly file: string) {
    if (!existsSync(file)) return;
    const text = readFileSync(file, "utf8");
    const end = text.lastIndexOf("\n") + 1;
    if (end < text.length) truncateSync(file, Buffer.byteLength(text.slice(0, end)));
  }

  append(row: ResultRow): void {
    // one write per row: a kill can cut the line, never interleave two
    appendFileSync(this.file, JSON.stringify(row) + "\n");
  }
}
