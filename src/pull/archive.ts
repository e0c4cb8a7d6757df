/**
 * A dataset's archive (zip through yauzl, tar/tar.gz through `tar`) extracted into a folder of the
 * project's cache, and nowhere else: every entry name goes through the one containment check
 * (src/hub/safe-path.ts), only files and folders are made (no links, no devices), and entry count,
 * entry size, total size and compression ratio are capped, so a small download cannot fill a disk.
 * A refusal is one line naming the dataset, the archive and the reason.
 */
import { createWriteStream, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar";
import yauzl from "yauzl";
import { unsafeReason } from "../hub/index.js";

export interface ArchiveLimits {
  maxEntries: number;
  maxEntryBytes: number;
  maxTotalBytes: number;
  /** Extracted bytes per archived byte (per zip entry, and for the whole archive). */
  maxRatio: number;
}

export const ARCHIVE_LIMIT_VARS: Array<{ env: string; key: keyof ArchiveLimits; def: number; doc: string }> = [
  { env: "REWARD_EDIT_ARCHIVE_MAX_ENTRIES", key: "maxEntries", def: 100_000, doc: "entries of one archive" },
  { env: "REWARD_EDIT_ARCHIVE_MAX_ENTRY_BYTES", key: "maxEntryBytes", def: 4 * 1024 ** 3, doc: "bytes of one extracted entry" },
  { env: "REWARD_EDIT_ARCHIVE_MAX_BYTES", key: "maxTotalBytes", def: 32 * 1024 ** 3, doc: "bytes extracted from one archive" },
  { env: "REWARD_EDIT_ARCHIVE_MAX_RATIO", key: "maxRatio", def: 100, doc: "extracted / compressed size (checked past 1 MiB)" },
];

/** Below this, a high ratio is a small text file of repeats, not a bomb. */
const RATIO_FLOOR = 1024 * 1024;

export class ArchiveError extends Error {}

export function archiveLimits(env: NodeJS.ProcessEnv = process.env): ArchiveLimits {
  const out = {} as ArchiveLimits;
  for (const k of ARCHIVE_LIMIT_VARS) {
    const text = env[k.env]?.trim();
    const v = text ? Number(text) : k.def;
    if (!Number.isSafeInteger(v) || v < 1) throw new ArchiveError(`${k.env} must be a whole number, at least 1, got "${text}"`);
    out[k.key] = v;
  }
  return out;
}

/** Counts what one archive puts on disk against the caps. */
class Budget {
  entries = 0;
  total = 0;

  constructor(
    readonly lim: ArchiveLimits,
    readonly archiveBytes: number,
    readonly refuse: (why: string) => ArchiveError,
  ) {}

  entry(name: string): void {
    if (++this.entries > this.lim.maxEntries) throw this.refuse(`more than ${this.lim.maxEntries} entries (REWARD_EDIT_ARCHIVE_MAX_ENTRIES)`);
  }

  bytes(name: string, size: number, compressed?: number): void {
    if (size > this.lim.maxEntryBytes) throw this.refuse(`entry ${JSON.stringify(name)} holds ${size} B, more than ${this.lim.maxEntryBytes} B (REWARD_EDIT_ARCHIVE_MAX_ENTRY_BYTES)`);
    this.total += size;
    if (this.total > this.lim.maxTotalBytes) throw this.refuse(`it holds more than ${this.lim.maxTotalBytes} B (REWARD_EDIT_ARCHIVE_MAX_BYTES)`);
    if (compressed !== undefined && size > RATIO_FLOOR && size > this.lim.maxRatio * Math.max(1, compressed)) {
      throw this.refuse(`entry ${JSON.stringify(name)} expands ${compressed} B to ${size} B, more than ${this.lim.maxRatio} times (REWARD_EDIT_ARCHIVE_MAX_RATIO)`);
    }
    if (this.total > RATIO_FLOOR && this.total > this.lim.maxRatio * Math.max(1, this.archiveBytes)) {
      throw this.refuse(`its ${this.archiveBytes} B expand to more than ${this.total} B, more than ${this.lim.maxRatio} times (REWARD_EDIT_ARCHIVE_MAX_RATIO)`);
    }
  }
}

/**
 * An entry's name as a path below `into`: a leading "./" (what `tar -C dir .` writes) is dropped,
 * anything else that would leave the folder refused. Undefined for the archive's root itself.
 */
function entryPath(into: string, raw: string, refuse: (why: string) => ArchiveError): string | undefined {
  const name = raw.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  if (name === "" && raw.startsWith(".")) return undefined;
  const why = unsafeReason(name);
  if (why) throw refuse(`entry ${JSON.stringify(raw)}: ${why}`);
  const full = path.resolve(into, ...name.split("/"));
  if (!full.startsWith(path.resolve(into) + path.sep)) throw refuse(`entry ${JSON.stringify(raw)} resolves outside the folder`);
  return full;
}

const openZip = (file: string) =>
  new Promise<yauzl.ZipFile>((resolve, reject) =>
    // names undecoded: yauzl would refuse a bad one itself, in words that name neither the archive
    // nor the dataset; they are decoded below and go through entryPath instead
    yauzl.open(file, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true }, (err, z) => (err ? reject(err) : resolve(z!))),
  );

