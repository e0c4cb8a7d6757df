/** Disk cache of judge results keyed by a hash of everything that determines the answer. */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

export function cacheKey(parts: Array<string | Buffer>): string {
  const h = createHash("sha256");
  for (const p of parts) {
    // length-prefix each part so ("ab","c") and ("a","bc") differ
    const b = typeof p === "string" ? Buffer.from(p) : p;
    h.update(`${b.length}:`);
    h.update(b);
  }
  return h.digest("hex");
}

export class DiskCache<T> {
  hits = 0;
  misses = 0;
  constructor(private readonly dir: string) {}

  async get(key: string): Promise<T | undefined> {
    try {
      const v = JSON.parse(await readFile(path.join(this.dir, `${key}.json`), "utf8")) as T;
      this.hits++;
      return v;
    } catch {
      this.misses++;
      return undefined;
    }
  }

  async set(key: string, value: T): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `${key}.json`);
    // write then rename: a killed process never leaves half a file behind
    await writeFile(`${file}.tmp`, JSON.stringify(value));
    await rename(`${file}.tmp`, file);
  }
}
