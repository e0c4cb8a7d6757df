/** Scorers a refinement loop can use besides a judge. */
import { LocalScorer, type Palette, type ScoreResult, type Scorer, type SyntheticCase } from "../../reward/index.js";

/** The local scorer with a synthetic scene's truth: exact on all three perspectives. */
export function exactScorer(local: LocalScorer, synthetic: { case: SyntheticCase; palette: Palette }): Scorer {
  return {
    name: "exact",
    async score(input): Promise<ScoreResult> {
      const { changeMap: _m, heatMap: _h, ...rest } = await local.scoreWithMap(input, synthetic);
      return rest;
    },
  };
}
