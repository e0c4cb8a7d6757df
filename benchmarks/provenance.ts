/**
 * What content credentials cost per result (docs/provenance.md): bytes added and milliseconds
 * per marked result (XMP inserted, the asset hashed, the manifest built, signed and embedded) for
 * each format at the sizes results come in, and the COSE signature alone. Run:
 *   npm run bench:provenance        (ES256 with this installation's certificate; --json for raw figures)
 * Set REWARD_EDIT_C2PA_CERT / REWARD_EDIT_C2PA_KEY to measure an operator's (PS256) certificate.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";
import type { EditResult, OutputFormat } from "../editor/index.js";
import { provenanceConfigFrom } from "../src/config/server.js";
import { ROOT } from "../src/paths.js";
import { createMarker, setupProvenance } from "../src/provenance/index.js";
import { loadSigner } from "../src/provenance/signer.js";

const RUNS = 20;
const SIZES = [512, 1024, 2048];
const FORMATS: OutputFormat[] = ["png", "jpeg", "webp"];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A photo at a given long side, encoded as the editor encodes results. */
async function result(side: number, format: OutputFormat): Promise<Buffer> {
  const img = sharp(readFileSync(path.join(ROOT, "src", "benchmark", "sample", "images", "coffee.png"))).resize(side, Math.round((side * 2) / 3), { fit: "fill" });
  return format === "png" ? img.png().toBuffer() : format === "jpeg" ? img.jpeg({ quality: 92 }).toBuffer() : img.webp({ quality: 92 }).toBuffer();
}

const parameters: EditResult["parameters"] = {
  instruction: "make the mug red",
  rewards: [5, 5, 5],
  rewardsApplied: true,
  feedback: "None; None; None",
  steps: 8,
  textGuidance: 7.5,
  imageGuidance: 1,
  seed: 7,
  scheduler: "dpmpp-2m",
  karrasSigmas: false,
  guidanceInterval: [1, 15],
  adaptiveGuidance: null,
  cacheInterval: 2,
  model: "mrc",
  workingWidth: 512,
  workingHeight: 344,
  detail: "keep",
  maskMode: null,
};

async function main() {
  const setup = await setupProvenance({ ...provenanceConfigFrom(), c2pa: "on" }, (l) => process.stderr.write(`${l}\n`));
  const signer = loadSigner(setup!.signer);
  const marker = createMarker(setup);
  const source = await result(1024, "jpeg");
  const rows: Array<{ format: OutputFormat; side: number; bytes: number; added: number; ms: number }> = [];
  let firstMs = 0;
  for (const side of SIZES) {
    for (const format of FORMATS) {
      const bytes = await result(side, format);
      const ctx = { parameters, preset: "fast", maskSha256: null, format, model: { name: "mrc", digest: `sha256:${"0".repeat(64)}` }, source };
      const ms: number[] = [];
      let out: Buffer = Buffer.alloc(0);
      for (let i = 0; i <= RUNS; i++) {
        const t = performance.now();
        out = await marker.markResult(bytes, format, ctx);
        const dt = performance.now() - t;
        if (i === 0 && !firstMs) firstMs = dt;
        if (i > 0) ms.push(dt);
      }
      rows.push({ format, side, bytes: bytes.length, added: out.length - bytes.length, ms: median(ms) });
    }
  }
  const claim = new Uint8Array(2000);
  const sig: number[] = [];
  for (let i = 0; i <= RUNS * 5; i++) {
    const t = performance.now();
    await signer.sign(claim);
    if (i > 0) sig.push(performance.now() - t);
  }
  if (process.argv.includes("--json")) {
    process.stdout.write(JSON.stringify({ alg: signer.alg, reserveSize: signer.reserveSize, firstMs, signatureMs: median(sig), rows }, null, 2) + "\n");
    return;
  }
  process.stdout.write(`signer ${signer.alg}, COSE signature box ${signer.reserveSize} bytes; COSE signature alone ${median(sig).toFixed(2)} ms; first result in a process ${firstMs.toFixed(0)} ms (WebAssembly start)\n\n`);
  process.stdout.write("| format | long side | result bytes | bytes added | ms per marked result (median of 20) |\n| --- | --- | --- | --- | --- |\n");
  for (const r of rows) process.stdout.write(`| ${r.format} | ${r.side} | ${r.bytes} | ${r.added} | ${r.ms.toFixed(1)} |\n`);
}

await main();
