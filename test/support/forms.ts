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

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** POST /v1/jobs as `key` with the coffee photo; the job's id (the answer must be 202). */
export async function submitJob(url: string, key: string, fields: Record<string, string>): Promise<string> {
  const r = await fetch(`${url}/v1/jobs`, { method: "POST", headers: bearer(key), body: baseForm({ instruction: "make the mug red", ...fields }) });
  if (r.status !== 202) throw new Error(`POST /v1/jobs answered ${r.status}: ${await r.text()}`);
  return ((await r.json()) as { id: string }).id;
}
