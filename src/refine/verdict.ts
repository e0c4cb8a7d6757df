/**
 * What a scorer's answer says about one round: which perspectives fall short of the levels the
 * user asked for, and why (the scorer's own reason). Perspectives the scorer could not judge
 * (the local scorer on a photo cannot judge following) are neither met nor failed: refinement
 * can only act on what was judged.
 */
import { PERSPECTIVES, type Perspective, type ScoreResult } from "../../reward/index.js";
import type { Rewards } from "../../editor/index.js";

export type PerspectiveVerdict =
  | { perspective: Perspective; judged: false; reason: string }
  | { perspective: Perspective; judged: true; met: boolean; score: number; need: number; reason: string };

export interface Verdict {
  perspectives: Record<Perspective, PerspectiveVerdict>;
  /** Every judged perspective meets its level (vacuously true when nothing was judged). */
  met: boolean;
  /** Mean of the judged scores, following counted twice: what the best round is chosen by. */
  merit: number;
}

/** A level L is met by a score of at least L - 1.5: 5 asks for 3.5, the middle of "good". */
export const needFor = (level: number) => Math.max(0, level - 1.5);

export function verdictOf(score: ScoreResult, levels: Rewards): Verdict {
  const out = {} as Record<Perspective, PerspectiveVerdict>;
  let sum = 0;
  let weight = 0;
  PERSPECTIVES.forEach((p, i) => {
    const r = score.perspectives[p];
    if (r.status !== "scored" || r.score === undefined) {
      out[p] = { perspective: p, judged: false, reason: r.reason ?? r.status };
      return;
    }
    // a yes/no answer, where the judge gave one, is the sharper signal for following
    const value = p === "following" && r.yesRate !== undefined ? 5 * r.yesRate : r.score;
    const need = needFor(levels[i]);
    out[p] = { perspective: p, judged: true, met: value >= need, score: value, need, reason: r.reason ?? "" };
    const w = p === "following" ? 2 : 1;
    sum += w * value;
    weight += w;
  });
  const judged = Object.values(out).filter((v) => v.judged);
  return {
    perspectives: out,
    met: judged.every((v) => v.judged && v.met),
    merit: weight ? sum / weight : 0,
  };
}

export const failed = (v: Verdict): Perspective[] =>
  PERSPECTIVES.filter((p) => {
    const x = v.perspectives[p];
    return x.judged && !x.met;
  });
