/**
 * A loopback server speaking the Hugging Face Hub's HTTP protocol as the official clients use it:
 * revision info (`/api/{models,datasets}/NS/NAME/revision/REV`, with `sha`), the paged tree listing
 * (`/tree/REV/PATH?recursive=`, a `Link: <...>; rel="next"` header per page), `paths-info`, and
 * `resolve`, which serves small files itself (ETag = git blob id) and redirects LFS files to a
 * content store (`X-Linked-Etag` = sha256, `X-Linked-Size`, `X-Repo-Commit`) that honours Range.
 * Failures carry the Hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
 *
 * It can cut a transfer mid-file, serve a corrupt blob, and require a token, and it logs every
 * request so tests can say what was (and was not) fetched.
 */
import { createHash } from "node:crypto";
import { closeSync, createReadStream, openSync, readFileSync, readSync, readdirSync, statSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

/** A CLI environment whose Hub is the loopback one at hubUrl and whose caches all live under dir. */
export const loopbackHubEnv = (hubUrl: string, dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  HF_ENDPOINT: hubUrl,
  HF_HOME: path.join(dir, "hf-home"),
  HF_HUB_CACHE: path.join(dir, "hub"),
  REWARD_EDIT_CACHE: path.join(dir, "reward-edit"),
  ...extra,
});
export interface HubFile {
  /** In memory; files too large for one Buffer are served from `path` instead (and empty here). */
  content: Buffer;
  path?: string;
  size: number;
  lfs: boolean;
  sha256: string;
  gitOid: string;
}

export interface HubRepo {
  type: "model" | "dataset";
  name: string;
  commit: string;
  branches: Record<string, string>;
  files: Map<string, HubFile>;
  /**
   * The files of other commits (a branch or a ref such as `refs/convert/parquet` pointing at them
   * in `branches`); a commit not named here has `files`.
   */
  trees?: Record<string, Map<string, HubFile>>;
  /** Downloads need this token (GatedRepo without it); listings stay public, as on the Hub. */
  gatedToken?: string;
}

export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
  /** Body bytes sent (for file transfers). */
  sent: number;
  /** The repository file a transfer belonged to. */
  file?: string;
}

const LFS_EXT = /\.(safetensors|bin|ckpt|pt|onnx|png|jpe?g|zip|gz|tgz|tar|msgpack|h5)$/i;

export function hubFile(content: Buffer, lfs = false): HubFile {
  return {
    content,
    size: content.length,
    lfs,
    sha256: createHash("sha256").update(content).digest("hex"),
    gitOid: createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex"),
  };
}

const LARGE = 1 << 30;

/** A file served from disk (a full-size UNet is past what one Buffer holds), hashed in chunks. */
function largeFile(file: string, lfs: boolean): HubFile {
  const size = statSync(file).size;
  const sha256 = createHash("sha256");
  const git = createHash("sha1").update(`blob ${size}\0`);
  const fd = openSync(file, "r");
  const chunk = Buffer.alloc(1 << 24);
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0; ) (sha256.update(chunk.subarray(0, n)), git.update(chunk.subarray(0, n)));
  } finally {
    closeSync(fd);
  }
  return { content: Buffer.alloc(0), path: file, size, lfs, sha256: sha256.digest("hex"), gitOid: git.digest("hex") };
}

/** Every file below `dir`, as repository paths under `prefix`; LFS by extension, as .gitattributes would say. */
export function filesOf(dir: string, prefix = ""): Map<string, HubFile> {
  const out = new Map<string, HubFile>();
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const full = path.join(d, e);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const rel = [prefix, path.relative(dir, full).split(path.sep).join("/")].filter(Boolean).join("/");
        out.set(rel, statSync(full).size > LARGE ? largeFile(full, LFS_EXT.test(e)) : hubFile(readFileSync(full), LFS_EXT.test(e)));
      }
    }
  };
  walk(dir);
  return out;
}

export function commitOf(seed: string): string {
  return createHash("sha1").update(seed).digest("hex");
}

export interface Faults {
  /** Repository path -> bytes after which the next transfer of it is cut (once). */
  cut: Map<string, number>;
  /** Repository paths whose content store copy has a flipped byte. */
  corrupt: Set<string>;
  /** Repository paths served whole (200) whatever Range asks, as some proxies do. */
  ignoreRange: Set<string>;
}

export class HubServer {
  readonly repos = new Map<string, HubRepo>();
  readonly log: LoggedRequest[] = [];
  readonly faults: Faults = { cut: new Map(), corrupt: new Set(), ignoreRange: new Set() };
  /** Tree entries per page: small, so the client's paging is exercised. */
  pageSize = 4;
  private server?: Server;
  url = "";

