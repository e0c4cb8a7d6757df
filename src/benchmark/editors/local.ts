/**
 * This project's model folders (and `hub:` models once pulled) as an editor: the edit, and with
 * --refine N the rounds a scorer drives, exactly as the runner made them before editors existed.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { type EditorModel, type Rewards, edit, loadModel, parseManifest } from "../../../editor/index.js";
import type { LocalScorer, Scorer } from "../../../reward/index.js";
import { exactScorer, refine } from "../../refine/index.js";
import type { EditOutcome, EditTask, Editor } from "./types.js";

export interface LocalOptions {
  /** Overrides every preset's steps. */
  steps?: number;
  /** Refinement rounds per edit (1 = a single pass). */
  refine?: number;
  /** The configured judge, which drives the rounds; synthetic scenes without one use their exact truth. */
  judge?: Scorer | null;
  local: LocalScorer;
}

/** Whether the folder's model takes reward levels, read from its manifest without loading it. */
export function folderTakesRewards(dir: string): boolean {
  const file = path.join(dir, "reward-edit.json");
  if (!existsSync(file)) return false;
  return parseManifest(JSON.parse(readFileSync(file, "utf8"))).rewards !== undefined;
}

export class LocalEditor implements Editor {
  readonly kind = "local" as const;
  readonly concurrency = 1;
  readonly takesRewards: boolean;

  private constructor(
    readonly label: string,
    readonly name: string,
    private readonly model: EditorModel,
    private readonly o: LocalOptions,
  ) {
    this.takesRewards = model.takesRewards;
  }

  /** Named by its label: the same model found at another path (a shard's machine) is the same editor. */
  static async open(label: string, dir: string, o: LocalOptions): Promise<LocalEditor> {
    return new LocalEditor(label, label, await loadModel(dir), o);
  }

  async edit(t: EditTask): Promise<EditOutcome> {
    try {
      return (this.o.refine ?? 1) > 1 ? await this.refined(t) : await this.single(t);
    } catch (err) {
      return { status: "edit_failed", error: (err as Error).message };
    }
  }

  private run(t: EditTask, o: { rewards?: Rewards; textGuidance?: number; imageGuidance?: number; seed: number; feedback?: string }, image: Buffer) {
    return edit(this.model, { image, instruction: t.sample.instruction, steps: this.o.steps ?? t.preset.steps, ...o });
  }

  private async single(t: EditTask): Promise<EditOutcome> {
    const r = await this.run(t, { rewards: t.preset.rewards, textGuidance: t.preset.textGuidance, imageGuidance: t.preset.imageGuidance, seed: t.seed }, t.source);
    const p = r.parameters;
    return {
      status: "ok",
      image: r.image,
      latencyMs: r.timings.totalMs,
      settings: { rewards: p.rewardsApplied ? p.rewards : null, steps: p.steps, textGuidance: p.textGuidance, imageGuidance: p.imageGuidance, seed: p.seed },
    };
  }

  private async refined(t: EditTask): Promise<EditOutcome> {
    const defaults = this.model.manifest.defaults;
    const scorer = this.o.judge ?? (t.sample.synthetic ? exactScorer(this.o.local, t.sample.synthetic) : this.o.local);
    const rr = await refine(
      {
        source: t.source,
        instruction: t.sample.instruction,
        rewards: t.preset.rewards ?? [5, 5, 5],
        textGuidance: t.preset.textGuidance ?? defaults.text_guidance,
        imageGuidance: t.preset.imageGuidance ?? defaults.image_guidance,
        seed: t.seed,
        rounds: this.o.refine!,
      },
      async (s, image) => (await this.run(t, { rewards: s.rewards, textGuidance: s.textGuidance, imageGuidance: s.imageGuidance, seed: s.seed, feedback: s.feedback }, image)).image,
      scorer,
    );
    const best = rr.rounds[rr.best];
    return {
      status: "ok",
      image: best.image,
      latencyMs: rr.rounds.reduce((a, r) => a + r.editMs, 0),
      settings: {
        rewards: this.model.takesRewards ? best.settings.rewards : null,
        steps: this.o.steps ?? t.preset.steps ?? defaults.steps,
        textGuidance: best.settings.textGuidance,
        imageGuidance: best.settings.imageGuidance,
        seed: best.settings.seed,
      },
      score: best.score,
      roundScores: rr.rounds.map((r) => r.score),
      scoreMs: rr.rounds.reduce((a, r) => a + r.scoreMs, 0),
      refine: { rounds: rr.rounds.length, best: rr.best, stopped: rr.stopped, changes: rr.rounds.map((r) => r.changes), merits: rr.rounds.map((r) => r.verdict.merit) },
    };
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }
}
