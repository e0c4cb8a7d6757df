/**
 * The CLI's entry: the command line is checked before the commands are imported, because they
 * load onnxruntime-node, which crashes with a signal (no message) on a very long command line.
 */
import { checkArgv } from "../limits.js";

export async function main(argv: string[]): Promise<number> {
  const problem = checkArgv(argv.slice(2));
  if (problem) {
    process.stderr.write(`reward-edit: ${problem}\n`);
    return 1;
  }
  const { runProgram } = await import("./program.js");
  return runProgram(argv);
}
