/**
 * Names read from a data set's own files (GEdit-Bench's task types and keys, Real-Edit's index)
 * become paths on this machine; a hostile or broken file must not make them point anywhere else.
 * The lexical rule is the Hub client's (src/hub/safe-path.ts), so a name means the same thing
 * wherever it comes from; this module adds what data sets on disk need (links followed).
 */
import { realpathSync } from "node:fs";
import path from "node:path";
import { unsafeReason } from "../hub/safe-path.js";

/** Why `name` is not one plain file or folder name, or null when it is one. */
export function segmentProblem(name: string): string | null {
  if (name.includes("/") || name.includes("\\")) return "holds a path separator";
  return unsafeReason(name) ?? null;
}

/** Why `name` is not a relative path of plain segments ("images/a.png"), or null: the Hub client's own rule. */
export function relativePathProblem(name: string): string | null {
  return unsafeReason(name) ?? null;
}

/** Whether `file` is `dir` itself or lies below it (both already resolved). */
export function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel));
}

/** `rel` resolved inside `root`; throws when it is not a plain relative path or leaves the root. */
export function containedPath(root: string, rel: string): string {
  const problem = relativePathProblem(rel);
  if (problem) throw new Error(`"${rel}" ${problem}`);
  const full = path.resolve(root, rel);
  if (!isInside(path.resolve(root), full)) throw new Error(`"${rel}" leaves ${root}`);
  return full;
}

/**
 * Whether the existing `file`, links followed, lies inside one of `roots` (links followed too):
 * a name that passes the lexical checks can still reach out through a symlink on the way.
 */
export function realInside(file: string, roots: string[]): boolean {
  const real = realpathSync(file);
  return roots.some((r) => isInside(realpathSync(r), real));
}
