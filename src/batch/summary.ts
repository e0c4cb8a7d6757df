/**
 * OUTDIR/summary.jsonl: one line per photo, appended as each finishes, so a killed batch resumes
 * where it stopped: a row with a line is never edited again.
 */
import { appendFile, readFile } from "node:fs/promises";
import type { Rewards } from "../../editor/index.js";
import type { ScoreResult } from "../../reward/index.js";

export interface SummaryRow {
  row: number;
  input: string;
  output?: string;
  instruction: string;
  settings?: {
    rewards: Rewards | null;
    preset: string | null;
    steps: number;
    text_guidance: number;
    image_guidance: number;
    seed: number;
    scheduler: string;
    mask: string | null;
    /** With an auto mask: whether it confined the edit, why, and the share it covered. */
    auto_mask?: { applied: boolean; reason: string; coverage: number };
    model: string;
  };
  scores?: Record<string, number | null>;
  /** Share of the photo's pixels returned exactly as they were. */
  kept_fraction?: number | null;
  ms: number;
  error?: string;
}

/** Rows already recorded (a torn last line from a kill is ignored: that photo runs again). */
export async function readSummary(file: string): Promise<SummaryRow[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return [];
  }
  const rows: SummaryRow[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line) as SummaryRow);
    } catch {
      // the line a kill cut short
    }
  }
  return rows;
}

export function scoreCells(s: ScoreResult | null): Record<string, number | null> {
  if (!s) return {};
  return Object.fromEntries(Object.entries(s.perspectives).map(([p, r]) => [p, r.status === "scored" && r.score !== undefined ? r.score : null]));
}

/** One line per call, written whole (a line is far under the size the OS appends atomically). */
export async function appendSummary(file: string, row: SummaryRow): Promise<void> {
  await appendFile(file, `${JSON.stringify(row)}\n`);
}
