import { PARAM_RANGES, parseSigmaInterval } from "../edit-params.js";

/** A failure the CLI reports as one line on stderr with exit code 1 (no stack trace). */
export class CliError extends Error {}

export function parseRewards(text: string): [number, number, number] {
  const { min, max } = PARAM_RANGES.reward;
  const parts = text.split(",").map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.length !== 3 || parts.some((p) => p === "") || nums.some((n) => !Number.isFinite(n))) {
    throw new CliError(`--rewards must be three numbers F,P,Q (following, preserving, quality), got "${text}"`);
  }
  if (nums.some((n) => n < min || n > max)) throw new CliError(`--rewards values must be in ${min}..${max}, got "${text}"`);
  return nums as [number, number, number];
}

export function parseNumber(name: string, text: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n))) {
    throw new CliError(`${name} must be ${opts.integer ? "an integer" : "a number"}, got "${text}"`);
  }
  if ((opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    throw new CliError(`${name} must be in ${opts.min ?? "-inf"}..${opts.max ?? "inf"}, got ${text}`);
  }
  return n;
}

/** "lo,hi": a sigma interval with lo < hi. */
export function parseInterval(name: string, text: string): [number, number] {
  const interval = parseSigmaInterval(text);
  if (!interval) throw new CliError(`${name} must be two sigmas LO,HI with 0 <= LO < HI, got "${text}"`);
  return interval;
}
