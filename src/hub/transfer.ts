/**
 * One file from the Hub into the cache's blob store: resumed from the bytes a broken transfer left
 * (HTTP Range on blobs/<etag>.incomplete, as huggingface_hub does), checked against the Hub's
 * metadata (sha256 for LFS files, the git blob sha1 for the others) before it is renamed into
 * place, so nothing unverified or half-written is ever linked into a snapshot.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, statfsSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { HubError, type RequestContext, classify, unreachable } from "./errors.js";

export interface BlobSpec {
  url: string;
  /** Where the verified file goes (blobs/<etag>). */
  dest: string;
  size: number;
  /** LFS files: the sha256 the Hub lists. */
  sha256?: string;
  /** Other files: the git blob id the Hub lists. */
  gitOid?: string;
  /** Shown in messages. */
  file: string;
}

export interface TransferOptions {
  headers: Record<string, string>;
  context: RequestContext;
  endpoint: string;
  fetch?: typeof fetch;
  /** Called with each chunk's length as it lands (resumed bytes are reported once, up front). */
  onBytes?: (n: number) => void;
  /** Transfers that break are resumed this many times before the pull gives up. */
  attempts?: number;
  retryDelayMs?: number;
}

function newHash(spec: BlobSpec): Hash {
  if (spec.sha256) return createHash("sha256");
  const h = createHash("sha1");
  // git hashes a blob with its header: "blob <size>\0"
  h.update(`blob ${spec.size}\0`);
  return h;
}

async function hashPrefix(file: string, h: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
}

function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}

const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;

export function diskFull(dir: string, need: number): HubError {
  const free = freeBytes(dir);
  return new HubError("disk-full", `disk full: ${gb(need)} more are needed in ${dir}${free === undefined ? "" : `, ${gb(free)} free`}; free space or point HF_HUB_CACHE elsewhere`);
}

/** Refuses a pull up front when the bytes still to fetch do not fit. */
export function checkSpace(dir: string, need: number): void {
  mkdirSync(dir, { recursive: true });
  const free = freeBytes(dir);
  if (free !== undefined && need > free) throw diskFull(dir, need);
}

/** Streams the response body onto the partial file, feeding the hash; returns bytes written. */
async function append(res: Response, partial: string, h: Hash, onBytes?: (n: number) => void): Promise<number> {
  const out = createWriteStream(partial, { flags: "a" });
  let written = 0;
  const closed = new Promise<void>((resolve, reject) => {
    out.on("error", reject);
    out.on("close", resolve);
  });
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      h.update(chunk);
      written += chunk.length;
      onBytes?.(chunk.length);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
    }
  } finally {
    out.end();
    await closed;
  }
  return written;
}

export async function downloadBlob(spec: BlobSpec, o: TransferOptions): Promise<void> {
  const partial = `${spec.dest}.incomplete`;
  mkdirSync(path.dirname(spec.dest), { recursive: true });
  const doFetch = o.fetch ?? fetch;
  const attempts = o.attempts ?? 5;
  // what the progress display was told: resumed bytes once, then each chunk as it lands
  let reported = 0;
  const tick = (n: number) => {
    reported += n;
    o.onBytes?.(n);
  };
  for (let attempt = 1; ; attempt++) {
    let have = existsSync(partial) ? statSync(partial).size : 0;
    if (have > spec.size) (rmSync(partial), (have = 0));
    let h = newHash(spec);
    if (have > 0) await hashPrefix(partial, h);
    if (have !== reported) tick(have - reported);
    let res: Response;
    try {
      res = await doFetch(spec.url, { headers: { ...o.headers, ...(have > 0 ? { Range: `bytes=${have}-` } : {}) }, redirect: "follow" });
    } catch (err) {
      if (attempt < attempts) {
        await sleep((o.retryDelayMs ?? 500) * attempt);
        continue;
      }
      throw unreachable(o.endpoint, err);
    }
    if (res.status === 416 && have === spec.size) {
      // the partial file is already whole: only its check is left
    } else if (!res.ok) {
      const detail = await res.text().catch(() => "");
      if (res.status >= 500 && attempt < attempts) {
        await sleep((o.retryDelayMs ?? 500) * attempt);
        continue;
      }
      throw classify({ status: res.status, code: res.headers.get("x-error-code"), url: spec.url, detail: detail.slice(0, 200) }, { ...o.context, path: spec.file });
    } else {
      if (have > 0 && res.status !== 206) {
        // the server ignored the Range and sent the whole file: take it from the start rather
        // than append a second copy
        rmSync(partial, { force: true });
        tick(-have);
        h = newHash(spec);
        have = 0;
      }
      try {
        await append(res, partial, h, tick);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOSPC") throw diskFull(path.dirname(spec.dest), spec.size - have);
        if (attempt < attempts) {
          await sleep((o.retryDelayMs ?? 500) * attempt);
          continue;
        }
        throw new HubError("incomplete", `${spec.file}: the transfer broke ${attempts} times (${statSync(partial).size} of ${spec.size} bytes kept); run the pull again to resume`);
      }
      if (statSync(partial).size < spec.size) {
        if (attempt < attempts) continue;
        throw new HubError("incomplete", `${spec.file}: the transfer ended early ${attempts} times (${statSync(partial).size} of ${spec.size} bytes kept); run the pull again to resume`);
      }
    }
    const got = h.digest("hex");
    const want = spec.sha256 ?? spec.gitOid;
    const size = statSync(partial).size;
    if (size !== spec.size || (want && got !== want)) {
      rmSync(partial, { force: true });
      throw new HubError(
        "integrity",
        `${spec.file}: downloaded ${size} bytes with ${spec.sha256 ? "sha256" : "git id"} ${got}, but the Hub lists ${spec.size} bytes with ${want}; deleted, nothing cached (a corrupt mirror or proxy?)`,
      );
    }
    renameSync(partial, spec.dest);
    return;
  }
}
