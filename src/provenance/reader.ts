/**
 * What a file says about its own making: the C2PA manifest as the reference reader validates it,
 * the XMP marks, and our recorded parameters. Used by `inspect`, `score` and /v1/scores (a
 * catalogue audit: is this one of ours, and is it intact?).
 */
import { type Mime, readStore } from "./c2pa.js";
import { PARAMETERS_LABEL, type RecordedParameters } from "./parameters.js";
import { findXmp, parseXmp } from "./xmp.js";

export interface ProvenanceReport {
  format: "png" | "jpeg" | "webp" | null;
  c2pa: {
    /** The active manifest was made by reward-edit. */
    ours: boolean;
    /** c2pa-rs's validation state: Invalid, Valid (signature and bindings hold) or Trusted (and the issuer is a trust anchor). */
    state: string;
    valid: boolean;
    trusted: boolean;
    /** Failure codes other than an untrusted issuer, e.g. assertion.dataHash.mismatch when pixels changed. */
    failures: Array<{ code: string; explanation?: string }>;
    signer: { issuer?: string; common_name?: string; alg?: string } | null;
    digital_source_type: string | null;
    generator: string | null;
  } | null;
  xmp: { digital_source_type: string | null; creator_tool: string | null } | null;
  parameters: RecordedParameters | null;
}

export function sniffFormat(b: Uint8Array): ProvenanceReport["format"] {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length > 8 && buf.readUInt32BE(0) === 0x89504e47) return "png";
  if (buf.length > 3 && buf[0] === 0xff && buf[1] === 0xd8) return "jpeg";
  if (buf.length > 12 && buf.toString("latin1", 0, 4) === "RIFF" && buf.toString("latin1", 8, 12) === "WEBP") return "webp";
  return null;
}

const MIMES: Record<"png" | "jpeg" | "webp", Mime> = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" };

export async function readProvenance(bytes: Uint8Array, trustAnchors?: string): Promise<ProvenanceReport> {
  const format = sniffFormat(bytes);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const packet = format ? findXmp(buf) : null;
  const x = packet ? parseXmp(packet) : null;
  const xmp = x && (x.digitalSourceType || x.creatorTool) ? { digital_source_type: x.digitalSourceType ?? null, creator_tool: x.creatorTool ?? null } : null;
  let parameters: RecordedParameters | null = null;
  let c2pa: ProvenanceReport["c2pa"] = null;
  const view = format ? await readStore(MIMES[format], bytes, trustAnchors) : null;
  if (view) {
    const s = view.store;
    const failures = [
      ...(s.validation_results?.activeManifest?.failure ?? []),
      ...(s.validation_results ? [] : (s.validation_status ?? [])),
    ]
      .filter((f) => f.code !== "signingCredential.untrusted")
      .map((f) => ({ code: f.code, explanation: f.explanation }));
    const state = s.validation_state ?? (failures.length ? "Invalid" : "Valid");
    const a = view.active;
    const actions = (a?.assertions?.find((x) => x.label.startsWith("c2pa.actions"))?.data as { actions?: Array<{ action: string; digitalSourceType?: string }> } | undefined)?.actions ?? [];
    const gen = a?.claim_generator_info?.[0];
    parameters = (a?.assertions?.find((x) => x.label === PARAMETERS_LABEL)?.data as RecordedParameters | undefined) ?? null;
    c2pa = {
      ours: gen?.name === "reward-edit",
      state,
      valid: state !== "Invalid" && failures.length === 0,
      trusted: state === "Trusted",
      failures,
      signer: a?.signature_info ? { issuer: a.signature_info.issuer, common_name: a.signature_info.common_name, alg: a.signature_info.alg } : null,
      digital_source_type: actions.find((x) => x.digitalSourceType)?.digitalSourceType ?? null,
      generator: gen ? `${gen.name ?? "?"} ${gen.version ?? ""}`.trim() : null,
    };
  }
  if (!parameters && x?.parameters) {
    try {
      parameters = JSON.parse(x.parameters) as RecordedParameters;
    } catch {
      parameters = null;
    }
  }
  return { format, c2pa, xmp, parameters };
}
