/**
 * What `bench` edits with: --model / --editor / --outputs / --compare turned into the runner's
 * editor choices, the presets of --sweep, and the sweep's figures after the run.
 */
import { existsSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { folderTakesRewards } from "../benchmark/editors/local.js";
import { OpenAiEditor, isOpenAiSpec, openAiEditorConfig } from "../benchmark/editors/openai.js";
import { OutputsEditor, checkOutputs, describeCheck } from "../benchmark/editors/outputs.js";
import type { EditorChoice, PresetChoice } from "../benchmark/editors/types.js";
import type { ResultRow } from "../benchmark/results.js";
import type { Suite } from "../benchmark/suites.js";
import { SWEEP_PERSPECTIVES, type SweepPerspective, describeSweep, sweepPresets, sweepSummaries } from "../benchmark/sweep.js";
import { BASELINE_MODEL, defaultModelDir } from "../paths.js";
import { resolveModel } from "../pull/resolve.js";
import { isHubSpec } from "../pull/spec.js";
import { CliError, parseNumber } from "./errors.js";

export interface EditorOptions {
  model?: string;
  editor?: string;
  outputs?: string;
  compare?: string | true;
  limit?: string;
  refine?: string;
}

/** A JSON file, or openai:..., is a remote editor's configuration; anything else a model folder or hub: spec. */
const isRemoteSpec = (spec: string) => isOpenAiSpec(spec) || (spec.endsWith(".json") && existsSync(spec) && statSync(spec).isFile());

function remoteChoice(spec: string): EditorChoice {
  let config;
  try {
    config = openAiEditorConfig(spec);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const editor = () => Promise.resolve(new OpenAiEditor(config));
  return { label: config.label ?? config.model, dir: spec, kind: "openai", takesRewards: config.rewardEdit, open: editor };
}

async function modelChoice(spec: string, log: (line: string) => void, flag: string): Promise<EditorChoice> {
  if (!isHubSpec(spec) && !existsSync(spec)) throw new CliError(`${flag} model folder ${spec} does not exist`);
  const m = await resolveModel(spec, { log });
  return { label: m.label, dir: m.dir };
}

async function outputsChoice(dir: string, suite: Suite, limit: number | undefined, log: (line: string) => void): Promise<EditorChoice> {
  const check = await checkOutputs(dir, suite, { limit }).catch((e: Error) => {
    throw new CliError(e.message);
  });
  // the check comes first, before any judge is paid; the whole list is `bench check-outputs`'s
  const lines = describeCheck(check);
  for (const line of lines.slice(0, 21)) log(`check-outputs: ${line}`);
  if (lines.length > 21) log(`check-outputs: ... ${lines.length - 21} more lines (reward-edit bench check-outputs lists them all)`);
  if (check.usable.size === 0) throw new CliError(`${dir}: nothing usable to judge (${check.missing.length} missing, ${check.undecodable.length} undecodable of ${check.samples})`);
  const label = path.basename(path.resolve(dir));
  return { label, dir, kind: "outputs", takesRewards: false, open: async () => new OutputsEditor(label, check) };
}

/** The run's editors: the main one (--model, --editor or --outputs), then --compare's. */
export async function editorChoices(o: EditorOptions, ctx: { suite: Suite; log: (line: string) => void }): Promise<EditorChoice[]> {
  const given = [o.model && "--model", o.editor && "--editor", o.outputs && "--outputs"].filter(Boolean);
  if (given.length > 1) throw new CliError(`give one of --model, --editor and --outputs, not ${given.join(" and ")}`);
  const limit = o.limit ? parseNumber("--limit", o.limit, { integer: true, min: 1 }) : undefined;
  const choices: EditorChoice[] = [];
  if (o.outputs) choices.push(await outputsChoice(o.outputs, ctx.suite, limit, ctx.log));
  else if (o.editor && isRemoteSpec(o.editor)) choices.push(remoteChoice(o.editor));
  else choices.push(await modelChoice(o.editor ?? o.model ?? defaultModelDir(), ctx.log, o.editor ? "--editor" : "--model"));
  if (o.compare) {
    const spec = o.compare === true ? BASELINE_MODEL : o.compare;
    choices.push(isRemoteSpec(spec) ? remoteChoice(spec) : await modelChoice(spec, ctx.log, "--compare"));
  }
  if (Number(o.refine ?? 1) > 1) {
    const other = choices.find((c) => c.kind);
    if (other) throw new CliError(`--refine needs this project's model folders: ${other.label} is ${other.kind === "openai" ? "a remote editor" : "an outputs folder"}`);
  }
  return choices;
}

const takesRewards = (c: EditorChoice) => c.takesRewards ?? folderTakesRewards(c.dir);

/**
 * The presets: --sweep's six per perspective, a single "as delivered" for an outputs folder (its
 * edits were made however their maker chose), else --preset/--rewards (`fallback`).
 */
export function benchPresets(o: { sweep?: string; preset?: string; rewards?: string; outputs?: string; seeds?: string }, editors: EditorChoice[], fallback: () => PresetChoice[]): PresetChoice[] {
  if (o.outputs && String(o.seeds ?? "0").includes(",")) throw new CliError("an outputs folder holds one edit per sample: give one seed");
  if (o.sweep !== undefined) {
    if (o.preset || o.rewards) throw new CliError("--sweep sets the reward levels itself: drop --preset and --rewards");
    const wanted = String(o.sweep).split(",").map((s) => s.trim());
    const bad = wanted.filter((p) => !(SWEEP_PERSPECTIVES as readonly string[]).includes(p));
    if (bad.length || !wanted.length) throw new CliError(`--sweep must be ${SWEEP_PERSPECTIVES.join(", ")} (or a comma list of them), got "${o.sweep}"`);
    const deaf = editors.find((e) => !takesRewards(e));
    if (deaf) throw new CliError(`--sweep needs an editor with reward inputs: ${deaf.label} has none`);
    return sweepPresets([...new Set(wanted)] as SweepPerspective[]);
  }
  if (o.outputs && !o.preset && !o.rewards) return [{ label: "as delivered" }];
  const presets = fallback();
  if (o.outputs && presets.length > 1) throw new CliError("an outputs folder holds one edit per sample: give one preset");
  return presets;
}

/** After a sweep: sweep.json in the run folder and one line per (editor, perspective). */
export function reportSweep(rows: ResultRow[], out: string, write: (line: string) => void): void {
  const summaries = sweepSummaries(rows);
  writeFileSync(path.join(out, "sweep.json"), JSON.stringify(summaries, null, 2));
  for (const s of summaries) write(describeSweep(s));
}
