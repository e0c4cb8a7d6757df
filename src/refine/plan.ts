/**
 * The next round's settings from the last round's verdict. Each rule answers one failed
 * perspective with the knob that moves it (the sliders' and guidance scales' measured
 * directions, models/README.md): following -> more text guidance, less image guidance;
 * preserving -> more image guidance and the preservation level raised; quality -> the quality
 * level raised. Every round also takes a new seed, so a round that changes nothing else is
 * still a fresh draw.
 */
import type { Rewards } from "../../editor/index.js";
import { type Verdict, failed } from "./verdict.js";

export interface RoundSettings {
  instruction: string;
  rewards: Rewards;
  textGuidance: number;
  imageGuidance: number;
  seed: number;
  /** Feedback text for models with a feedback input; undefined = the model's default. */
  feedback?: string;
  /** What the round edits: the user's source, or the previous round's result. */
  from: "source" | "last";
}

export interface Strategy {
  /** Move the guidance scales by the verdict (off: only the seed changes, i.e. best-of-N with early stop). */
  guidance: boolean;
  /** Edit the previous result instead of the source when following failed. */
  fromLast: boolean;
  /** Pass the model the failure notes it was trained with (see the bench: it does not help the bundled model). */
  feedback: boolean;
}

// from-last is the only variant that beat best-of-N on following at equal compute (models/README.md)
export const DEFAULT_STRATEGY: Strategy = { guidance: true, fromLast: true, feedback: false };

const TEXT_MAX = 12;
const IMAGE_MIN = 1;
const IMAGE_MAX = 4;
// far from the first seed's stream, so rounds do not repeat best-of-N's seeds
const SEED_STRIDE = 7919;

/** The bundled world's failure notes (models/train/scenes.py FEEDBACK), one per perspective. */
const NOTES = { following: "the edit is only half done", preserving: "the background changed", quality: "there are blotches" };

const fmt = (x: number) => (Math.round(x * 100) / 100).toString();

export function nextRound(
  last: RoundSettings,
  verdict: Verdict,
  round: number,
  first: RoundSettings,
  strategy: Strategy = DEFAULT_STRATEGY,
): { settings: RoundSettings; changes: string[] } {
  const s: RoundSettings = { ...last, rewards: [...last.rewards] as Rewards, seed: (first.seed + SEED_STRIDE * round) >>> 0, from: "source" };
  const changes = [`seed ${last.seed} -> ${s.seed}`];
  const bad = failed(verdict);
  const why = (p: keyof Verdict["perspectives"]) => {
    const v = verdict.perspectives[p];
    return v.judged ? `${p} ${fmt(v.score)} < ${fmt(v.need)}${v.reason ? ` ("${v.reason.slice(0, 120)}")` : ""}` : p;
  };
  if (strategy.guidance && bad.includes("following")) {
    // additive as well as multiplicative, so a scale of 0 (instruction ignored) can recover
    s.textGuidance = Math.min(TEXT_MAX, Math.max(last.textGuidance * 1.5, last.textGuidance + 1.5));
    changes.push(`text guidance ${fmt(last.textGuidance)} -> ${fmt(s.textGuidance)} (${why("following")})`);
    if (!bad.includes("preserving")) {
      s.imageGuidance = Math.max(IMAGE_MIN, last.imageGuidance * 0.85);
      if (s.imageGuidance !== last.imageGuidance) changes.push(`image guidance ${fmt(last.imageGuidance)} -> ${fmt(s.imageGuidance)}`);
    }
    if (strategy.fromLast) {
      s.from = "last";
      changes.push("edits the previous result (a half-done edit is carried further)");
    }
  }
  if (strategy.guidance && bad.includes("preserving")) {
    if (!bad.includes("following")) {
      s.imageGuidance = Math.min(IMAGE_MAX, last.imageGuidance * 1.3);
      changes.push(`image guidance ${fmt(last.imageGuidance)} -> ${fmt(s.imageGuidance)} (${why("preserving")})`);
    }
    if (s.rewards[1] < 5) {
      s.rewards[1] = 5;
      changes.push(`preserving level ${last.rewards[1]} -> 5`);
    }
  }
  if (bad.includes("quality") && s.rewards[2] < 5) {
    s.rewards[2] = 5;
    changes.push(`quality level ${last.rewards[2]} -> 5 (${why("quality")})`);
  }
  if (strategy.feedback && bad.length) {
    s.feedback = (["following", "preserving", "quality"] as const).map((p) => (bad.includes(p) ? NOTES[p] : "None")).join("; ");
    changes.push(`feedback "${s.feedback}"`);
  }
  return { settings: s, changes };
}
