/**
 * This installation's own signing credentials, for operators who have not given a certificate:
 * a small CA and a signing certificate it issued, made once and kept in the cache folder. c2pa-rs
 * refuses to sign with a self-issued end-entity certificate, hence the two. The CA's key is not
 * kept: nothing more is ever issued from it. Readers report such results as validly signed, but
 * not by a trusted issuer.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { projectCacheDir } from "../paths.js";
import { type SignerMaterial, splitPem } from "./signer.js";

const FILE = "installation-signer.pem";
const YEARS = 10;

async function issue(): Promise<SignerMaterial> {
  // @peculiar/x509's dependency injection needs the Reflect metadata polyfill, loaded before it
  await import("reflect-metadata");
  const x509 = await import("@peculiar/x509");
  const webcrypto = globalThis.crypto;
  x509.cryptoProvider.set(webcrypto);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const caKeys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const leafKeys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const id = randomBytes(4).toString("hex");
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + YEARS * 365 * 86_400_000);
  const host = os.hostname().replace(/[^\w.-]/g, "") || "localhost";
  const caName = `CN=reward-edit installation CA ${id} (self-signed; ${host}), O=reward-edit installation (not a trusted issuer)`;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `01${randomBytes(8).toString("hex")}`,
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: `01${randomBytes(8).toString("hex")}`,
    subject: `CN=reward-edit on ${host} (self-signed installation ${id}), O=reward-edit installation (not a trusted issuer)`,
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: leafKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      // C2PA's certificate profile wants an extended key usage; emailProtection is one it accepts
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.emailProtection]),
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey)).toString("base64");
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
  return { chainPem: `${leaf.toString("pem")}\n${ca.toString("pem")}\n`, keyPem };
}

export interface Installation extends SignerMaterial {
  /** Where it is kept; null when the cache folder could not be written (this process's own, then). */
  file: string | null;
  created: boolean;
}

/** The installation's credentials: read from the cache folder, or made and stored there once. */
export async function installationSigner(dir = path.join(projectCacheDir(), "c2pa")): Promise<Installation> {
  const file = path.join(dir, FILE);
  const text = await readFile(file, "utf8").catch(() => null);
  const key = text?.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/)?.[0];
  if (text && key && splitPem(text).length) return { chainPem: splitPem(text).join("\n") + "\n", keyPem: key, file, created: false };
  const made = await issue();
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // key and chain in one file, renamed into place: two processes starting at once cannot pair one's key with the other's chain
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
    await writeFile(tmp, made.keyPem + made.chainPem, { mode: 0o600 });
    await rename(tmp, file);
    return { ...made, file, created: true };
  } catch {
    return { ...made, file: null, created: true };
  }
}
