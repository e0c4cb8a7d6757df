/**
 * A hostile Hub on loopback: the routes the client uses (revision info, the tree listing,
 * `resolve`), each of which a test may answer however it likes: listings naming paths and blob
 * ids that leave the cache, sizes that are not sizes, `Link: rel="next"` to another origin, bodies
 * that never end, trickle or outgrow their listed size, headers that never come. A second instance
 * on another port plays the other origin and logs the Authorization headers it receives.
 */
import { createHash } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface Logged {
  method: string;
  url: string;
  authorization?: string;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

export interface HostileRepo {
  type: "model" | "dataset";
  name: string;
  commit: string;
  /** Raw tree entries, served in one page (unless `tree` answers instead). */
  entries: unknown[];
  /** Contents `resolve` serves, by repository path. */
  files: Map<string, Buffer>;
  revision?: Handler;
  tree?: Handler;
  /** Answers `resolve` of one file instead of its contents. */
  resolve?: Map<string, Handler>;
}

export const gitOid = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
export const commitOf = (seed: string) => createHash("sha1").update(seed).digest("hex");

/** The tree entry the Hub lists for a file (LFS files with their sha256 and real size). */
export function entry(path: string, content: Buffer, lfs = /\.(safetensors|zip|gz|tgz|tar|bin)$/.test(path)): Record<string, unknown> {
  return { type: "file", path, oid: gitOid(content), size: lfs ? 134 : content.length, ...(lfs ? { lfs: { oid: sha256(content), size: content.length, pointerSize: 134 } } : {}) };
}

export class HostileHub {
  readonly repos = new Map<string, HostileRepo>();
  readonly log: Logged[] = [];
  /** Answers every request not matched above (the other origin answers everything this way). */
  fallback?: Handler;
  private server?: Server;
  url = "";

  add(r: { type?: "model" | "dataset"; name: string; files: Map<string, Buffer>; entries?: unknown[] } & Partial<HostileRepo>): HostileRepo {
    const repo: HostileRepo = {
      type: "model",
      commit: commitOf(r.name),
      entries: r.entries ?? [...r.files].map(([p, c]) => entry(p, c)),
      ...r,
    };
    this.repos.set(`${repo.type}:${repo.name}`, repo);
    return repo;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      try {
        this.handle(req, res);
      } catch (err) {
        if (!res.headersSent) res.writeHead(500).end(String(err));
      }
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", this.url);
    this.log.push({ method: req.method ?? "GET", url: url.pathname + url.search, authorization: req.headers.authorization });
    const p = url.pathname;
    if (this.fallback && this.repos.size === 0) return this.fallback(req, res, url);
    let m: RegExpExecArray | null;
    if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(p))) {
      const repo = this.repos.get(`${m[1].slice(0, -1)}:${m[2]}`);
      if (!repo) return this.json(res, 404, { error: "Repository not found" }, { "x-error-code": "RepoNotFound" });
      if (repo.revision) return repo.revision(req, res, url);
      return this.json(res, 200, { id: repo.name, sha: repo.commit, private: false });
    }
    if ((m = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/tree\//.exec(p))) {
      const repo = this.repos.get(`${m[1].slice(0, -1)}:${m[2]}`);
      if (!repo) return this.json(res, 404, { error: "Repository not found" }, { "x-error-code": "RepoNotFound" });
      if (repo.tree) return repo.tree(req, res, url);
      return this.json(res, 200, repo.entries);
    }
    if ((m = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([0-9a-f]{40})\/(.+)$/.exec(p))) {
      const repo = this.repos.get(`${m[1] ? "dataset" : "model"}:${m[2]}`);
      const file = decodeURIComponent(m[4]);
      const custom = repo?.resolve?.get(file);
      if (custom) return custom(req, res, url);
      const content = repo?.files.get(file);
      if (!content) return this.json(res, 404, { error: `${file} does not exist` }, { "x-error-code": "EntryNotFound" });
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(content.length) });
      res.end(content);
      return;
    }
    if (this.fallback) return this.fallback(req, res, url);
    this.json(res, 404, { error: `no route ${p}` });
  }
}

/** Writes `chunk` every `ms` until the client goes away (or `limit` bytes went out). */
export function stream(res: ServerResponse, chunk: Buffer | string, ms: number, limit = Infinity): void {
  let sent = 0;
  const tick = () => {
    if (res.destroyed || res.writableEnded) return;
    if (sent >= limit) return void res.end();
    sent += chunk.length;
    const more = res.write(chunk);
    if (ms > 0) setTimeout(tick, ms);
    else if (more) setImmediate(tick);
    else res.once("drain", tick);
  };
  res.on("close", () => (sent = limit));
  tick();
}
