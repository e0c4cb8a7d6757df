/** ONNX Runtime session settings from the environment, shared by every entry point. */
import type { SessionOptions } from "../../editor/index.js";
import { logger } from "../log.js";

export function sessionOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SessionOptions {
  const providers = (env.REWARD_EDIT_PROVIDERS ?? "cpu").split(",").map((p) => p.trim()).filter(Boolean);
  const threads = env.ORT_THREADS ? Number(env.ORT_THREADS) : undefined;
  return {
    providers,
    intraOpThreads: threads && Number.isInteger(threads) && threads > 0 ? threads : undefined,
    log: (m) => logger.warn(m),
  };
}
