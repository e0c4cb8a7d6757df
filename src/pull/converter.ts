/** The Python checkpoint converter (models/convert) as a child process. */
import { spawn } from "node:child_process";
import { CONVERTER, PYTHON, QUANTIZER } from "../paths.js";

export class ConverterMissing extends Error {}

/** Where the converter's figures line goes: the terminal, stderr (inside a server), or nowhere. */
export type ConverterOutput = "inherit" | "stderr" | "ignore";

/**
 * Runs the converter; its progress and problems go to `stdio` (the CLI's terminal, or stderr when
 * the conversion runs inside the server). Resolves with the exit code.
 */
export function runConverter(args: string[], stdout: ConverterOutput = "inherit", script = CONVERTER): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [script, ...args], {
      stdio: ["ignore", stdout === "stderr" ? process.stderr : stdout, "inherit"],
      env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
    });
    child.on("error", (e) => reject(new ConverterMissing(`cannot run ${PYTHON} (${e.message}); the converter needs Python 3 with torch and onnx (Debian: python3-torch python3-onnx)`)));
    child.on("close", (code) => resolve(code ?? 1));
  });
}

/** models/convert/quantize.py FOLDER OUT [--graphs ...]: a converted folder's weights in int8. */
export const runQuantizer = (args: string[], stdout: ConverterOutput = "inherit") => runConverter(args, stdout, QUANTIZER);
