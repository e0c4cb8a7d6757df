/**
 * The claim signer c2pa-rs calls back: a COSE_Sign1 (RFC 9052) made with node:crypto. c2pa-rs
 * reserves `reserveSize` bytes for the signature box before it knows the signature, so the
 * structure is padded (unprotected "pad") to exactly that size; a shorter one would shift the
 * bytes the data hash covers.
 */
import crypto, { type KeyObject, X509Certificate } from "node:crypto";
import { Tag, encode } from "cbor2";
import type { CoseSigner } from "./c2pa.js";

/** A certificate chain or key that cannot sign: the message names the variable and what is wrong. */
export class SignerSetupError extends Error {}

/** COSE algorithm identifiers (IANA COSE Algorithms registry). */
const COSE_ALG = { es256: -7, ps256: -37 } as const;
const COSE_HEADER = { alg: 1, x5chain: 33 } as const;

export interface SignerMaterial {
  /** PEM: the signing certificate first, then its issuers. */
  chainPem: string;
  /** PEM private key of the first certificate. */
  keyPem: string;
}

export interface LoadedSigner extends CoseSigner {
  /** The signing certificate, for logs and reports (never the key). */
  subject: string;
  issuer: string;
  fingerprint256: string;
  validTo: string;
}

export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function algorithmOf(key: KeyObject): "es256" | "ps256" {
  const t = key.asymmetricKeyType;
  if (t === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return "es256";
    throw new SignerSetupError(`REWARD_EDIT_C2PA_KEY: an EC key on ${curve}; ES256 needs P-256 (prime256v1)`);
  }
  if (t === "rsa" || t === "rsa-pss") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new SignerSetupError(`REWARD_EDIT_C2PA_KEY: a ${bits}-bit RSA key; PS256 needs at least 2048 bits`);
    return "ps256";
  }
  throw new SignerSetupError(`REWARD_EDIT_C2PA_KEY: a ${t} key; C2PA signing here takes ES256 (EC P-256) or PS256 (RSA)`);
}

/**
 * Checks what can be checked without signing: PEM that parses, a key that matches the first
 * certificate, each certificate issued by the next, the signing certificate in its validity.
 */
export function loadSigner(m: SignerMaterial): LoadedSigner {
  const pems = splitPem(m.chainPem);
  if (!pems.length) throw new SignerSetupError("REWARD_EDIT_C2PA_CERT: no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
  let chain: X509Certificate[];
  try {
    chain = pems.map((p) => new X509Certificate(p));
  } catch (err) {
    throw new SignerSetupError(`REWARD_EDIT_C2PA_CERT: not a readable X.509 certificate (${(err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = crypto.createPrivateKey(m.keyPem);
  } catch (err) {
    throw new SignerSetupError(`REWARD_EDIT_C2PA_KEY: not a readable unencrypted PEM private key (${(err as Error).message.split("\n")[0]})`);
  }
  const alg = algorithmOf(key);
  const leaf = chain[0];
  if (!leaf.checkPrivateKey(key)) {
    throw new SignerSetupError(`REWARD_EDIT_C2PA_KEY does not match the certificate in REWARD_EDIT_C2PA_CERT (${leaf.subject.replace(/\n/g, ", ")})`);
  }
  if (leaf.ca) throw new SignerSetupError(`REWARD_EDIT_C2PA_CERT: the first certificate is a CA certificate; C2PA signs with an end-entity certificate (leaf first, then its issuers)`);
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i].checkIssued(chain[i + 1])) {
      throw new SignerSetupError(`REWARD_EDIT_C2PA_CERT: certificate ${i + 1} is not issued by certificate ${i + 2}; give the leaf first, then its issuers in order`);
    }
  }
  const now = Date.now();
  if (now < Date.parse(leaf.validFrom) || now > Date.parse(leaf.validTo)) {
    throw new SignerSetupError(`REWARD_EDIT_C2PA_CERT: the signing certificate is valid ${leaf.validFrom} to ${leaf.validTo}, not now`);
  }
  const x5chain = chain.map((c) => new Uint8Array(c.raw));
  const protectedHeader = encode(new Map<number, unknown>([[COSE_HEADER.alg, COSE_ALG[alg]], [COSE_HEADER.x5chain, x5chain]]));
  const signatureBytes = alg === "es256" ? 64 : (key.asymmetricKeyDetails!.modulusLength! / 8);
  const assemble = (signature: Uint8Array, pad: number) =>
    encode(new Tag(18, [protectedHeader, new Map([["pad", new Uint8Array(pad)]]), null, signature]));
  // the signature's size is fixed for the algorithm, so a few bytes of padding always reach the reserve
  const reserveSize = assemble(new Uint8Array(signatureBytes), 0).length + 16;
  return {
    alg,
    reserveSize,
    subject: leaf.subject.replace(/\n/g, ", "),
    issuer: leaf.issuer.replace(/\n/g, ", "),
    fingerprint256: leaf.fingerprint256,
    validTo: leaf.validTo,
    async sign(claim: Uint8Array): Promise<Uint8Array> {
      // Sig_structure for COSE_Sign1 with a detached payload (the claim) and no external data
      const toBeSigned = encode(["Signature1", protectedHeader, new Uint8Array(0), claim]);
      const signature =
        alg === "es256"
          ? crypto.sign("sha256", toBeSigned, { key, dsaEncoding: "ieee-p1363" })
          : crypto.sign("sha256", toBeSigned, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
      // cbor2 writes a Node Buffer as an object, not a byte string
      const sig = new Uint8Array(signature);
      const unpadded = assemble(sig, 0).length;
      // a bstr's length prefix is 1, 2 or 3 bytes: try the pad lengths that land on the reserve
      for (let pad = Math.max(0, reserveSize - unpadded - 3); pad <= reserveSize - unpadded; pad++) {
        const out = assemble(sig, pad);
        if (out.length === reserveSize) return out;
      }
      throw new Error(`COSE signature of ${unpadded} bytes cannot be padded to ${reserveSize}`);
    },
  };
}
