/**
 * An editor, as the benchmark runner sees it: a sample (with its preset and seed) goes in, an
 * outcome comes out. This project's model folders, a remote OpenAI-style images API and a folder
 * of edits made elsewhere are adapters behind this one interface, so the runner never knows which
 * one it drives.
 */
import type { Rewards } from "../../../editor/index.js";
import type { ScoreResult } from "../../../reward/index.js";
import type { ResultRow } from "../results.js";
import type { Sample } from "../suites.js";

export type EditorKind = "local" | "openai" | "outputs";

/** One preset of a run: what a reward-conditioned editor is asked for. */
export interface PresetChoice {
  label: string;
  rewards?: Rewards;
  steps?: number;
  textGuidance?: number;
  imageGuidance?: number;
  /** With --sweep: the swept perspective and the level this preset requests. */
  sweep?: { perspective: "following" | "preserving" | "quality"; level: number };
}

export interface EditTask {
  key: string;
  sample: Sample;
  /** The sample's image, read once by the runner. */
  source: Buffer;
  preset: PresetChoice;
  seed: number;
}

export type EditOutcome =
  | {
      status: "ok";
      image: Buffer;
      settings?: ResultRow["settings"];
      /** Time the editor took (a remote editor: the request, retries and waits included). */
      latencyMs: number;
      /** The provider's own usage block, as it sent it. */
      usage?: Record<string, unknown>;
      /** Requests made for this edit (a remote editor retries 429 and 5xx). */
      attempts?: number;
      /** Set when the editor scored its own rounds (--refine): the score of the returned edit. */
      score?: ScoreResult;
      /** With --refine: every round's score, so the row counts every round's judge tokens. */
      roundScores?: ScoreResult[];
      scoreMs?: number;
      refine?: ResultRow["refine"];
    }
  | {
      status: "refused" | "missing" | "edit_failed";
      error: string;
      latencyMs?: number;
      usage?: Record<string, unknown>;
      attempts?: number;
    };

export interface Editor {
  /** How reports name it (the group's first half). */
  readonly label: string;
  readonly kind: EditorKind;
  /** What it is: a model folder, MODEL@BASE_URL, an outputs folder. */
  readonly name: string;
  /** Whether reward levels reach it (a sweep needs them). */
  readonly takesRewards: boolean;
  /** How many edits may be in flight at once. */
  readonly concurrency: number;
  edit(task: EditTask): Promise<EditOutcome>;
  dispose(): Promise<void>;
}

/** A run's editor before it is opened: the runner opens it when its first task comes. */
export interface EditorChoice {
  label: string;
  /** The folder or spec it was given as (recorded in run.json). */
  dir: string;
  /** Absent for this project's model folders, which the runner opens itself. */
  kind?: EditorKind;
  /** Known before opening (a model folder's is read from its manifest). */
  takesRewards?: boolean;
  open?: () => Promise<Editor>;
}
