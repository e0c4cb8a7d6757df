/** Reward scoring as a library: a VLM judge or the embedded local scorer behind one Scorer interface. */
export * from "./types.js";
export { JudgeScorer } from "./judge/judge.js";
export type { RankResult } from "./judge/judge.js";
export { judgeConfigFrom, parsePrice, redacted, PROTOCOLS, SCORING_PROTOCOLS } from "./judge/config.js";
export type { JudgeConfig, Protocol, ScoringProtocol } from "./judge/config.js";
export { parseReply, parseScoreList } from "./judge/parse.js";
export { LocalScorer, LOCAL_VERSION } from "./local/scorer.js";
export { changeMap, heatMapPng } from "../raster/change-map.js";
export { qualityMeasures, qualityFigure } from "./local/quality.js";
export { decodeRaster } from "./local/raster.js";
export { scoreSynthetic } from "./local/synthetic.js";
export type { Palette, SyntheticCase, SyntheticRecord } from "./local/synthetic.js";
