/**
 * Length caps on the texts a caller hands to an edit, shared by every way in (CLI flags, batch
 * manifests, benchmark suites, the HTTP API, a like image's recorded parameters). CLIP reads
 * 77 tokens and truncates the rest (editor/tokenizer/clip.ts), so 500 characters loses nothing
 * a model would see; the cap bounds the work a caller can ask of the tokenizer and, on the CLI,
 * keeps the command line short enough for onnxruntime-node (see checkArgv).
 *
 * This module imports nothing, so the CLI can check its arguments before anything loads
 * onnxruntime-node.
 */

export const MAX_INSTRUCTION_LENGTH = 500;
export const MAX_FEEDBACK_LENGTH = 500;
/**
 * Scoring judges an edit made anywhere (another tool's, a benchmark's), and its instruction goes to
 * the judge's prompt, not to CLIP: it keeps the longer cap /v1/scores has always had.
 */
export const MAX_SCORE_INSTRUCTION_LENGTH = 2_000;

/**
 * onnxruntime-node 1.x segfaults (exit 139, no message) when a session is created in a process
 * whose command line is about 29,000 characters long; every legitimate command is far shorter.
 */
export const MAX_ARGV_LENGTH = 16_384;
/** Longer than any path or value a flag takes, except the capped texts above. */
export const MAX_ARG_LENGTH = 4_096;

/** The message for a text over its cap, or null when it fits. */
export function textTooLong(name: string, text: string, max: number): string | null {
  return text.length > max ? `${name} is ${text.length} characters; the limit is ${max}` : null;
}

const TEXT_FLAGS: Record<string, number> = { "--instruction": MAX_INSTRUCTION_LENGTH, "--feedback": MAX_FEEDBACK_LENGTH };
const SCORE_TEXT_FLAGS: Record<string, number> = { "--instruction": MAX_SCORE_INSTRUCTION_LENGTH };
const SCORING_COMMANDS = new Set(["score", "rank"]);

/**
 * The first problem with a command line (process.argv without node and the script), or null.
 * Runs before the CLI imports anything heavy: a too-long line must fail with one line, not a signal.
 */
export function checkArgv(args: readonly string[]): string | null {
  const flags = SCORING_COMMANDS.has(args[0]) ? SCORE_TEXT_FLAGS : TEXT_FLAGS;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const max = Object.hasOwn(flags, flag) ? flags[flag] : undefined;
    if (max !== undefined) {
      const value = eq > 0 ? a.slice(eq + 1) : args[i + 1];
      if (value !== undefined) {
        const problem = textTooLong(flag, value, max);
        if (problem) return problem;
      }
      if (eq < 0) i++;
      continue;
    }
    if (a.length > MAX_ARG_LENGTH) return `an argument of ${a.length} characters ("${a.slice(0, 24)}...") is too long; the limit is ${MAX_ARG_LENGTH}`;
  }
  const total = args.reduce((n, a) => n + a.length + 1, 0);
  if (total > MAX_ARGV_LENGTH) return `the command line is ${total} characters; the limit is ${MAX_ARGV_LENGTH}`;
  return null;
}
