import type { Command } from "commander";
import { createServer } from "node:net";
import { serverConfigFrom } from "../config/server.js";
import { logger } from "../log.js";
import { startServer } from "../server/server.js";
import { CliError } from "./errors.js";

/** The one line for a port that cannot be bound (startServer has stopped its workers by then). */
function listenError(err: NodeJS.ErrnoException & { port?: number; address?: string }): CliError | null {
  if (err?.syscall !== "listen") return null;
  const where = `port ${err.port ?? "?"}${err.address ? ` on ${err.address}` : ""}`;
  if (err.code === "EADDRINUSE") return new CliError(`serve: ${where} is already in use (another server holds it: stop it, or choose --port / $PORT)`);
  if (err.code === "EACCES") return new CliError(`serve: no permission to listen on ${where} (ports below 1024 need privileges: choose --port / $PORT)`);
  if (err.code === "EADDRNOTAVAIL") return new CliError(`serve: ${where}: the address is not one of this machine's (check $HOST)`);
  return new CliError(`serve: cannot listen on ${where}: ${err.code ?? err.message}`);
}

/**
 * The port bound and let go before anything starts, so a port in use fails in a moment, before
 * the workers load; startServer still handles losing the race for it.
 */
async function probePort(c: { port: number; host: string }): Promise<void> {
  if (c.port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", (err: NodeJS.ErrnoException & { port?: number; address?: string }) => reject(listenError(err) ?? err));
    probe.listen({ port: c.port, host: c.host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("serve the HTTP API, the slider page and metrics (configuration by environment: see README)")
    .option("--port <n>", "port (default: $PORT or 8080)")
    .option("--model <dir>", "model folder or hub:REPO[/SUBFOLDER][@REV] (default: $REWARD_EDIT_MODEL or the bundled editor)")
    .action(async (o) => {
      const env = { ...process.env, ...(o.port ? { PORT: o.port } : {}), ...(o.model ? { REWARD_EDIT_MODEL: o.model } : {}) };
      await probePort(serverConfigFrom(env));
      const s = await startServer(logger, {}, env).catch((err: NodeJS.ErrnoException & { port?: number; address?: string }) => {
        throw listenError(err) ?? err;
      });
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
