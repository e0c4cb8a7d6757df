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
import { HubError, type RequestContext } from "./errors.js";
import { type Opened, errorDetail, failure, hubRequest, readBody } from "./http.js";
import type { HubLimits } from "./limits.js";

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
  /** Sent only to the endpoint's origin (a redirect to a CDN goes without it). */
  token?: string;
  limits: HubLimits;
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

/** Streams the response body onto the partial file, feeding the hash; never past `room` bytes. */
async function append(opened: Opened, partial: string, h: Hash, room: number, spec: BlobSpec, onBytes?: (n: number) => void): Promise<number> {
  const out = createWriteStream(partial, { flags: "a" });
  const closed = new Promise<void>((resolve, reject) => {
    out.on("error", reject);
    out.on("close", resolve);
  });
  let failed: unknown;
  let written = 0;
  try {
    written = await readBody(opened, {
      maxBytes: room,
      tooMuch: (host) => new HubError("too-large", `${spec.file}: ${host} sent more than the listed size ${spec.size} B; deleted, nothing cached`),
      onChunk: async (chunk) => {
        h.update(chunk);
        onBytes?.(chunk.length);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
      },
    });
  } catch (err) {
    failed = err;
  } finally {
    out.end();
    await closed.catch((err) => void (failed ??= err));
  }
  if (failed) throw failed;
  return written;
}

const retriable = (err: unknown) => !(err instanceof HubError) || err.kind === "timeout" || err.kind === "unreachable";

export async function downloadBlob(spec: BlobSpec, o: TransferOptions): Promise<void> {
  const partial = `${spec.dest}.incomplete`;
  mkdirSync(path.dirname(spec.dest), { recursive: true });
  const attempts = o.attempts ?? 5;
  // a deadline that passed is likely to pass again: fewer tries, so the whole stays within minutes
  const timeoutTries = Math.min(attempts, o.limits.timeoutTries);
  let timeouts = 0;
  const delay = (attempt: number) => sleep((o.retryDelayMs ?? 500) * attempt);
  // what the progress display was told: resumed bytes once, then each chunk as it lands
  let reported = 0;
  const tick = (n: number) => {
    reported += n;
    o.onBytes?.(n);
  };
  const tries = (err: unknown) => (err instanceof HubError && err.kind === "timeout" ? ++timeouts < timeoutTries : true);
  for (let attempt = 1; ; attempt++) {
    let have = existsSync(partial) ? statSync(partial).size : 0;
    if (have > spec.size) (rmSync(partial), (have = 0));
    let h = newHash(spec);
    if (have > 0) await hashPrefix(partial, h);
    if (have !== reported) tick(have - reported);
    let opened: Opened;
    try {
      opened = await hubRequest(spec.url, {
        endpoint: o.endpoint,
        token: o.token,
        limits: o.limits,
        what: spec.file,
        overallMs: o.limits.fileMs,
        headers: have > 0 ? { Range: `bytes=${have}-` } : {},
        fetch: o.fetch,
      });
    } catch (err) {
      if (retriable(err) && attempt < attempts && tries(err)) {
        await delay(attempt);
        continue;
      }
      throw err;
    }
    const res = opened.res;
    if (res.status === 416 && have === spec.size) {
      // the partial file is already whole: only its check is left
      await errorDetail(opened);
    } else if (!res.ok) {
      const err = await failure(opened, { ...o.context, path: spec.file });
      if (res.status >= 500 && attempt < attempts) {
        await delay(attempt);
        continue;
      }
      throw err;
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
        await append(opened, partial, h, spec.size - have, spec, tick);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOSPC") throw diskFull(path.dirname(spec.dest), spec.size - have);
        if (err instanceof HubError && err.kind === "too-large") {
          rmSync(partial, { force: true });
          throw err;
        }
        if (retriable(err) && attempt < attempts && tries(err)) {
          await delay(attempt);
          continue;
        }
        const kept = existsSync(partial) ? statSync(partial).size : 0;
        if (err instanceof HubError) throw new HubError(err.kind, `${err.message}; ${kept} of ${spec.size} bytes kept, run the pull again to resume`);
        throw new HubError("incomplete", `${spec.file}: the transfer broke ${attempt} times (${kept} of ${spec.size} bytes kept); run the pull again to resume`);
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