  add(repo: Omit<HubRepo, "branches" | "commit"> & { commit?: string; branches?: Record<string, string> }): HubRepo {
    const commit = repo.commit ?? commitOf(`${repo.type}:${repo.name}:${[...repo.files.keys()].join(",")}`);
    const full: HubRepo = { ...repo, commit, branches: repo.branches ?? { main: commit } };
    this.repos.set(`${repo.type}:${repo.name}`, full);
    return full;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) this.error(res, 500, "Internal", String(err));
        else res.destroy();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Requests that transferred file contents (resolve of small files, the LFS store). */
  transfers(): LoggedRequest[] {
    return this.log.filter((r) => r.file !== undefined && r.method === "GET");
  }

  private error(res: ServerResponse, status: number, code: string | null, message: string): void {
    res.writeHead(status, { "content-type": "application/json", ...(code ? { "x-error-code": code } : {}) });
    res.end(JSON.stringify({ error: message }));
  }

  private find(type: string, name: string, req: IncomingMessage, res: ServerResponse): HubRepo | undefined {
    const repo = this.repos.get(`${type}:${name}`);
    if (!repo) {
      // the Hub answers 401 to anonymous requests for repos it will not confirm exist
      this.error(res, req.headers.authorization ? 404 : 401, "RepoNotFound", "Repository not found");
      return undefined;
    }
    return repo;
  }

  private commit(repo: HubRepo, rev: string, res: ServerResponse): string | undefined {
    const r = decodeURIComponent(rev);
    const commit = r === "HEAD" ? repo.branches.main : (repo.branches[r] ?? (r === repo.commit || repo.trees?.[r] ? r : undefined));
    if (!commit) this.error(res, 404, "RevisionNotFound", `Invalid rev id: ${r}`);
    return commit;
  }

