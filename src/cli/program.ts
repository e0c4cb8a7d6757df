/** `reward-edit`: one command for serve | edit | batch | score | rank | bench | models | tokenize (loaded by main.ts once the command line is checked). */
import { Command, CommanderError } from "commander";
import { EditInputError, ImageInputError, ModelFolderError } from "../../editor/index.js";
import { registerBatch } from "./batch.js";
import { registerBench } from "./bench.js";
import { registerEdit } from "./edit.js";
import { registerInspect } from "./inspect.js";
import { CliError } from "./errors.js";
import { registerModels } from "./models.js";
import { registerScore } from "./score.js";
import { registerServe } from "./serve.js";
import { registerTokenize } from "./tokenize.js";

export function buildProgram(): Command {
  const program = new Command("reward-edit")
    .description("Instruction-based image editing steered by reward levels (InstructPix2Pix + Multi-Reward Conditioning)")
    .version("0.1.0")
    .showHelpAfterError(false)
    .exitOverride()
    .enablePositionalOptions();
  registerEdit(program);
  registerBatch(program);
  registerTokenize(program);
  registerModels(program);
  registerScore(program);
  registerServe(program);
  registerBench(program);
  registerInspect(program);
  return program;
}

/** One clear line per failure: the user sees what to fix, never a stack trace. */
export function describeError(err: unknown): string {
  if (err instanceof ModelFolderError) {
    return `invalid model folder ${err.dir}: ${err.problems[0]}${err.problems.length > 1 ? ` (+${err.problems.length - 1} more; run: reward-edit models validate ${err.dir})` : ""}`;
  }
  if (err instanceof EditInputError) return `${err.field}: ${err.message}`;
  if (err instanceof CliError || err instanceof ImageInputError) return err.message;
  return (err as Error)?.message ?? String(err);
}

export async function runProgram(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    process.stderr.write(`reward-edit: ${describeError(err).split("\n")[0]}\n`);
    return 1;
  }
}
