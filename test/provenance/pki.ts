/** Test certificates made with openssl, as an operator would: a CA, and signing certificates it issues. */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { tempDir } from "../helpers.js";

const openssl = (args: string[], cwd: string) => execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });

export interface TestPki {
  dir: string;
  ca: string;
  /** leaf then CA, and the leaf's key: ES256 (P-256) */
  chain: string;
  key: string;
  /** PS256 (RSA 2048) signing certificate from the same CA */
  rsaChain: string;
  rsaKey: string;
  /** a key of another P-256 pair: does not match `chain` */
  otherKey: string;
  /** an Ed25519 key and a certificate for it: a type C2PA signing here does not take */
  edChain: string;
  edKey: string;
}

export function makePki(): TestPki {
  const dir = tempDir("reward-edit-pki-");
  writeFileSync(path.join(dir, "leaf.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n");
  writeFileSync(path.join(dir, "ca.cnf"), "[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n");
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"], dir);
  openssl(["req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "30", "-subj", "/CN=Test Provenance CA/O=reward-edit tests", "-config", "ca.cnf", "-extensions", "v3_ca", "-out", "ca.pem"], dir);
  const leaf = (name: string, keyArgs: string[], cn: string) => {
    openssl(["genpkey", ...keyArgs, "-out", `${name}.key`], dir);
    openssl(["req", "-new", "-key", `${name}.key`, "-subj", `/CN=${cn}/O=reward-edit tests`, "-out", `${name}.csr`], dir);
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "leaf.ext", "-out", `${name}.pem`], dir);
    writeFileSync(path.join(dir, `${name}-chain.pem`), execFileSync("cat", [`${name}.pem`, "ca.pem"], { cwd: dir }));
  };
  leaf("ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "Test ES256 signer");
  leaf("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "Test PS256 signer");
  leaf("ed", ["-algorithm", "ED25519"], "Test Ed25519 signer");
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key"], dir);
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    ca: p("ca.pem"),
    chain: p("ec-chain.pem"),
    key: p("ec.key"),
    rsaChain: p("rsa-chain.pem"),
    rsaKey: p("rsa.key"),
    otherKey: p("other.key"),
    edChain: p("ed-chain.pem"),
    edKey: p("ed.key"),
  };
}
