/**
 * A snapshot of chosen files of one repository at one commit, in the shared cache: the protocol
 * through the official @huggingface/hub client (revision info, the paged tree listing); the
 * transfer, resume, verification and cache layout around it (./transfer.ts, ./cache.ts).
 */
import { datasetInfo, listFiles, modelInfo, type ListFileEntry } from "@huggingface/hub";
import pLimit from "p-limit";
import { existsSync } from "node:fs";
import path from "node:path";
import { COMMIT, HubCache, type RepoId, repoLabel } from "./cache.js";
import type { HubEnv } from "./env.js";
import { HubError, type RequestContext } from "./errors.js";
import { apiFetch } from "./http.js";
import { hubLimits } from "./limits.js";
import { checkBlobName, checkName, checkRepoName, refuseName } from "./safe-path.js";
import { withLock } from "./lock.js";
import { type PullProgress, silentProgress } from "./progress.js";
import { checkSpace, downloadBlob } from "./transfer.js";

export interface RemoteFile {
  path: string;
  size: number;
  /** sha256 of an LFS file */
  sha256?: string;
  /** git blob id */
  oid?: string;
}

/** Picks the files to fetch from a listing, or says what is missing (one line each). */
export type Selector = (files: RemoteFile[]) => { files: string[]; problems: string[] };

export interface SnapshotRequest {
  repo: RepoId;
  revision?: string;
  /** List only below this folder (files keep their full repository paths). */
  under?: string;
  select: Selector;
  env: HubEnv;
  progress?: PullProgress;
  /** Files fetched at once. */
  concurrency?: number;
  fetch?: typeof fetch;
}

export interface Snapshot {
  repo: RepoId;
  revision: string;
  commit: string;
  /** snapshots/<commit> in the cache: the selected files are at their repository paths below it. */
  dir: string;
  files: string[];
  /** What this call transferred (0 when everything was cached). */
  downloaded: { files: number; bytes: number };
  offline: boolean;
}

/** A listed size: a byte count, nothing else (a string would be added as text, a negative one breaks the resume). */
function checkSize(size: unknown, file: string, owner: string): number {
  if (typeof size === "number" && Number.isSafeInteger(size) && size >= 0) return size;
  throw new HubError("server", `${owner}: the listing gives ${file} the size ${JSON.stringify(size) ?? String(size)}, not a byte count; refusing it`);
}

/** The tree listing's file entries, each name, size and id checked before any is used as a path. */
async function readListing(entries: AsyncIterable<ListFileEntry>, owner: string, maxEntries: number): Promise<RemoteFile[]> {
  const listing: RemoteFile[] = [];
  const seen = new Set<string>();
  let count = 0;
  for await (const e of entries) {
    if (++count > maxEntries) throw new HubError("too-large", `the listing of ${owner} runs past ${maxEntries} entries (REWARD_EDIT_HUB_MAX_ENTRIES); refusing it`);
    if (e?.type !== "file") continue;
    const file = checkName(e.path, { owner, what: "listed file" });
    if (seen.has(file)) throw refuseName({ owner, what: "listed file" }, file, "listed twice");
    seen.add(file);
    const size = checkSize(e.lfs ? e.lfs.size : e.size, file, owner);
    const sha256 = e.lfs ? checkBlobName(e.lfs.oid, "sha256", { owner, what: `LFS id of ${file}` }) : undefined;
    const oid = e.oid === undefined && e.lfs ? undefined : checkBlobName(e.oid, "git", { owner, what: `git id of ${file}` });
    listing.push({ path: file, size, sha256, oid });
  }
  // a name that is both a file and a folder would make one snapshot entry the way into another
  for (const f of seen) {
    const parts = f.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (seen.has(dir)) throw refuseName({ owner, what: "listed file" }, f, `${dir} is listed as a file too`);
    }
  }
  return listing;
}

function offlineSnapshot(r: SnapshotRequest, cache: HubCache, revision: string): Snapshot {
  const where = `${repoLabel(r.repo)}@${revision}`;
  const commit = cache.resolveRef(revision);
  if (!commit || !existsSync(cache.snapshot(commit))) {
    throw new HubError("offline-missing", `HF_HUB_OFFLINE=1 and ${where} is not in the cache ${r.env.cacheDir}: pull it once online (or unset HF_HUB_OFFLINE)`);
  }
  const present = cache.files(commit).map((p) => ({ path: p, size: 0 }));
  const chosen = r.select(present);
  if (chosen.problems.length) {
    throw new HubError("offline-missing", `HF_HUB_OFFLINE=1 and the cached ${where} (${commit.slice(0, 12)}) lacks: ${chosen.problems.join("; ")}`);
  }
  return { repo: r.repo, revision, commit, dir: cache.snapshot(commit), files: chosen.files, downloaded: { files: 0, bytes: 0 }, offline: true };
}

