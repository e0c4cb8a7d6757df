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

/** Every module's relative imports (types included), as resolved .ts paths from the root. */
function importGraph(folders: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const folder of folders) {
    for (const e of readdirSync(path.join(ROOT, folder), { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith(".ts")) continue;
      const file = path.join(e.parentPath, e.name);
      const targets = [...readFileSync(file, "utf8").matchAll(/from "(\.[^"]+)\.js"/g)].map((m) => path.relative(ROOT, path.resolve(path.dirname(file), `${m[1]}.ts`)));
      graph.set(path.relative(ROOT, file), targets);
    }
  }
  return graph;
}

describe("no module imports itself back, through any chain (types included)", () => {
  it("src, editor, reward and raster have no import cycle", () => {
    const graph = importGraph(["src", "editor", "reward", "raster"]);
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (m: string) => {
      state.set(m, "open");
      stack.push(m);
      for (const t of graph.get(m) ?? []) {
        if (state.get(t) === "open") cycles.push([...stack.slice(stack.indexOf(t)), t].join(" -> "));
        else if (!state.has(t)) visit(t);
      }
      stack.pop();
      state.set(m, "done");
    };
    for (const m of graph.keys()) if (!state.has(m)) visit(m);
    expect(cycles).to.deep.equal([]);
  });
});
