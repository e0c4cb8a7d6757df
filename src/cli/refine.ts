/** `edit --refine N`: the refinement loop from the command line, one line per round on stderr. */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { DEFAULT_REWARDS, type EditResult, type EditorModel, type MaskMode, type OutputFormat, edit } from "../../editor/index.js";
import { type EditMask, encodeMask } from "../../raster/mask.js";
import { JudgeScorer, LocalScorer, type Scorer, judgeConfigFrom } from "../../reward/index.js";
import type { ResolvedParams } from "../edit-params.js";
import { refine } from "../refine/index.js";

interface RefineArgs {
  image: Buffer;
  instruction: string;
  params: ResolvedParams;
  seed?: number;
  rounds: number;
  out: string;
  roundsDir?: string;
  format: OutputFormat;
  editMask?: EditMask;
  maskMode?: MaskMode;
  /** Marks a round's result with its provenance (the identity when provenance is off). */
  mark: (res: EditResult, refine: { round: number; from: "source" | "last" }) => Promise<Buffer>;
}

export async function refineToFiles(model: EditorModel, a: RefineArgs): Promise<void> {
  const judge = judgeConfigFrom();
  const scorer: Scorer = judge ? new JudgeScorer(judge) : new LocalScorer();
  if (!judge) {
    process.stderr.write("refine: no judge configured, so the local scorer drives the rounds: it judges preservation and quality, not whether the instruction was followed\n");
  }
  const d = model.manifest.defaults;
  const made: EditResult[] = [];
  const result = await refine(
    {
      source: a.image,
      instruction: a.instruction,
      mask: a.editMask ? await encodeMask(a.editMask) : undefined,
      rewards: a.params.rewards ?? DEFAULT_REWARDS,
      textGuidance: a.params.textGuidance ?? d.text_guidance,
      imageGuidance: a.params.imageGuidance ?? d.image_guidance,
      seed: a.seed ?? Math.floor(Math.random() * 2 ** 31),
      rounds: a.rounds,
      onRound: (r) => {
        const v = r.verdict.perspectives;
        const cell = (p: keyof typeof v) => (v[p].judged ? `${p} ${v[p].score.toFixed(1)}${v[p].met ? "" : " (short)"}` : `${p} not judged`);
        process.stderr.write(
          `round ${r.round}: ${cell("following")}, ${cell("preserving")}, ${cell("quality")}${r.changes.length ? `; changed: ${r.changes.join("; ")}` : ""}\n`,
        );
      },
    },
    async (s, image) => {
      const res = await edit(model, {
          image,
          instruction: s.instruction,
          rewards: s.rewards,
          textGuidance: s.textGuidance,
          imageGuidance: s.imageGuidance,
          steps: a.params.steps,
          ...a.params.sampling,
          seed: s.seed,
          feedback: s.feedback,
          format: a.format,
          editMask: a.editMask,
          maskMode: a.maskMode,
      });
      made.push(res);
      return res.image;
    },
    scorer,
  );
  const marked = await Promise.all(made.map((res, i) => a.mark(res, { round: i + 1, from: result.rounds[i].settings.from })));
  await writeFile(a.out, marked[result.best]);
  if (a.roundsDir) {
    await mkdir(a.roundsDir, { recursive: true });
    const ext = path.extname(a.out);
    for (const [i, r] of result.rounds.entries()) await writeFile(path.join(a.roundsDir, `round-${r.round}${ext}`), marked[i]);
    const json = result.rounds.map((r) => ({ round: r.round, settings: r.settings, changes: r.changes, verdict: r.verdict, editMs: r.editMs, scoreMs: r.scoreMs }));
    await writeFile(path.join(a.roundsDir, "rounds.json"), JSON.stringify({ best: result.best + 1, stopped: result.stopped, rounds: json }, null, 2));
  }
  process.stderr.write(`wrote ${a.out}: round ${result.best + 1} of ${result.rounds.length} (${result.stopped === "met" ? "targets met" : "rounds used up"})\n`);
}
