/**
 * Content credentials on every result (issue 32): a signed C2PA manifest saying the image was
 * edited by AI, by whom and how, and the same facts in XMP. The output paths call `markResult`
 * on the encoded image; `setupProvenance` runs once where a process starts (server, CLI) and
 * checks the credentials, so a bad certificate stops start-up instead of failing every result.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { OutputFormat } from "../../editor/index.js";
import type { EditMask } from "../../raster/mask.js";
import type { ProvenanceConfig } from "../config/server.js";
import { VERSION } from "../paths.js";
import { type Mime, readStore, signAsset } from "./c2pa.js";
import { PARAMETERS_LABEL, type EditFacts, type RecordedParameters, recordParameters } from "./parameters.js";
import { readProvenance } from "./reader.js";
import { installationSigner } from "./self-signed.js";
import { type LoadedSigner, type SignerMaterial, SignerSetupError, loadSigner } from "./signer.js";
import { insertXmp, xmpPacket } from "./xmp.js";

export { SignerSetupError } from "./signer.js";
export type { EditFacts, RecordedParameters } from "./parameters.js";

/** IPTC digital source type for an AI edit of a real photo. */
export const DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia";
export const MIME: Record<OutputFormat, Mime> = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" };

/**
 * What a thread needs to mark results: plain data, so the server hands it to its inference
 * workers. null: provenance is off.
 */
export type ProvenanceSetup = {
  signer: SignerMaterial;
  /** Record the instruction (REWARD_EDIT_PROVENANCE_PARAMETERS). */
  instruction: boolean;
  /** Only the installation's own certificate signs (for the log line and reports). */
  selfSigned: boolean;
  /** PEM CAs the reader trusts (REWARD_EDIT_C2PA_TRUST_ANCHORS). */
  trustAnchors?: string;
} | null;

async function readPem(variable: string, file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new SignerSetupError(`${variable}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A tiny image signed and read back: c2pa-rs's own checks of the certificate (profile, algorithm) run before any edit. */
async function trialSign(signer: LoadedSigner): Promise<void> {
  // 1x1 grey PNG
  const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==", "base64");
  let signed: Buffer;
  try {
    signed = await signAsset(manifestDefinition({ title: "probe.png", mime: "image/png", sourceSha256: "0".repeat(64) }), "image/png", png, signer);
  } catch (err) {
    throw new SignerSetupError(`REWARD_EDIT_C2PA_CERT: c2pa-rs cannot sign with this certificate: ${String((err as Error)?.message ?? err).split("\n")[0]}`);
  }
  const store = await readStore("image/png", signed);
  const failures = (store?.store.validation_results?.activeManifest?.failure ?? []).filter((s) => s.code !== "signingCredential.untrusted");
  if (failures.length) throw new SignerSetupError(`REWARD_EDIT_C2PA_CERT: c2pa-rs rejects signatures made with this certificate: ${failures[0].code} (${failures[0].explanation ?? ""})`);
}

/**
 * Reads the operator's certificate and key (or makes the installation's own), checks them and
 * returns what markers need; `log` gets the one line a self-signed installation deserves.
 */
export async function setupProvenance(c: ProvenanceConfig, log: (line: string, created: boolean) => void = () => {}): Promise<ProvenanceSetup> {
  if (c.c2pa === "off") return null;
  const trustAnchors = c.c2paTrustAnchors ? await readPem("REWARD_EDIT_C2PA_TRUST_ANCHORS", c.c2paTrustAnchors) : undefined;
  let material: SignerMaterial;
  let selfSigned = false;
  if (c.c2paCert || c.c2paKey) {
    if (!c.c2paCert || !c.c2paKey) throw new SignerSetupError(`${c.c2paCert ? "REWARD_EDIT_C2PA_KEY" : "REWARD_EDIT_C2PA_CERT"} is not set: give both the certificate chain and its key, or neither`);
    material = { chainPem: await readPem("REWARD_EDIT_C2PA_CERT", c.c2paCert), keyPem: await readPem("REWARD_EDIT_C2PA_KEY", c.c2paKey) };
  } else {
    const own = await installationSigner();
    material = own;
    selfSigned = true;
    log(
      `results are signed (C2PA) with this installation's self-signed certificate${own.file ? ` (${own.file})` : " (held in memory: the cache folder is not writable)"}; ` +
        "readers report them as validly signed but not by a trusted issuer: set REWARD_EDIT_C2PA_CERT and REWARD_EDIT_C2PA_KEY to sign as your organisation",
      own.created,
    );
  }
  await trialSign(loadSigner(material));
  return { signer: material, instruction: c.provenanceParameters === "on", selfSigned, trustAnchors };
}

