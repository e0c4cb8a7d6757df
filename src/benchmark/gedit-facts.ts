/**
 * What GEdit-Bench is, apart from reading it: its dataset, languages, task types, input area, the
 * per-row record and the published figures. Kept apart from gedit.ts (the reader) so the suite
 * types can name these without importing the reader, which imports them.
 */
export const GEDIT_DATASET = "stepfun-ai/GEdit-Bench";
export const GEDIT_LANGUAGES = ["en", "cn"] as const;
export type GeditLanguage = (typeof GEDIT_LANGUAGES)[number];
export const GEDIT_TASKS = [
  "background_change",
  "color_alter",
  "material_alter",
  "motion_change",
  "ps_human",
  "style_change",
  "subject-add",
  "subject-remove",
  "subject-replace",
  "text_change",
  "tone_transfer",
] as const;
export type GeditTask = (typeof GEDIT_TASKS)[number];

/** The edit input's target area: 512 x 512. */
export const GEDIT_AREA = 512 * 512;

export interface GeditInfo {
  task: string;
  language: GeditLanguage;
  intersection: boolean;
  key: string;
}

export interface GeditOptions {
  language?: GeditLanguage;
  /** Only the rows with `Intersection_exist`. */
  intersection?: boolean;
  /** Where the prepared images go (default: the project cache). */
  cacheDir?: string;
}

/**
 * Figures published for GEdit-Bench-EN, full set, GPT-4.1 judge (from the Step1X-Edit report's
 * table); printed beside a run's own, never mixed into it.
 */
export const GEDIT_PUBLISHED = {
  set: "GEdit-Bench-EN, full set",
  judge: "GPT-4.1",
  source: "Step1X-Edit technical report (GEdit-Bench table)",
  rows: [
    { model: "InstructPix2Pix", sc: 3.575, pq: 5.491, o: 3.684 },
    { model: "MagicBrush", sc: 4.677, pq: 5.656, o: 4.518 },
    { model: "AnyEdit", sc: 3.178, pq: 5.82, o: 3.212 },
    { model: "Step1X-Edit", sc: 7.091, pq: 6.763, o: 6.701 },
    { model: "GPT-4o", sc: 7.85, pq: 7.62, o: 7.534 },
  ],
} as const;
