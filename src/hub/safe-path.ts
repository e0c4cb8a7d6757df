/**
 * The one place where a name that came from outside (a listed file, a shard named by an index, a
 * revision, a blob id, an archive entry, a dataset key) becomes a path. A remote listing is data,
 * not a plan of the disk: anything that could leave the folder it is meant for is refused in one
 * line naming who sent it, before a byte is written or a file removed.
 */
import path from "node:path";
import { HubError } from "./errors.js";

/** Who sent a name and what it names, for the refusal's line: `test-org/x`, `listed file`. */
export interface NameSource {
  owner: string;
  what: string;
}

/** Why a relative, slash-separated name cannot be used below a folder; undefined when it can. */
export function unsafeReason(name: unknown): string | undefined {
  if (typeof name !== "string") return `not a string (${name === null ? "null" : typeof name})`;
  if (name === "") return "it is empty";
  if (name.includes("\0")) return "it contains a NUL byte";
  if (name.includes("\\")) return "it contains a backslash";
  if (name.startsWith("/") || path.win32.isAbsolute(name)) return "it is absolute";
  const segments = name.split("/");
  if (segments.some((s) => s === "..")) return 'it leaves its folder (a ".." segment)';
  if (segments.some((s) => s === ".")) return 'it has a "." segment';
  if (segments.some((s) => s === "")) return "it has an empty segment";
  return undefined;
}

export const isSafeName = (name: unknown): name is string => unsafeReason(name) === undefined;

export function refuseName(src: NameSource, name: unknown, reason: string): HubError {
  return new HubError("unsafe-name", `${src.owner}: refused ${src.what} ${JSON.stringify(name)}: ${reason}`);
}

/** The name, checked (see unsafeReason). */
export function checkName(name: unknown, src: NameSource): string {
  const why = unsafeReason(name);
  if (why) throw refuseName(src, name, why);
  return name as string;
}

/**
 * `root/name` for a checked name, and a last look that the result really lies below `root`
 * (what path.join made of it), so a name this function accepts can never point elsewhere.
 */
export function containedPath(root: string, name: unknown, src: NameSource): string {
  const segments = checkName(name, src).split("/");
  const base = path.resolve(root);
  const full = path.resolve(base, ...segments);
  if (!full.startsWith(base + path.sep)) throw refuseName(src, name, `it resolves outside ${base}`);
  return full;
}

const GIT_OID = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/**
 * A blob id used as a file name in blobs/: a git blob sha1 (40 hex) or an LFS sha256 (64 hex),
 * nothing else, since the cache names (and later removes) files by it.
 */
export function checkBlobName(id: unknown, kind: "git" | "sha256", src: NameSource): string {
  const ok = typeof id === "string" && (kind === "git" ? GIT_OID : SHA256).test(id);
  if (!ok) throw refuseName(src, id, `not a ${kind === "git" ? "git blob id (40 hex digits)" : "sha256 (64 hex digits)"}`);
  return id as string;
}

/** A repository id as the Hub spells them: NAMESPACE/NAME of letters, digits, `-`, `_`, `.`. */
export function checkRepoName(name: string, what = "repository id"): string {
  const parts = name.split("/");
  const ok = parts.length === 2 && parts.every((p) => /^[A-Za-z0-9][\w.-]*$/.test(p) && !p.includes(".."));
  if (!ok) throw new HubError("unsafe-name", `${JSON.stringify(name)} is not a ${what}: write NAMESPACE/NAME (letters, digits, -, _, .)`);
  return name;
}
