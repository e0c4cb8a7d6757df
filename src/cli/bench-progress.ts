/** The bench progress bar: edits done, the judge tokens spent so far (and their price), an ETA. */
import { SingleBar } from "cli-progress";
import type { TokenUsage } from "../../reward/index.js";
import { CliError } from "./errors.js";
import { parsePrice } from "../../reward/index.js";

const k = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : String(n));

export function tokensPayload(spent: TokenUsage, price?: [number, number]): string {
  const cost = price ? `, $${((spent.promptTokens * price[0] + spent.completionTokens * price[1]) / 1e6).toFixed(4)}` : "";
  return `${k(spent.promptTokens)} in / ${k(spent.completionTokens)} out${cost}`;
}

/** onProgress for runBenchmark and rejudgeRun; only on a terminal, as before. */
export function benchProgress(label: string, price?: [number, number]): { onProgress: (done: number, total: number, spent: TokenUsage) => void; stop: () => void } {
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: `${label} [{bar}] {value}/{total} edits | judge tokens {tokens} | ETA {eta_formatted}`, stream: process.stderr, etaBuffer: 20 })
    : null;
  let started = false;
  return {
    onProgress: (done, total, spent) => {
      const tokens = tokensPayload(spent, price);
      if (!started) (bar?.start(total, done, { tokens }), (started = true));
      bar?.update(done, { tokens });
    },
    stop: () => bar?.stop(),
  };
}

/** --price IN,OUT, else the judge config's `price`. */
export function priceFrom(option: string | undefined, configured?: [number, number]): [number, number] | undefined {
  if (option === undefined) return configured;
  try {
    return parsePrice(option);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}
