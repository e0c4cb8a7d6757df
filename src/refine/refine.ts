/**
 * Refinement (issue 16): edit, ask the scorer what went wrong, edit again with settings chosen
 * from that verdict, until every judged perspective meets its level or the rounds run out; the
 * best round by the scorer is returned with every round's image, scores and changes.
 *
 * Where an edit runs is the caller's business (`runEdit`): in-process for the CLI and bench,
 * through the worker for the server.
 */
import type { Rewards } from "../../editor/index.js";
import type { ScoreResult, Scorer } from "../../reward/index.js";
import { DEFAULT_STRATEGY, type RoundSettings, type Strategy, nextRound } from "./plan.js";
import { type Verdict, verdictOf } from "./verdict.js";

export const MAX_ROUNDS = 8;

export interface Round {
  round: number;
  image: Buffer;
  settings: RoundSettings;
  /** What this round changed from the one before, and why (empty for round 1). */
  changes: string[];
  score: ScoreResult;
  verdict: Verdict;
  editMs: number;
  scoreMs: number;
}

export interface RefineResult {
  rounds: Round[];
  /** Index into rounds of the best round by the scorer. */
  best: number;
  stopped: "met" | "rounds";
}

export interface RefineRequest {
  source: Buffer;
  instruction: string;
  /** The edit's mask, if it had one: the scorer judges preservation outside it. */
  mask?: Buffer;
  rewards: Rewards;
  textGuidance: number;
  imageGuidance: number;
  seed: number;
  rounds: number;
  strategy?: Partial<Strategy>;
  signal?: AbortSignal;
  onRound?: (r: Round) => void;
}

export type RunEdit = (settings: RoundSettings, image: Buffer) => Promise<Buffer>;

export async function refine(req: RefineRequest, runEdit: RunEdit, scorer: Scorer): Promise<RefineResult> {
  if (!Number.isInteger(req.rounds) || req.rounds < 1 || req.rounds > MAX_ROUNDS) {
    throw new RangeError(`rounds must be an integer 1..${MAX_ROUNDS}, got ${req.rounds}`);
  }
  const strategy = { ...DEFAULT_STRATEGY, ...req.strategy };
  const first: RoundSettings = {
    instruction: req.instruction,
    rewards: req.rewards,
    textGuidance: req.textGuidance,
    imageGuidance: req.imageGuidance,
    seed: req.seed,
    from: "source",
  };
  const rounds: Round[] = [];
  let settings = first;
  let changes: string[] = [];
  for (let k = 0; k < req.rounds; k++) {
    req.signal?.throwIfAborted();
    const input = settings.from === "last" && rounds.length ? rounds[rounds.length - 1].image : req.source;
    const t0 = performance.now();
    const image = await runEdit(settings, input);
    const t1 = performance.now();
    // always judged against the user's source: "last" rounds must still preserve what the user gave
    const score = await scorer.score({ source: req.source, edited: image, instruction: req.instruction, mask: req.mask });
    const round: Round = {
      round: k + 1,
      image,
      settings,
      changes,
      score,
      verdict: verdictOf(score, req.rewards),
      editMs: t1 - t0,
      scoreMs: performance.now() - t1,
    };
    rounds.push(round);
    req.onRound?.(round);
    if (round.verdict.met) break;
    if (k + 1 < req.rounds) ({ settings, changes } = nextRound(settings, round.verdict, k + 1, first, strategy));
  }
  let best = 0;
  rounds.forEach((r, i) => {
    if (r.verdict.merit > rounds[best].verdict.merit) best = i;
  });
  return { rounds, best, stopped: rounds[rounds.length - 1].verdict.met ? "met" : "rounds" };
}
