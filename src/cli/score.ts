import { readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { JudgeScorer, LocalScorer, PERSPECTIVES, SCORING_PROTOCOLS, type ScoreResult, type ScoringProtocol, judgeConfigFrom } from "../../reward/index.js";
import { readProvenance } from "../provenance/reader.js";
import { CliError, parseNumber } from "./errors.js";
import { readTrustAnchors } from "./inspect.js";

async function readImage(flag: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new CliError(`cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function judgeFrom(o: { protocol?: string; passes?: string }): JudgeScorer {
  const config = judgeConfigFrom();
  if (!config) throw new CliError("no judge configured: set REWARD_EDIT_JUDGE_MODEL (and OPENAI_BASE_URL, OPENAI_API_KEY) or REWARD_EDIT_JUDGE_CONFIG");
  if (o.protocol) {
    if (!(SCORING_PROTOCOLS as readonly string[]).includes(o.protocol)) throw new CliError(`--protocol must be ${SCORING_PROTOCOLS.slice(0, -1).join(", ")} or ${SCORING_PROTOCOLS.at(-1)}, got "${o.protocol}"`);
    config.protocol = o.protocol as ScoringProtocol;
  }
  if (o.passes) config.passes = parseNumber("--passes", o.passes, { integer: true, min: 1, max: 10 });
  return new JudgeScorer(config);
}

function backendOf(o: { backend?: string }): "judge" | "local" {
  const b = o.backend ?? (judgeConfigFrom() ? "judge" : "local");
  if (b !== "judge" && b !== "local") throw new CliError(`--backend must be judge or local, got "${b}"`);
  return b;
}

/** Local ranking: mean of the perspectives the local scorer can judge. */
const localMean = (r: ScoreResult) => {
  const s = PERSPECTIVES.map((p) => r.perspectives[p]).filter((x) => x.status === "scored").map((x) => x.score!);
  return s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
};

export function registerScore(program: Command): void {
  program
    .command("score")
    .description("score an edit on following, preserving and quality; prints JSON")
    .requiredOption("--source <file>", "original image")
    .requiredOption("--edited <file>", "edited image")
    .requiredOption("--instruction <text>", "the edit instruction")
    .option("--protocol <name>", "judge protocol: mrc (default), multi-round or viescore (GEdit-Bench's SC/PQ/O on 0..10)")
    .option("--backend <name>", "judge or local (default: judge when one is configured)")
    .option("--passes <n>", "judge passes to average")
    .option("--heatmap <file>", "local backend: write the change heat map PNG here")
    .action(async (o) => {
      const input = { source: await readImage("--source", o.source), edited: await readImage("--edited", o.edited), instruction: o.instruction };
      let result: ScoreResult;
      if (backendOf(o) === "judge") result = await judgeFrom(o).score(input);
      else {
        const local = await new LocalScorer().scoreWithMap(input);
        if (o.heatmap) await writeFile(o.heatmap, await local.heatMap());
        const { changeMap: _m, heatMap: _h, ...rest } = local;
        result = rest;
      }
      const provenance = await readProvenance(input.edited, await readTrustAnchors(undefined));
      process.stdout.write(JSON.stringify({ ...result, provenance }, null, 2) + "\n");
    });

  program
    .command("rank")
    .description("rank candidate edits of one source (judge: pairwise win rates; local: local figures)")
    .requiredOption("--source <file>", "original image")
    .requiredOption("--instruction <text>", "the edit instruction")
    .option("--backend <name>", "judge or local")
    .argument("<candidates...>", "edited images")
    .action(async (candidates: string[], o) => {
      if (candidates.length < 2) throw new CliError("rank needs at least two candidate images");
      const source = await readImage("--source", o.source);
      const images = await Promise.all(candidates.map((c) => readImage("candidate", c)));
      if (backendOf(o) === "judge") {
        const r = await judgeFrom({}).rank(source, o.instruction, images);
        const ranking = r.ranking.map((x) => ({ file: candidates[x.index], ...x }));
        process.stdout.write(JSON.stringify({ ...r, ranking }, null, 2) + "\n");
        return;
      }
      const local = new LocalScorer();
      const scores = await Promise.all(images.map((edited) => local.score({ source, edited, instruction: o.instruction })));
      const ranking = scores
        .map((s, index) => ({ file: candidates[index], index, score: localMean(s) }))
        .sort((a, b) => b.score - a.score || a.index - b.index);
      process.stdout.write(JSON.stringify({ protocol: "local", ranking }, null, 2) + "\n");
    });
}
