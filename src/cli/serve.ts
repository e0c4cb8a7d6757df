import type { Command } from "commander";
import { logger } from "../log.js";
import { startServer } from "../server/server.js";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("serve the HTTP API, the slider page and metrics (configuration by environment: see README)")
    .option("--port <n>", "port (default: $PORT or 8080)")
    .option("--model <dir>", "model folder or hub:REPO[/SUBFOLDER][@REV] (default: $REWARD_EDIT_MODEL or the bundled editor)")
    .action(async (o) => {
      const env = { ...process.env, ...(o.port ? { PORT: o.port } : {}), ...(o.model ? { REWARD_EDIT_MODEL: o.model } : {}) };
      const s = await startServer(logger, {}, env);
      process.stderr.write(`reward-edit: serving ${s.pool.model?.name} on ${s.url}\n`);
      const shutdown = (signal: string) => {
        logger.info({ signal }, "shutting down");
        s.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGTERM", () => shutdown("SIGTERM"));
      process.once("SIGINT", () => shutdown("SIGINT"));
      await new Promise(() => {}); // serve until a signal arrives
    });
}
