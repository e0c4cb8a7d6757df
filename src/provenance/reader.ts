/**
 * What a file says about its own making: the C2PA manifest as the reference reader validates it,
 * the XMP marks, and our recorded parameters. Used by `inspect`, `score` and /v1/scores (a
 * catalogue audit: is this one of ours, and is it intact?).
 */
import { type Mime, readStore } from "./c2pa.js";
import { PARAMETERS_LABEL, type ParametersProblem, type RecordedParameters, checkRecordedParameters, parseParametersJson } from "./parameters.js";
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
  /** The recorded parameters, checked like a request's fields (parameters.ts); null when absent or invalid. */
  parameters: RecordedParameters | null;
  /**
   * True only when they come from a C2PA manifest whose signature and bindings hold; the XMP
   * copy is unsigned, so anyone could have written it.
   */
  parameters_signed: boolean;
  /** Where they were read: the C2PA manifest's assertion, the XMP, or nowhere. */
  parameters_source: "c2pa" | "xmp" | null;
  /** What was wrong with embedded parameters that were not taken. */
  parameters_problem: ParametersProblem | null;
  /** A reader's warning, set whenever parameters are present but not signed. */
  parameters_note?: string;
}

const UNSIGNED_NOTE = "these parameters are not covered by a valid C2PA signature (the XMP copy is unsigned): anyone could have written them; they were checked as a request's fields are, not trusted";

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
  let embedded: { value: unknown; source: "c2pa" | "xmp" } | null = null;
  let problem: ParametersProblem | null = null;
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
    const assertion = a?.assertions?.find((x) => x.label === PARAMETERS_LABEL);
    if (assertion) embedded = { value: assertion.data, source: "c2pa" };
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
  if (!embedded && x?.parameters !== undefined) {
    const parsed = parseParametersJson(x.parameters);
    if ("value" in parsed) embedded = { value: parsed.value, source: "xmp" };
    else problem = parsed.problem;
  }
  let parameters: RecordedParameters | null = null;
  if (embedded) {
    const checked = checkRecordedParameters(embedded.value);
    if ("parameters" in checked) parameters = checked.parameters;
    else problem = checked.problem;
  }
  const source = embedded?.source ?? (problem ? "xmp" : null);
  const signed = source === "c2pa" && c2pa !== null && c2pa.valid;
  return {
    format,
    c2pa,
    xmp,
    parameters,
    parameters_signed: signed,
    parameters_source: source,
    parameters_problem: problem,
    ...(source && !signed ? { parameters_note: UNSIGNED_NOTE } : {}),
  };
}
