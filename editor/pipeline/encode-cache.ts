/**
 * What an edit computes from its inputs alone, before any noise: the photo's VAE latent and the
 * prompts' text embeddings. Refinement rounds, best-of-N candidates, the OpenAI route's `n`, the
 * page's re-edits and batch rows that share a photo all edit the same photo with the same
 * instruction again; each would re-run the VAE encoder (its arena alone is about half a GB on a
 * full-size model) and the text encoder for results that cannot differ. An LRU bounded in bytes
 * keeps them, one per loaded model by default, so every caller that shares the model shares it.
 */
import { createHash } from "node:crypto";

export interface SourceLatent {
  /** [C, h, w], the encoder's mean, unscaled. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

export interface TextEmbeddings {
  text: Float32Array;
  empty: Float32Array;
  /** The pooled feedback text of a Multi-Reward model. */
  feedback?: Float32Array;
  len: number;
  dim: number;
}

type Entry = SourceLatent | TextEmbeddings;

const bytesOf = (e: Entry): number =>
  "data" in e ? e.data.byteLength : e.text.byteLength + e.empty.byteLength + (e.feedback?.byteLength ?? 0);

/** Default bound: a 512 px latent is 64 KiB, a three-prompt embedding 0.7 MiB. */
export const DEFAULT_ENCODE_CACHE_BYTES = 64 * 2 ** 20;

export interface EncodeCacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
  evictions: number;
}

/**
 * Entries are never handed out for writing: the pipeline only reads the latent and the
 * embeddings (the denoiser copies them into its batch), so a hit costs no copy.
 */
export class EncodeCache {
  private readonly map = new Map<string, Entry>();
  /** Concurrent edits of one photo wait for the first one's encoder run instead of starting their own. */
  private readonly pending = new Map<string, Promise<Entry>>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(readonly maxBytes: number = DEFAULT_ENCODE_CACHE_BYTES) {
    if (!(Number.isFinite(maxBytes) && maxBytes >= 0)) throw new RangeError("maxBytes must be a finite number >= 0");
  }

  stats(): EncodeCacheStats {
    return { entries: this.map.size, bytes: this.bytes, maxBytes: this.maxBytes, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  private get(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (e) {
      // re-insertion moves it to the young end: Map iterates in insertion order
      this.map.delete(key);
      this.map.set(key, e);
    }
    return e;
  }

  private put(key: string, e: Entry): void {
    const size = bytesOf(e);
    if (size > this.maxBytes) return; // larger than the whole bound: kept by nobody
    const old = this.map.get(key);
    if (old) {
      this.bytes -= bytesOf(old);
      this.map.delete(key);
    }
    this.map.set(key, e);
    this.bytes += size;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= bytesOf(v);
      this.evictions++;
    }
  }

  private async through<T extends Entry>(key: string, compute: () => Promise<T>): Promise<T> {
    const hit = this.get(key);
    if (hit) {
      this.hits++;
      return hit as T;
    }
    const waiting = this.pending.get(key);
    if (waiting) {
      this.hits++;
      return (await waiting) as T;
    }
    this.misses++;
    const p = compute();
    this.pending.set(key, p);
    try {
      const v = await p;
      this.put(key, v);
      return v;
    } finally {
      this.pending.delete(key);
    }
  }

  latent(key: string, compute: () => Promise<SourceLatent>): Promise<SourceLatent> {
    return this.through(`latent:${key}`, compute);
  }

  embeddings(key: string, compute: () => Promise<TextEmbeddings>): Promise<TextEmbeddings> {
    return this.through(`text:${key}`, compute);
  }
}

/** Distinguishes loaded models: two loads of one folder are two models, and a cache passed to both keeps them apart. */
const modelIds = new WeakMap<object, number>();
let nextModelId = 1;
export function modelKey(model: object): string {
  let id = modelIds.get(model);
  if (id === undefined) modelIds.set(model, (id = nextModelId++));
  return String(id);
}

const defaultCaches = new WeakMap<object, EncodeCache>();
let defaultBytes = DEFAULT_ENCODE_CACHE_BYTES;

/** The bound of the caches made from now on for models without one (REWARD_EDIT_ENCODE_CACHE_MB); 0 turns them off. */
export function setDefaultEncodeCacheBytes(bytes: number): void {
  if (!(Number.isFinite(bytes) && bytes >= 0)) throw new RangeError("bytes must be a finite number >= 0");
  defaultBytes = bytes;
}

/** The model's own cache, made on first use; null when the default bound is 0. */
export function modelEncodeCache(model: object): EncodeCache | null {
  let c = defaultCaches.get(model);
  if (!c) {
    if (defaultBytes === 0) return null;
    defaultCaches.set(model, (c = new EncodeCache(defaultBytes)));
  }
  return c;
}

export function hashParts(...parts: Array<string | Buffer | number>): string {
  const h = createHash("sha256");
  for (const p of parts) {
    const b = Buffer.isBuffer(p) ? p : Buffer.from(String(p), "utf8");
    // length-prefixed, so ("ab", "c") and ("a", "bc") differ
    h.update(String(b.length)).update(":").update(b);
  }
  return h.digest("hex");
}
