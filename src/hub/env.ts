/**
 * The Hugging Face Hub's own environment conventions (the ones huggingface_hub and diffusers read),
 * so a machine set up for them is set up for us: one cache, one token, one mirror setting.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type HubLimits, hubLimits } from "./limits.js";

export interface HubEnv {
  /** Base URL of the Hub or a mirror (HF_ENDPOINT), without a trailing slash. */
  endpoint: string;
  /** The hub cache folder: models--ns--name/{blobs,snapshots,refs} live in it. */
  cacheDir: string;
  token?: string;
  /** HF_HUB_OFFLINE: answer from the cache alone, never make a request. */
  offline: boolean;
  /** Deadlines and caps (REWARD_EDIT_HUB_*); absent: read from process.env. */
  limits?: HubLimits;
}

const TRUE = new Set(["1", "on", "yes", "true"]);

/** HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HOME) return env.HF_HOME;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "huggingface");
}

/** HF_HUB_CACHE (or its older name HUGGINGFACE_HUB_CACHE), else HF_HOME/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || path.join(hfHome(env), "hub");
}

/** HF_TOKEN, else the file `huggingface-cli login` writes (HF_TOKEN_PATH, else HF_HOME/token). */
export function hubToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const direct = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim();
  if (direct) return direct;
  try {
    const fromFile = readFileSync(env.HF_TOKEN_PATH || path.join(hfHome(env), "token"), "utf8").trim();
    return fromFile || undefined;
  } catch {
    return undefined;
  }
}

export function hubEnv(env: NodeJS.ProcessEnv = process.env): HubEnv {
  return {
    endpoint: (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, ""),
    cacheDir: hubCacheDir(env),
    token: hubToken(env),
    offline: TRUE.has((env.HF_HUB_OFFLINE ?? "").trim().toLowerCase()),
    limits: hubLimits(env),
  };
}
