/**
 * The external reference data some tests compare against (../shared: the real CLIP tokenizer and
 * SD1.5 scheduler files, golden checkpoints of the real code, diffusers scheduler trajectories).
 * A clone without it still runs the suite: those tests skip, and the run ends with one line per
 * missing item saying where it comes from. CI has ../shared and fails on any skip (.ci/run).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { SHARED } from "../helpers.js";

const missing = new Map<string, number>();

/** Skips the calling test or hook's tests when ../shared/<item> is absent; returns its path otherwise. */
export function requireShared(ctx: Mocha.Context, item: string): string {
  const p = path.join(SHARED, item);
  if (!existsSync(p)) {
    missing.set(item, (missing.get(item) ?? 0) + 1);
    ctx.skip();
  }
  return p;
}

export const mochaHooks = {
  afterAll() {
    for (const [item, n] of missing) {
      process.stdout.write(
        `  skipped (${n}x): ../shared/${item} is missing: the project's reference data, checked out beside the repository as ../shared (see its README)\n`,
      );
    }
  },
};