  private filesAt(repo: HubRepo, commit: string): Map<string, HubFile> {
    return repo.trees?.[commit] ?? repo.files;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const entry: LoggedRequest = { method: req.method ?? "GET", url: url.pathname + url.search, range: req.headers.range, authorization: req.headers.authorization, sent: 0 };
    this.log.push(entry);
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(p))) {
      const repo = this.find(m[1].slice(0, -1), m[2], req, res);
      const commit = repo && this.commit(repo, m[3], res);
      if (!repo || !commit) return;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          _id: commitOf(repo.name).slice(0, 24),
          id: repo.name,
          sha: commit,
          private: false,
          gated: repo.gatedToken ? "manual" : false,
          downloads: 0,
          likes: 0,
          lastModified: "2026-01-01T00:00:00.000Z",
          siblings: [...this.filesAt(repo, commit).keys()].map((rfilename) => ({ rfilename })),
        }),
      );
      return;
    }
    if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(p))) {
      const repo = this.find(m[1].slice(0, -1), m[2], req, res);
      const commit = repo && this.commit(repo, m[3], res);
      if (!repo || !commit) return;
      const under = m[4] ? decodeURIComponent(m[4]).replace(/\/$/, "") : "";
      const recursive = url.searchParams.get("recursive") === "true";
      const inside = [...this.filesAt(repo, commit).entries()].filter(([f]) => !under || f.startsWith(`${under}/`));
      if (under && inside.length === 0) return this.error(res, 404, "EntryNotFound", `${under} does not exist`);
      const entries: unknown[] = [];
      const dirs = new Set<string>();
      for (const [f, file] of inside) {
        const rest = under ? f.slice(under.length + 1) : f;
        const parts = rest.split("/");
        for (let i = 1; i < parts.length; i++) {
          const d = [under, ...parts.slice(0, i)].filter(Boolean).join("/");
          if ((recursive || i === 1) && !dirs.has(d)) {
            dirs.add(d);
            entries.push({ type: "directory", oid: commitOf(d), size: 0, path: d });
          }
        }
        if (!recursive && parts.length > 1) continue;
        entries.push({
          type: "file",
          oid: file.gitOid,
          size: file.lfs ? 134 : file.size,
          path: f,
          ...(file.lfs ? { lfs: { oid: file.sha256, size: file.size, pointerSize: 134 } } : {}),
        });
      }
      const start = Number(url.searchParams.get("cursor") ?? 0);
      const page = entries.slice(start, start + this.pageSize);
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (start + this.pageSize < entries.length) {
        const next = new URL(url);
        next.searchParams.set("cursor", String(start + this.pageSize));
        headers.link = `<${next.toString()}>; rel="next"`;
      }
      res.writeHead(200, headers);
      res.end(JSON.stringify(page));
      return;
    }
    if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/.exec(p)) && req.method === "POST") {
      const repo = this.find(m[1].slice(0, -1), m[2], req, res);
      const commit = repo && this.commit(repo, m[3], res);
      if (!repo || !commit) return;
      let body = "";
      for await (const c of req) body += c;
      const paths = (JSON.parse(body || "{}") as { paths?: string[] }).paths ?? [];
      const files = this.filesAt(repo, commit);
      const out = paths
        .filter((f) => files.has(f))
        .map((f) => {
          const file = files.get(f)!;
          return { type: "file", path: f, oid: file.gitOid, size: file.lfs ? 134 : file.size, ...(file.lfs ? { lfs: { oid: file.sha256, size: file.size, pointerSize: 134 } } : {}) };
        });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(out));
      return;
    }
    if ((m = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(p)) && (req.method === "GET" || req.method === "HEAD")) {
      const repo = this.find(m[1] ? "dataset" : "model", m[2], req, res);
      const commit = repo && this.commit(repo, m[3], res);
      if (!repo || !commit) return;
      const file = decodeURIComponent(m[4]);
      const f = this.filesAt(repo, commit).get(file);
      if (!f) return this.error(res, 404, "EntryNotFound", `${file} does not exist`);
      if (repo.gatedToken && req.headers.authorization !== `Bearer ${repo.gatedToken}`) {
        return this.error(res, 401, "GatedRepo", `Access to model ${repo.name} is restricted. You must have access to it and be authenticated to access it.`);
      }
      entry.file = file;
      if (f.lfs) {
        // the content store needs no token: the redirect carries the permission, as the Hub's signed URLs do
        res.writeHead(302, {
          location: `/lfs-store/${f.sha256}?repo=${encodeURIComponent(`${repo.type}:${repo.name}`)}&file=${encodeURIComponent(file)}`,
          "x-repo-commit": commit,
          "x-linked-etag": `"${f.sha256}"`,
          "x-linked-size": String(f.size),
          etag: `"${f.gitOid}"`,
        });
        res.end();
        entry.file = undefined; // the transfer is the store's request
        return;
      }
      this.send(req, res, entry, f.content, { etag: `"${f.gitOid}"`, "x-repo-commit": commit }, file);
      return;
    }
    if ((m = /^\/lfs-store\/([0-9a-f]{64})$/.exec(p))) {
      const repo = this.repos.get(url.searchParams.get("repo") ?? "");
      const file = url.searchParams.get("file") ?? "";
      const f = repo && [repo.files, ...Object.values(repo.trees ?? {})].map((t) => t.get(file)).find((x) => x?.sha256 === m![1]);
      if (!repo || !f) return this.error(res, 404, null, "no such object");
      entry.file = file;
      if (f.path) return this.stream(req, res, entry, f, { etag: `"${f.sha256}"` });
      let content = f.content;
      if (this.faults.corrupt.has(file)) {
        content = Buffer.from(content);
        content[content.length >> 1] ^= 0xff;
      }
      this.send(req, res, entry, content, { etag: `"${f.sha256}"` }, file);
      return;
    }
    this.error(res, 404, null, `no route ${req.method} ${p}`);
  }

  /** A file from disk, honouring `Range: bytes=N-` (no faults: those are for the in-memory files). */
  private stream(req: IncomingMessage, res: ServerResponse, entry: LoggedRequest, f: HubFile, headers: Record<string, string>): void {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, {
      ...headers,
      "accept-ranges": "bytes",
      "content-type": "application/octet-stream",
      "content-length": String(f.size - start),
      ...(range ? { "content-range": `bytes ${start}-${f.size - 1}/${f.size}` } : {}),
    });
    entry.sent = f.size - start;
    createReadStream(f.path!, { start }).pipe(res);
  }

  /** A body, honouring `Range: bytes=N-` (206) and the cut fault (the socket dies after N bytes). */
  private send(req: IncomingMessage, res: ServerResponse, entry: LoggedRequest, content: Buffer, headers: Record<string, string>, file: string): void {
    let start = 0;
    const range = this.faults.ignoreRange.has(file) ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range) start = Number(range[1]);
    if (start > content.length) {
      res.writeHead(416, { "content-range": `bytes */${content.length}` });
      res.end();
      return;
    }
    const body = content.subarray(start);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      "accept-ranges": "bytes",
      "content-type": "application/octet-stream",
      "content-length": String(body.length),
      ...(range ? { "content-range": `bytes ${start}-${content.length - 1}/${content.length}` } : {}),
    });
    if (req.method === "HEAD") return void res.end();
    const cutAt = this.faults.cut.get(file);
    if (cutAt !== undefined && cutAt - start > 0 && cutAt - start < body.length) {
      this.faults.cut.delete(file);
      const part = body.subarray(0, cutAt - start);
      entry.sent = part.length;
      // flush what was promised so far, then drop the connection mid-body
      res.write(part, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    entry.sent = body.length;
    res.end(body);
  }
}