/** The entry's name as yauzl decodes it, a backslash kept (for entryPath to refuse, not to split on). */
const zipName = (e: yauzl.Entry) => yauzl.getFileNameLowLevel(e.generalPurposeBitFlag, e.fileName as unknown as Buffer, e.extraFields, true);

async function unzip(file: string, into: string, budget: Budget): Promise<void> {
  const refuse = budget.refuse;
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(file);
  } catch (err) {
    throw refuse(`not a readable zip (${(err as Error).message})`);
  }
  if (zip.entryCount > budget.lim.maxEntries) {
    zip.close();
    throw refuse(`${zip.entryCount} entries, more than ${budget.lim.maxEntries} (REWARD_EDIT_ARCHIVE_MAX_ENTRIES)`);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: unknown) => reject(err instanceof ArchiveError ? err : refuse(((err as Error)?.message ?? String(err)).split("\n")[0]));
      zip.on("error", fail);
      zip.on("end", resolve);
      zip.on("entry", (entry: yauzl.Entry) => {
        const name = zipName(entry);
        try {
          budget.entry(name);
          const to = entryPath(into, name, refuse);
          if (!to) return void zip.readEntry();
          if (name.endsWith("/")) {
            mkdirSync(to, { recursive: true });
            return void zip.readEntry();
          }
          budget.bytes(name, entry.uncompressedSize, entry.compressedSize);
          mkdirSync(path.dirname(to), { recursive: true });
          zip.openReadStream(entry, (err, stream) => {
            if (err) return fail(err);
            // the header's size is what the caps counted: never write more than it says
            let n = 0;
            const guard = new Transform({
              transform(chunk: Buffer, _enc, cb) {
                n += chunk.length;
                cb(n > entry.uncompressedSize ? refuse(`entry ${JSON.stringify(name)} is longer than its header says`) : null, chunk);
              },
            });
            pipeline(stream!, guard, createWriteStream(to, { flags: "wx" })).then(
              () => zip.readEntry(),
              (e: NodeJS.ErrnoException) => fail(e.code === "EEXIST" ? refuse(`entry ${JSON.stringify(name)} appears twice`) : e),
            );
          });
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          fail(code === "EEXIST" || code === "ENOTDIR" ? refuse(`entry ${JSON.stringify(name)} clashes with another entry`) : err);
        }
      });
      zip.readEntry();
    });
  } finally {
    if (zip.isOpen) zip.close();
  }
}

const TAR_KINDS = new Set(["File", "OldFile", "ContiguousFile", "Directory"]);

async function untar(file: string, into: string, budget: Budget): Promise<void> {
  const refuse = budget.refuse;
  // first every header, so nothing is written from an archive that is refused
  let problem: unknown;
  try {
    await tar.t({
      file,
      onReadEntry: (e) => {
        if (problem) return;
        try {
          budget.entry(e.path);
          if (!TAR_KINDS.has(e.type)) throw refuse(`entry ${JSON.stringify(e.path)} is a ${e.type}; only files and folders are extracted`);
          if (entryPath(into, e.path, refuse) && e.type !== "Directory") budget.bytes(e.path, e.size ?? 0);
        } catch (err) {
          problem = err;
        }
      },
    });
  } catch (err) {
    // tar's own guards (a ratio past 1000, a broken header) come after ours, which name the entry
    throw problem ?? refuse(`not a readable tar (${(err as Error).message})`);
  }
  if (problem) throw problem;
  try {
    await tar.x({ file, cwd: into, strict: true, filter: (_p, e) => TAR_KINDS.has((e as tar.ReadEntry).type) });
  } catch (err) {
    throw refuse(((err as Error).message ?? String(err)).split("\n")[0]);
  }
}

/** Extracts `file` into the existing, empty folder `into`; `label` names it in refusals ("dataset X: archive Y"). */
export async function extractArchive(file: string, into: string, label: string, lim: ArchiveLimits = archiveLimits()): Promise<void> {
  const budget = new Budget(lim, statSync(file).size, (why) => new ArchiveError(`${label} refused: ${why}`));
  if (/\.zip$/i.test(file)) await unzip(file, into, budget);
  else await untar(file, into, budget);
}