export async function snapshot(r: SnapshotRequest): Promise<Snapshot> {
  const revision = r.revision ?? "main";
  const owner = repoLabel(r.repo);
  checkRepoName(r.repo.name, r.repo.type === "dataset" ? "dataset id" : "repository id");
  checkName(revision, { owner, what: "revision" });
  // a folder to list below: slashes around it are only spelling, anything else is checked
  const under = r.under?.replace(/^\/+|\/+$/g, "") || undefined;
  if (under !== undefined) checkName(under, { owner, what: "subfolder" });
  const cache = new HubCache(r.env.cacheDir, r.repo);
  if (r.env.offline) return offlineSnapshot(r, cache, revision);
  const ctx: RequestContext = { repo: owner, revision, hasToken: Boolean(r.env.token) };
  const limits = r.env.limits ?? hubLimits();
  const hubUrl = r.env.endpoint;
  const f = apiFetch({ endpoint: hubUrl, token: r.env.token, limits, ctx, fetch: r.fetch });
  // the revision's commit first: files are then fetched by commit, so a branch that moves during
  // the pull cannot mix two versions in one snapshot
  const info = (r.repo.type === "dataset"
    ? await datasetInfo({ name: r.repo.name, revision, hubUrl, fetch: f, additionalFields: ["sha"] })
    : await modelInfo({ name: r.repo.name, revision, hubUrl, fetch: f, additionalFields: ["sha"] })) as unknown as { sha?: string };
  const commit = info.sha;
  if (!commit || !COMMIT.test(commit)) throw new HubError("server", `the Hub gave no commit for ${ctx.repo}@${revision}`);

  let listing: RemoteFile[];
  const entries: AsyncGenerator<ListFileEntry> = listFiles({ repo: r.repo, revision: commit, recursive: true, path: under, hubUrl, fetch: f });
  try {
    listing = await readListing(entries, owner, limits.maxEntries);
  } catch (err) {
    if (err instanceof HubError && err.kind === "entry-not-found" && under) {
      throw new HubError("entry-not-found", `folder ${under} not found in ${ctx.repo}@${revision}`);
    }
    throw err;
  }
  const chosen = r.select(listing);
  if (chosen.problems.length) throw new HubError("entry-not-found", `${ctx.repo}@${revision} (${commit.slice(0, 12)}): ${chosen.problems.join("; ")}`);
  const byPath = new Map(listing.map((x) => [x.path, x]));
  // a selector may name a file twice (a shard index naming a file the selection has anyway)
  const files = [...new Set(chosen.files)];
  for (const p of files) if (!byPath.has(p)) throw new HubError("entry-not-found", `${ctx.repo}@${revision} (${commit.slice(0, 12)}): ${p} is not in the listing`);
  const wanted = files.map((p) => byPath.get(p)!);
  const etag = (x: RemoteFile) => x.sha256 ?? x.oid ?? "";
  const missing = wanted.filter((x) => !cache.has(commit, x.path));
  const toFetch = missing.filter((x) => !existsSync(cache.blob(etag(x))));
  const need = toFetch.reduce((s, x) => s + x.size, 0);
  if (toFetch.length) checkSpace(path.join(cache.folder, "blobs"), need);

  const progress = r.progress ?? silentProgress;
  progress.start(need, toFetch.length);
  const prefix = r.repo.type === "dataset" ? "datasets/" : "";
  const limit = pLimit(r.concurrency ?? 4);
  try {
    await Promise.all(
      missing.map((x) =>
        limit(async () => {
          const tag = etag(x);
          if (!tag) throw new HubError("server", `the Hub listed ${x.path} without an id; cannot verify it`);
          if (!existsSync(cache.blob(tag))) {
            // another process sharing the cache may be fetching the same blob: wait for it instead
            await withLock(`${cache.blob(tag)}.lock`, async () => {
              if (existsSync(cache.blob(tag))) return void progress.bytes(x.size);
              const t0 = Date.now();
              const url = `${hubUrl}/${prefix}${r.repo.name}/resolve/${commit}/${x.path.split("/").map(encodeURIComponent).join("/")}`;
              await downloadBlob(
                { url, dest: cache.blob(tag), size: x.size, sha256: x.sha256, gitOid: x.sha256 ? undefined : x.oid, file: x.path },
                { token: r.env.token, limits, context: ctx, endpoint: hubUrl, fetch: r.fetch, onBytes: (n) => progress.bytes(n) },
              );
              progress.fileDone(x.path, x.size, Date.now() - t0);
            });
          }
          cache.link(commit, x.path, tag);
        }),
      ),
    );
  } finally {
    progress.stop();
  }
  cache.writeRef(revision, commit);
  return { repo: r.repo, revision, commit, dir: cache.snapshot(commit), files, downloaded: { files: toFetch.length, bytes: need }, offline: false };
}
