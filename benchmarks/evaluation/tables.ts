/** Markdown tables of synthetic evaluations, shared by the model and world reports. */
import type { EvalResult } from "./evaluate-synthetic.js";

export const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
export const num = (x: number | null) => (x === null ? "n/a" : x.toFixed(4));

export function kindTable(rows: Array<[string, EvalResult]>): string {
  const kinds = Object.keys(rows[0][1].perKind);
  const head = `| model / setting | ${kinds.map((k) => `${k} follow`).join(" | ")} | overall follow | preservation err | quality err |`;
  const sep = `|${" --- |".repeat(kinds.length + 4)}`;
  const body = rows.map(
    ([name, r]) =>
      `| ${name} | ${kinds.map((k) => pct(r.perKind[k].following)).join(" | ")} | ${pct(r.overall.following)} | ${num(r.overall.preservationError)} | ${num(r.overall.qualityError)} |`,
  );
  return [head, sep, ...body].join("\n");
}

