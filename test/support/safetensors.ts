/** Reads the tensors of a .safetensors file (the golden inputs and outputs) as typed arrays. */
import { readFileSync } from "node:fs";

export interface StoredTensor {
  dtype: "F32" | "I64";
  dims: number[];
  data: Float32Array | BigInt64Array;
}

export function readSafetensors(file: string): Record<string, StoredTensor> {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out: Record<string, StoredTensor> = {};
  for (const [name, h] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const bytes = buf.subarray(8 + n + h.data_offsets[0], 8 + n + h.data_offsets[1]);
    const copy = new Uint8Array(bytes).buffer; // aligned
    if (h.dtype === "F32") out[name] = { dtype: "F32", dims: h.shape, data: new Float32Array(copy) };
    else if (h.dtype === "I64") out[name] = { dtype: "I64", dims: h.shape, data: new BigInt64Array(copy) };
    else throw new Error(`${file}: ${name} has dtype ${h.dtype}, which this reader does not handle`);
  }
  return out;
}

/** max |a - b| / max |b|: one number per output, insensitive to where the values sit. */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}
