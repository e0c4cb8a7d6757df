/**
 * `--dtype int8 --compute int8` for `models convert`, `models pull` and `hub:` specs (issue 42): the
 * converter writes a float32 folder beside the destination, and quantizeCompute (calibration edits,
 * sensitivity sweep, qdq.py) turns it into the int8-arithmetic one; the float32 folder goes away.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { inspectModelFolder } from "../../editor/index.js";
import { type CalibrationItem } from "../quantize/calibrate.js";
import { quantizeCompute } from "../quantize/int8-compute.js";
import { type ConverterOutput, runConverter } from "./converter.js";
import { PullError } from "./errors.js";
import type { WeightDtype } from "./dtype.js";

/** The arithmetic of a converted folder: float32 (int8 weights read through DequantizeLinear, or none) or int8 (QDQ). */
export const COMPUTE_KINDS = ["float32", "int8"] as const;
export type ComputeKind = (typeof COMPUTE_KINDS)[number];

export function parseCompute(s: string, what = "--compute"): ComputeKind {
  if (!(COMPUTE_KINDS as readonly string[]).includes(s)) throw new PullError(`${what} must be ${COMPUTE_KINDS.join(", ")}; got "${s}"`);
  return s as ComputeKind;
}

/** int8 arithmetic runs on int8 weights: any other pairing is refused, naming the two settings. */
export function checkCompute(dtype: WeightDtype, compute: ComputeKind, names: "flags" | "env" = "flags"): void {
  if (compute !== "int8" || dtype === "int8") return;
  const [d, c] = names === "flags" ? ["--dtype ", "--compute "] : ["REWARD_EDIT_HUB_DTYPE=", "REWARD_EDIT_HUB_COMPUTE="];
  throw new PullError(`${c}int8 needs ${d}int8 (int8 arithmetic runs on int8 weights); got ${d}${dtype}`);
}

/** Calibration photos the user names, all edited with one instruction (default: the bundled sample photos and scenes). */
export function calibrationItems(photos: string[], instruction = "make it look like a watercolour painting"): CalibrationItem[] {
  return photos.map((p) => {
    try {
      return { image: readFileSync(p), instruction };
    } catch {
      throw new PullError(`${p}: no such calibration photo`);
    }
  });
}

export interface ComputeConvertOptions {
  /** The converter's other arguments (--name, --config, ...), never --dtype. */
  converterArgs?: string[];
  converterOutput?: ConverterOutput;
  /** Calibration edits' photos and instructions (default: quantizeCompute's). */
  items?: CalibrationItem[];
  threads?: number;
  log?: (line: string) => void;
}

/**
 * Converts SRC into OUT with int8 arithmetic; resolves with the converter's exit code (0 once OUT
 * is written). The float32 folder sits beside OUT (same volume, not /tmp: a full-size one is
 * 4.4 GB) under a name nothing else reads, and is removed whatever happens.
 */
export async function convertComputeInt8(src: string, out: string, o: ComputeConvertOptions = {}): Promise<number> {
  const float = `${path.resolve(out)}.float32-${randomBytes(4).toString("hex")}`;
  try {
    // the folder's name is OUT's, not the temporary one's
    const args = o.converterArgs ?? [];
    const named = args.includes("--name") ? args : [...args, "--name", path.basename(path.resolve(out))];
    const code = await runConverter([src, float, "--dtype", "float32", ...named], o.converterOutput);
    if (code !== 0) return code;
    // the calibration edits with this folder: a folder that cannot edit is named as OUT, not as the temporary one
    const report = await inspectModelFolder(float);
    await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
    if (report.problems.length > 0) throw new PullError(`converted folder ${out} does not validate: ${report.problems.join("; ")}`);
    await quantizeCompute({ src: float, out, items: o.items, threads: o.threads, log: o.log });
    return 0;
  } finally {
    rmSync(float, { recursive: true, force: true });
  }
}
