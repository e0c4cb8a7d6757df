/**
 * How long and how much the client waits for and takes from a Hub (or anything posing as one):
 * every request has a deadline for its headers and for each stretch of its body, API answers have
 * an overall deadline and a byte cap, listings a page and entry cap. The defaults suit a slow link;
 * files have no overall deadline (a 5 GB UNet on a slow line takes what it takes) but may never
 * outgrow their listed size.
 */
import { HubError } from "./errors.js";

export interface HubLimits {
  /** Connection + response headers, per request (and per redirect hop). 0: none. */
  headersMs: number;
  /** Longest stretch of a body without progress (less than 1 KiB, or the rest of it). 0: none. */
  idleMs: number;
  /** Whole API request (revision info, one listing page), headers to last byte. 0: none. */
  apiMs: number;
  /** Whole transfer of one file, per try. 0: none (the default). */
  fileMs: number;
  maxJsonBytes: number;
  maxPages: number;
  maxEntries: number;
  /** Tries of a file transfer whose failures were timeouts (each costs a deadline). */
  timeoutTries: number;
}

interface Knob {
  env: string;
  key: keyof HubLimits;
  unit: "s" | "count" | "bytes";
  def: number;
  doc: string;
}

export const HUB_LIMIT_VARS: Knob[] = [
  { env: "REWARD_EDIT_HUB_HEADERS_TIMEOUT", key: "headersMs", unit: "s", def: 30, doc: "seconds to connect and get a response's headers" },
  { env: "REWARD_EDIT_HUB_IDLE_TIMEOUT", key: "idleMs", unit: "s", def: 60, doc: "seconds a body may go without progress (1 KiB)" },
  { env: "REWARD_EDIT_HUB_TIMEOUT", key: "apiMs", unit: "s", def: 120, doc: "seconds for a whole API request (revision info, one listing page)" },
  { env: "REWARD_EDIT_HUB_FILE_TIMEOUT", key: "fileMs", unit: "s", def: 0, doc: "seconds for a whole file transfer (0: none)" },
  { env: "REWARD_EDIT_HUB_MAX_JSON_BYTES", key: "maxJsonBytes", unit: "bytes", def: 32 * 1024 * 1024, doc: "bytes of one API answer" },
  { env: "REWARD_EDIT_HUB_MAX_PAGES", key: "maxPages", unit: "count", def: 1000, doc: "pages of one tree listing" },
  { env: "REWARD_EDIT_HUB_MAX_ENTRIES", key: "maxEntries", unit: "count", def: 200_000, doc: "entries of one tree listing" },
  { env: "REWARD_EDIT_HUB_TIMEOUT_TRIES", key: "timeoutTries", unit: "count", def: 3, doc: "tries of a file transfer that timed out" },
];

export function hubLimits(env: NodeJS.ProcessEnv = process.env): HubLimits {
  const out = {} as HubLimits;
  for (const k of HUB_LIMIT_VARS) {
    const text = env[k.env]?.trim();
    let v = k.def;
    if (text) {
      v = Number(text);
      const integer = k.unit !== "s";
      if (!Number.isFinite(v) || v < 0 || (integer && !Number.isSafeInteger(v)) || (k.unit === "count" && v < 1)) {
        const what = k.unit === "s" ? "a number of seconds (0: no limit)" : k.unit === "bytes" ? "a whole number of bytes" : "a whole number, at least 1";
        throw new HubError("config", `${k.env} must be ${what}, got "${text}"`);
      }
    }
    out[k.key] = k.unit === "s" ? Math.round(v * 1000) : v;
  }
  return out;
}

/** "30 s", "0.5 s": how a deadline reads in a message. */
export const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;
