/** Versioned prompt sets, stored as data in prompts/*.json. */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Perspective } from "../types.js";

export type ImageRole = "source" | "edited" | "a" | "b";

export interface PromptSet {
  protocol: string;
  version: string;
  system: string;
  perspectives: Record<Perspective, { images: ImageRole[]; prompt: string; followup?: string }>;
}

const cache = new Map<string, PromptSet>();

const load = <T>(protocol: string): T => JSON.parse(readFileSync(new URL(`../../../reward/judge/prompts/${protocol}-v1.json`, import.meta.url), "utf8")) as T;

export function promptSet(protocol: "mrc" | "multi-round" | "pairwise"): PromptSet {
  let p = cache.get(protocol);
  if (!p) {
    p = load<PromptSet>(protocol);
    cache.set(protocol, p);
  }
  return p;
}

/** VIEScore asks two questions, not one per perspective: semantic consistency and perceptual quality. */
export interface VieScorePromptSet {
  protocol: "viescore";
  version: string;
  system: string;
  sc: { images: ImageRole[]; subscores: string[]; prompt: string };
  pq: { images: ImageRole[]; subscores: string[]; prompt: string };
}

let vieScore: VieScorePromptSet | undefined;

export function vieScorePrompts(): VieScorePromptSet {
  return (vieScore ??= load<VieScorePromptSet>("viescore"));
}

/** Appended to the preservation question when the edit came with a mask (issue 21). */
export const MASK_NOTE =
  "The next image is the edit mask: the edit was allowed only where it is white. Judge preservation outside the white area only; changes inside it are the requested edit.";

export function fill(template: string, instruction: string): string {
  return template.replaceAll("{instruction}", instruction.replaceAll('"', "'"));
}

const hashes = new Map<string, string>();

/**
 * sha256 of what a protocol asks: its prompt set (as parsed, so whitespace in the file does not
 * count) and the mask note. Two runs with the same hash asked the same questions.
 */
export function promptHash(protocol: "mrc" | "multi-round" | "pairwise" | "viescore"): string {
  let h = hashes.get(protocol);
  if (!h) {
    const set = protocol === "viescore" ? vieScorePrompts() : promptSet(protocol);
    h = createHash("sha256").update(JSON.stringify(set)).update("\n").update(MASK_NOTE).digest("hex");
    hashes.set(protocol, h);
  }
  return h;
}
