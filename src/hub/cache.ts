/**
 * The huggingface_hub cache layout, read and written exactly as Python's huggingface_hub does, so
 * either side reuses the other's downloads:
 *
 *   <cache>/<type>s--<ns>--<name>/blobs/<etag>            file contents (etag: sha256 for LFS files,
 *                                                           the git blob sha1 for the others)
 *   <cache>/<type>s--<ns>--<name>/snapshots/<commit>/<path> relative symlink to ../../blobs/<etag>
 *   <cache>/<type>s--<ns>--<name>/refs/<revision>          the commit a branch or tag pointed at
 *
 * A partial download is blobs/<etag>.incomplete, which a later pull resumes.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";

export type RepoType = "model" | "dataset";

export interface RepoId {
  type: RepoType;
  /** "namespace/name" */
  name: string;
}

export const COMMIT = /^[0-9a-f]{40}$/;

export const repoLabel = (r: RepoId) => (r.type === "dataset" ? `dataset ${r.name}` : r.name);

export class HubCache {
  readonly folder: string;

  constructor(
    readonly root: string,
    readonly repo: RepoId,
  ) {
    this.folder = path.join(root, [`${repo.type}s`, ...repo.name.split("/")].join("--"));
  }

  blob(etag: string): string {
    return path.join(this.folder, "blobs", etag);
  }

  snapshot(commit: string): string {
    return path.join(this.folder, "snapshots", commit);
  }

  /** The commit a branch or tag was last seen at, or the revision itself when it is a commit. */
  resolveRef(revision: string): string | undefined {
    if (COMMIT.test(revision)) return revision;
    try {
      const commit = readFileSync(path.join(this.folder, "refs", revision), "utf8").trim();
      return COMMIT.test(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const file = path.join(this.folder, "refs", revision);
    mkdirSync(path.dirname(file), { recursive: true });
    // no newline: huggingface_hub writes and compares the bare sha
    writeFileSync(file, commit);
  }

  /** Whether the snapshot holds a file whose link leads to a complete blob. */
  has(commit: string, file: string): boolean {
    return existsSync(path.join(this.snapshot(commit), file));
  }

  /** Every file of a cached snapshot whose contents are present, as repository paths. */
  files(commit: string): string[] {
    const root = this.snapshot(commit);
    const out: string[] = [];
    const walk = (dir: string) => {
      let entries: string[];
      try {
        entries = readdirSync(dir);
      } catch {
        return;
      }
      for (const e of entries) {
        const full = path.join(dir, e);
        let st;
        try {
          st = statSync(full); // follows the link: a dangling one is not a file we have
        } catch {
          continue;
        }
        if (st.isDirectory()) walk(full);
        else out.push(path.relative(root, full).split(path.sep).join("/"));
      }
    };
    walk(root);
    return out.sort();
  }

  /** Points snapshots/<commit>/<file> at blobs/<etag> by a relative link, as huggingface_hub does. */
  link(commit: string, file: string, etag: string): string {
    const pointer = path.join(this.snapshot(commit), ...file.split("/"));
    mkdirSync(path.dirname(pointer), { recursive: true });
    const target = path.relative(path.dirname(pointer), this.blob(etag));
    const tmp = `${pointer}.${process.pid}.tmp`;
    rmSync(tmp, { force: true });
    symlinkSync(target, tmp);
    // rename over: a concurrent reader sees the old link or the new one, never none
    renameSync(tmp, pointer);
    return pointer;
  }
}
