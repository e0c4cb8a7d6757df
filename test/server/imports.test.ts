import { expect } from "chai";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { ROOT } from "../helpers.js";

/** Every relative import of every .ts file under a top-level folder, resolved to its top-level folder. */
function importedFolders(folder: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of readdirSync(path.join(ROOT, folder), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith(".ts")) continue;
    const file = path.join(e.parentPath, e.name);
    for (const m of readFileSync(file, "utf8").matchAll(/from "(\.[^"]+)"/g)) {
      const target = path.relative(ROOT, path.resolve(path.dirname(file), m[1])).split(path.sep)[0];
      out.set(target, [...(out.get(target) ?? []), path.relative(ROOT, file)]);
    }
  }
  return out;
}

describe("layering (DESIGN.md 1): data flows one way", () => {
  const rules: Array<[string, string[]]> = [
    ["editor", ["reward", "src"]],
    ["reward", ["editor", "src"]],
    ["raster", ["editor", "reward", "src"]],
  ];
  for (const [folder, forbidden] of rules) {
    it(`${folder}/ imports nothing from ${forbidden.join(", ")}`, () => {
      const found = importedFolders(folder);
      for (const f of forbidden) expect(found.get(f) ?? [], `${folder} -> ${f}`).to.deep.equal([]);
    });
  }
});
