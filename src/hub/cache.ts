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
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type NameSource, checkBlobName, containedPath, refuseName } from "./safe-path.js";

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

  private source(what: string): NameSource {
    return { owner: repoLabel(this.repo), what };
  }

  /** blobs/<etag>: the etag must be a git blob id or a sha256, so it is one file name in blobs/. */
  blob(etag: string): string {
    checkBlobName(etag, etag.length === 64 ? "sha256" : "git", this.source("blob id"));
    return path.join(this.folder, "blobs", etag);
  }

  snapshot(commit: string): string {
    if (!COMMIT.test(commit)) throw refuseName(this.source("commit"), commit, "not a commit id (40 hex digits)");
    return path.join(this.folder, "snapshots", commit);
  }

  private ref(revision: string): string {
    return containedPath(path.join(this.folder, "refs"), revision, this.source("revision"));
  }

  /** The commit a branch or tag was last seen at, or the revision itself when it is a commit. */
  resolveRef(revision: string): string | undefined {
    if (COMMIT.test(revision)) return revision;
    try {
      const commit = readFileSync(this.ref(revision), "utf8").trim();
      return COMMIT.test(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const file = this.ref(revision);
    mkdirSync(path.dirname(file), { recursive: true });
    // no newline: huggingface_hub writes and compares the bare sha
    writeFileSync(file, commit);
  }

  /** Whether the snapshot holds a file whose link leads to a complete blob. */
  has(commit: string, file: string): boolean {
    return existsSync(containedPath(this.snapshot(commit), file, this.source("listed file")));
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

  /**
   * Points snapshots/<commit>/<file> at blobs/<etag> by a relative link, as huggingface_hub does.
   * Every folder on the way must be a real folder of the snapshot: a link or a file there (another
   * listed entry of that name) would carry the write elsewhere, so it is refused in one line.
   */
  link(commit: string, file: string, etag: string): string {
    const src = this.source("listed file");
    const root = this.snapshot(commit);
    const pointer = containedPath(root, file, src);
    const blob = this.blob(etag);
    let dir = root;
    for (const seg of file.split("/").slice(0, -1)) {
      dir = path.join(dir, seg);
      let st;
      try {
        st = lstatSync(dir);
      } catch {
        break; // the rest is made below
      }
      if (!st.isDirectory()) throw refuseName(src, file, `${path.relative(root, dir)} is ${st.isSymbolicLink() ? "a link" : "a file"} in the snapshot, not a folder (two listed entries clash)`);
    }
    mkdirSync(path.dirname(pointer), { recursive: true });
    const target = path.relative(path.dirname(pointer), blob);
    const tmp = `${pointer}.${process.pid}.tmp`;
    rmSync(tmp, { force: true });
    symlinkSync(target, tmp);
    // rename over: a concurrent reader sees the old link or the new one, never none
    try {
      renameSync(tmp, pointer);
    } catch (err) {
      rmSync(tmp, { force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EISDIR" || code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOTDIR") throw refuseName(src, file, "a folder of that name is already in the snapshot (two listed entries clash)");
      throw err;
    }
    return pointer;
  }
}
