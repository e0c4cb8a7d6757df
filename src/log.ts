/** One pino logger for the application, writing JSON lines to stderr (stdout stays for command output). */
import { pino } from "pino";

export const logger = pino(
  { level: process.env.LOG_LEVEL ?? "info", redact: ["apiKey", "*.apiKey", "headers.authorization"] },
  pino.destination(2),
);
