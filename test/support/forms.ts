/** Multipart forms as the API takes them. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { PHOTOS } from "../helpers.js";

const photo = readFileSync(path.join(PHOTOS, "coffee.png"));

/** Text fields plus files (by default `image`: the coffee photo). */
export function baseForm(fields: Record<string, string>, files: Record<string, Buffer | undefined> = { image: photo }): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(files)) if (v) f.append(k, new Blob([new Uint8Array(v)]), `${k}.bin`);
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}
