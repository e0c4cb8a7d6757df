/** Provenance for the commands that write results (edit, batch): set up once, one line on failure. */
import { ConfigError, provenanceConfigFrom } from "../config/server.js";
import { type ProvenanceSetup, SignerSetupError, setupProvenance } from "../provenance/index.js";
import { CliError } from "./errors.js";

export async function cliProvenance(): Promise<ProvenanceSetup> {
  try {
    // the self-signed notice once, when this installation's certificate is made
    return await setupProvenance(provenanceConfigFrom(), (line, created) => {
      if (created) process.stderr.write(`reward-edit: ${line}\n`);
    });
  } catch (err) {
    if (err instanceof SignerSetupError || err instanceof ConfigError) throw new CliError((err as Error).message);
    throw err;
  }
}
