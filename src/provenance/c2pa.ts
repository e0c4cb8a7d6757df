/**
 * The C2PA reference implementation (c2pa-rs compiled to WebAssembly, @contentauth/c2pa-wasm),
 * loaded once per thread. Its builder reads the asset through a browser Blob and FileReaderSync;
 * Node has Blob but no FileReaderSync, so the asset goes in as a Blob that keeps its bytes at hand
 * and a FileReaderSync that returns them synchronously.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as wasm from "@contentauth/c2pa-wasm";

const BYTES = Symbol("bytes");

class BytesBlob extends Blob {
  readonly [BYTES]: Uint8Array;
  constructor(bytes: Uint8Array) {
    super([bytes as Uint8Array<ArrayBuffer>]);
    this[BYTES] = bytes;
  }
  override slice(start?: number, end?: number): Blob {
    return new BytesBlob(this[BYTES].subarray(start ?? 0, end ?? this[BYTES].length));
  }
}

class FileReaderSyncStandIn {
  readAsArrayBuffer(blob: Blob): ArrayBuffer {
    const u = (blob as BytesBlob)[BYTES];
    if (!u) throw new TypeError("FileReaderSync stand-in: only blobs made by src/provenance/c2pa.ts can be read");
    return u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;
  }
}

let ready = false;
function init(): typeof wasm {
  if (!ready) {
    const g = globalThis as { FileReaderSync?: unknown };
    g.FileReaderSync ??= FileReaderSyncStandIn;
    const file = createRequire(import.meta.url).resolve("@contentauth/c2pa-wasm/c2pa.wasm");
    wasm.initSync({ module: readFileSync(file) });
    ready = true;
  }
  return wasm;
}

export type Mime = "image/png" | "image/jpeg" | "image/webp";

export interface CoseSigner {
  alg: "es256" | "ps256";
  reserveSize: number;
  sign(claim: Uint8Array): Promise<Uint8Array>;
}

/** Embeds a manifest built from `definition` into the asset and signs it; returns the new asset. */
export async function signAsset(definition: object, mime: Mime, asset: Uint8Array, signer: CoseSigner): Promise<Buffer> {
  const { WasmBuilder } = init();
  const builder = WasmBuilder.fromJson(JSON.stringify(definition));
  try {
    const out = await builder.sign(
      { alg: signer.alg, reserveSize: signer.reserveSize, sign: async (b) => (await signer.sign(b)) as Uint8Array<ArrayBuffer> },
      [],
      mime,
      new BytesBlob(asset),
    );
    return Buffer.from(out);
  } finally {
    builder.free();
  }
}

export interface ManifestStoreView {
  /** Parsed JSON of the store (c2pa-rs Reader::json). */
  store: {
    active_manifest?: string;
    manifests?: Record<string, ManifestView>;
    validation_state?: string;
    validation_status?: Array<{ code: string; explanation?: string }>;
    validation_results?: { activeManifest?: { success?: Status[]; failure?: Status[]; informational?: Status[] } };
  };
  active?: ManifestView;
}
type Status = { code: string; explanation?: string; url?: string };
export interface ManifestView {
  claim_generator_info?: Array<{ name?: string; version?: string }>;
  assertions?: Array<{ label: string; data: unknown }>;
  ingredients?: Array<Record<string, unknown>>;
  signature_info?: { alg?: string; issuer?: string; common_name?: string; cert_serial_number?: string };
}

/**
 * Reads and validates the manifest store of an asset; null when it carries none. `trustAnchors`
 * (PEM) are the CAs whose signatures count as trusted.
 */
export async function readStore(mime: Mime, asset: Uint8Array, trustAnchors?: string): Promise<ManifestStoreView | null> {
  const { WasmReader } = init();
  const context = trustAnchors ? JSON.stringify({ trust: { trust_anchors: trustAnchors } }) : undefined;
  let reader: wasm.WasmReader;
  try {
    reader = await WasmReader.fromBytes(mime, asset, context);
  } catch (err) {
    // c2pa-rs throws strings; no JUMBF box is "no manifest", everything else a broken one
    const m = String((err as Error)?.message ?? err);
    if (/JumbfNotFound|ProvenanceMissing/.test(m)) return null;
    return { store: { validation_state: "Invalid", validation_status: [{ code: "manifest.unreadable", explanation: m }] } };
  }
  try {
    const store = JSON.parse(reader.json()) as ManifestStoreView["store"];
    const active = store.active_manifest ? store.manifests?.[store.active_manifest] : undefined;
    return { store, active };
  } finally {
    reader.free();
  }
}
