import type { Command } from "commander";
import { inspectModelFolder } from "../../editor/index.js";

export function registerModels(program: Command): void {
  const models = program.command("models").description("inspect model folders");
  models
    .command("validate")
    .description("check a model folder: files, ONNX inputs, dtypes, ranks, reward inputs")
    .argument("<dir>", "model folder")
    .action(async (dir: string) => {
      const report = await inspectModelFolder(dir);
      await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
      if (report.problems.length > 0) {
        for (const p of report.problems) process.stdout.write(`problem: ${p}\n`);
        process.stdout.write(`${dir}: ${report.problems.length} problem(s)\n`);
        process.exitCode = 1;
        return;
      }
      const m = report.manifest!;
      const rewards = m.rewards ? `rewards [${m.rewards.perspectives.join(", ")}]` : "no reward inputs";
      process.stdout.write(`ok: ${m.name} (${m.resolution}px, ${m.latent_channels}-channel latents, ${rewards})\n`);
    });
}
