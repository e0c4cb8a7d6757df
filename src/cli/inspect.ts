/** `reward-edit inspect RESULT`: what a result says about its making, as JSON. */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { provenanceConfigFrom } from "../config/server.js";
import { readProvenance } from "../provenance/reader.js";
import { CliError } from "./errors.js";

export async function readTrustAnchors(file: string | undefined): Promise<string | undefined> {
  const f = file ?? (provenanceConfigFrom().c2paTrustAnchors || undefined);
  if (!f) return undefined;
  try {
    return await readFile(f, "utf8");
  } catch (err) {
    throw new CliError(`cannot read trust anchors ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("print a result's provenance as JSON: its C2PA manifest as the reference reader validates it, its XMP marks and the edit parameters recorded in it")
    .argument("<result>", "an image (PNG, JPEG or WebP)")
    .option("--trust <pem>", "CA certificates to report as trusted (default: $REWARD_EDIT_C2PA_TRUST_ANCHORS)")
    .action(async (file: string, o: { trust?: string }) => {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const report = await readProvenance(bytes, await readTrustAnchors(o.trust));
      process.stdout.write(JSON.stringify({ file, ...report }, null, 2) + "\n");
    });
}
