/** Refinement: the scorer's verdict drives the next edit (issue 16). */
export { refine, MAX_ROUNDS } from "./refine.js";
export type { RefineRequest, RefineResult, Round, RunEdit } from "./refine.js";
export { nextRound, DEFAULT_STRATEGY } from "./plan.js";
export type { RoundSettings, Strategy } from "./plan.js";
export { verdictOf, needFor, failed } from "./verdict.js";
export type { Verdict, PerspectiveVerdict } from "./verdict.js";
export { exactScorer } from "./scorers.js";
