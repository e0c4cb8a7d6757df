import type { Command } from "commander";
import { CLIPTokenizer } from "../../editor/index.js";
import { defaultModelDir } from "../paths.js";
import path from "node:path";

export function registerTokenize(program: Command): void {
  program
    .command("tokenize")
    .description("print the 77 CLIP token ids of a text as one JSON array")
    .option("--tokenizer <dir>", "tokenizer folder (vocab.json, merges.txt); default: the default model's")
    .argument("<text>", "text to tokenize")
    .action(async (text: string, o) => {
      const tok = await CLIPTokenizer.fromFolder(o.tokenizer ?? path.join(defaultModelDir(), "tokenizer"));
      process.stdout.write(JSON.stringify(tok.encode(text)) + "\n");
    });
}