interface ManifestInput {
  title: string;
  mime: Mime;
  sourceSha256: string;
  parameters?: object;
  model?: { name: string; digest: string | null };
  resized?: { width: number; height: number };
}

/**
 * c2pa.opened with the source photo as parent ingredient (known by its hash, no copy of it),
 * then c2pa.edited by reward-edit with the trained-algorithmic-media source type.
 */
function manifestDefinition(m: ManifestInput): object {
  const agent = { name: "reward-edit", version: VERSION };
  return {
    claim_generator_info: [agent],
    title: m.title,
    format: m.mime,
    ingredients: [{ title: "source photo", relationship: "parentOf", label: "source", instance_id: `sha256:${m.sourceSha256}` }],
    assertions: [
      {
        label: "c2pa.actions.v2",
        data: {
          actions: [
            { action: "c2pa.opened", parameters: { ingredientIds: ["source"] } },
            {
              action: "c2pa.edited",
              description: "edited by an instruction-based diffusion model",
              digitalSourceType: DIGITAL_SOURCE_TYPE,
              softwareAgent: agent,
              ...(m.model ? { parameters: { "org.reward-edit.model": m.model.name, "org.reward-edit.model_digest": m.model.digest } } : {}),
            },
            ...(m.resized ? [{ action: "c2pa.resized", softwareAgent: agent, parameters: { width: m.resized.width, height: m.resized.height } }] : []),
          ],
        },
      },
      ...(m.parameters ? [{ label: PARAMETERS_LABEL, data: m.parameters }] : []),
    ],
  };
}

export interface Marker {
  /** False with REWARD_EDIT_C2PA=off: results pass through untouched. */
  readonly enabled: boolean;
  markResult(bytes: Uint8Array, format: OutputFormat, context: EditFacts): Promise<Buffer>;
  /**
   * A marked result scaled afterwards (the OpenAI route's `size`): the scaled image gets the
   * original's record plus a c2pa.resized action.
   */
  markResized(marked: Uint8Array, resized: Uint8Array, format: OutputFormat, size: { width: number; height: number }): Promise<Buffer>;
}

/** The marker of one thread: loads the signer once; signing happens per result. */
export function createMarker(setup: ProvenanceSetup): Marker {
  if (!setup) return { enabled: false, markResult: async (bytes) => Buffer.from(bytes), markResized: async (_m, bytes) => Buffer.from(bytes) };
  const signer = loadSigner(setup.signer);
  const mark = (bytes: Uint8Array, format: OutputFormat, parameters: RecordedParameters, resized?: { width: number; height: number }) => {
    const withXmp = insertXmp(
      Buffer.from(bytes),
      format,
      xmpPacket({ digitalSourceType: DIGITAL_SOURCE_TYPE, creatorTool: `reward-edit ${VERSION}`, parameters: JSON.stringify(parameters) }),
    );
    const definition = manifestDefinition({
      title: `reward-edit result.${format === "jpeg" ? "jpg" : format}`,
      mime: MIME[format],
      sourceSha256: parameters.source_sha256,
      parameters,
      model: parameters.model,
      resized,
    });
    return signAsset(definition, MIME[format], withXmp, signer);
  };
  return {
    enabled: true,
    markResult: (bytes, format, context) => mark(bytes, format, recordParameters(context, setup.instruction)),
    async markResized(marked, resized, format, size) {
      const recorded = (await readProvenance(marked)).parameters;
      if (!recorded) throw new Error("markResized: the result carries no recorded parameters");
      return mark(resized, format, { ...recorded, format }, size);
    },
  };
}

const digests = new Map<string, Promise<string | null>>();

/** A model folder named by its manifest's hash (reward-edit.json lists the graphs and their settings). */
export function modelDigest(dir: string): Promise<string | null> {
  let d = digests.get(dir);
  if (!d) {
    d = readFile(path.join(dir, "reward-edit.json")).then(
      (b) => `sha256:${createHash("sha256").update(b).digest("hex")}`,
      () => null,
    );
    digests.set(dir, d);
  }
  return d;
}

/** A decoded edit mask named by its pixels, so the CLI's file and the server's upload of one mask agree. */
export function maskDigest(mask: EditMask | undefined): string | null {
  if (!mask || mask.full) return null;
  return createHash("sha256").update(`${mask.width}x${mask.height}:`).update(mask.data).digest("hex");
}
