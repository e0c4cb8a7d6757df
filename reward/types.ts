/** What every scorer returns, judge or local (DESIGN.md 5). */
export const PERSPECTIVES = ["following", "preserving", "quality"] as const;
export type Perspective = (typeof PERSPECTIVES)[number];

export interface EditToScore {
  source: Buffer;
  edited: Buffer;
  instruction: string;
  /** Where the edit was allowed (white = may change, any size): preservation is judged outside it. */
  mask?: Buffer;
}

/** One reply of one pass. `score` is absent unless the judge really gave one. */
export interface PassResult {
  score?: number;
  /** VIEScore: the sub-scores of one reply, as the judge gave them (0..10). */
  scores?: number[];
  yes?: boolean;
  reasoning?: string;
  raw?: string;
  latencyMs: number;
  attempts: number;
}

export type PerspectiveStatus = "scored" | "unscored" | "refused" | "not_judged";

export interface PerspectiveResult {
  status: PerspectiveStatus;
  /** Mean over the passes that gave a score. */
  score?: number;
  /** Standard deviation over those passes. */
  spread?: number;
  /** Share of passes answering yes (following is reported as % yes). */
  yesRate?: number;
  reason?: string;
  passes: PassResult[];
}

export interface ScoreResult {
  backend: "judge" | "local";
  protocol: string;
  promptVersion: string;
  model: string;
  passes: number;
  perspectives: Record<Perspective, PerspectiveResult>;
  latencyMs: number;
  cached: boolean;
  /** Local scorer only: measures behind its figures. */
  measures?: Record<string, unknown>;
  /** VIEScore protocol only: its own figures on its own 0..10 scale. */
  viescore?: VieScoreResult;
  /** Judge only: who judged, pinned well enough to tell two judges apart (issue 39). */
  judge?: JudgeRecord;
  /** Judge only: tokens the endpoint reported for this result (0 when answered from the cache). */
  usage?: TokenUsage;
}

/**
 * What identifies a judge. `answeredModel` is the id the API answered with (a dated snapshot
 * behind an alias such as `gpt-4o`); several distinct ones are joined by ", ".
 */
export interface JudgeRecord {
  host: string;
  model: string;
  answeredModel?: string;
  temperature?: number;
  seed?: number;
  maxTokens?: number;
  /** sha256 (hex) of the protocol's prompt templates, mask note included. */
  promptHash: string;
  protocol: string;
  protocolVersion: string;
  /** With --judge-repeats K: how many times each edit was judged. */
  repeats?: number;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** One VIEScore question (SC or PQ): the minimum of its sub-scores, averaged over the passes. */
export interface VieScorePart {
  status: PerspectiveStatus;
  score?: number;
  /** Each usable pass's sub-scores (SC: editing success, over-editing; PQ: naturalness, artifacts). */
  lists: number[][];
  reason?: string;
  /** The replies, kept only when no usable answer came. */
  raw?: string;
}

export interface VieScoreResult {
  sc: VieScorePart;
  pq: VieScorePart;
  /** sqrt(SC * PQ), only when both were scored. */
  o?: number;
}

export interface Scorer {
  readonly name: string;
  score(input: EditToScore): Promise<ScoreResult>;
}

export function summarise(passes: PassResult[], refused: boolean): PerspectiveResult {
  const scores = passes.map((p) => p.score).filter((s): s is number => s !== undefined);
  const answers = passes.map((p) => p.yes).filter((y): y is boolean => y !== undefined);
  if (scores.length === 0 && answers.length === 0) {
    return { status: refused ? "refused" : "unscored", passes, reason: passes[0]?.raw?.slice(0, 500) };
  }
  const mean = scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : undefined;
  const spread = mean === undefined ? undefined : Math.sqrt(scores.reduce((a, s) => a + (s - mean) ** 2, 0) / scores.length);
  return {
    status: "scored",
    score: mean,
    spread,
    yesRate: answers.length ? answers.filter(Boolean).length / answers.length : undefined,
    reason: passes.find((p) => p.reasoning)?.reasoning,
    passes,
  };
}
