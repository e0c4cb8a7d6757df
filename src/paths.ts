/** Locations inside the installed package (compiled code lives in dist/, data beside the sources). */
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BUNDLED_MODEL = path.join(ROOT, "models", "reward-edit-synthetic");
export const BASELINE_MODEL = path.join(ROOT, "models", "reward-edit-synthetic-baseline");
export const TEST_MODEL = path.join(ROOT, "test", "fixtures", "tiny-editor");

/** The model used when none is named: the trained bundled editor, or the random test model before it exists. */
export function defaultModelDir(): string {
  return process.env.REWARD_EDIT_MODEL ?? (existsSync(BUNDLED_MODEL) ? BUNDLED_MODEL : TEST_MODEL);
}
export const CLI_PATH = path.join(ROOT, "bin", "reward-edit.js");
/** The Python with torch for models/ tools (Debian's python3-torch by default). */
export const PYTHON = process.env.REWARD_EDIT_PYTHON ?? "/usr/bin/python3";
export const CONVERTER = path.join(ROOT, "models", "convert", "convert.py");
/** TAESD's decoder as a folder's preview_decoder (issue 33). */
export const TAESD = path.join(ROOT, "models", "convert", "taesd.py");
/** Weight-only int8 of a converted folder (issue 33). */
export const QUANTIZER = path.join(ROOT, "models", "convert", "quantize.py");

/** The package's own version, as results and manifests name it. */
export const VERSION: string = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;
/** The project's own cache (converted models, extracted data sets, the perf run's checkpoints). */
export function projectCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.REWARD_EDIT_CACHE || path.join(os.homedir(), ".cache", "reward-edit");
}
