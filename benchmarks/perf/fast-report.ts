/** bench-results/fast.md: issue 20's quality, fidelity and cost tables. */
import type { FastReport } from "./fast-types.js";

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const evals = (full: number, shallow: number) => (shallow > 0 ? `${full.toFixed(1)} + ${shallow.toFixed(1)} shallow` : full.toFixed(1));

export function renderFast(r: FastReport): string {
  const base = r.quality[0];
  const fast = r.quality.find((q) => q.name === "fast");
  const kinds = Object.keys(base.perKind);
  const suites = Object.keys(base.perSuite);
  const out: string[] = [];
  out.push(`# Fast edits (issue 20)`, "");
  out.push(`Measured ${r.date.slice(0, 10)}, ${r.threads} ONNX Runtime threads. The \`fast\` preset: \`${JSON.stringify(r.fast)}\`.`, "");
  out.push(`## Quality: the bundled editor on world v2's held-out suites`, "");
  out.push(`${Object.entries(r.suites).map(([k, n]) => `${k} ${n}`).join(", ")} scenes; rewards 5,5,5; seed 1000 + i; the same scenes and seeds in every row. Preservation error: mean absolute error outside the edit's region (lower is better).`, "");
  out.push(`| configuration | what | following | vs default | preservation error | vs default | UNet evaluations / edit | ms / edit |`, `| --- | --- | --- | --- | --- | --- | --- | --- |`);
  for (const q of r.quality) {
    const dp = q.preservationError !== null && base.preservationError ? `${((100 * (q.preservationError - base.preservationError)) / base.preservationError).toFixed(1)} %` : "";
    out.push(`| ${q.name} | ${q.what} | ${pct(q.following)} | ${((q.following - base.following) * 100).toFixed(1)} pt | ${q.preservationError?.toFixed(4) ?? "-"} | ${dp} | ${evals(q.unetEvaluations, q.shallowEvaluations)} | ${q.editMs.toFixed(0)} |`);
  }
  out.push("");
  out.push(`Following per kind and suite, default against fast:`, "");
  out.push(`| configuration | ${[...kinds, ...suites].join(" | ")} |`, `| --- | ${[...kinds, ...suites].map(() => "---").join(" | ")} |`);
  for (const q of [base, ...(fast ? [fast] : [])]) out.push(`| ${q.name} | ${[...kinds.map((k) => pct(q.perKind[k])), ...suites.map((s) => pct(q.perSuite[s]))].join(" | ")} |`);
  if (fast) {
    const df = (fast.following - base.following) * 100;
    const dp = fast.preservationError && base.preservationError ? (100 * (fast.preservationError - base.preservationError)) / base.preservationError : 0;
    out.push("", `Aim: fast within 2 points of the default on following (${df.toFixed(1)} pt: ${df >= -2 ? "met" : "NOT met"}) and its preservation error within 10 % (${dp.toFixed(1)} %: ${dp <= 10 ? "met" : "NOT met"}).`);
  }
  out.push("", `## Fidelity: PSNR against the same sampler at 50 steps with every branch`, "");
  out.push(`${r.fidelityScenes} scenes (the first of each suite), same seeds; working-size RGB, peak 1. Higher is closer to the slow reference.`, "");
  out.push(`| sampler | variant | PSNR mean (dB) | median | min | UNet evaluations / edit |`, `| --- | --- | --- | --- | --- | --- |`);
  for (const f of r.fidelity) {
    const ref = !Number.isFinite(f.psnr.mean);
    out.push(`| ${f.scheduler} | ${f.name}${ref ? " (reference)" : ""} | ${ref ? "-" : f.psnr.mean.toFixed(1)} | ${ref ? "-" : f.psnr.median.toFixed(1)} | ${ref ? "-" : f.psnr.min.toFixed(1)} | ${evals(f.unetEvaluations, f.shallowEvaluations)} |`);
  }
  out.push("", `## Cost per edit (each configuration in its own process)`, "");
  out.push(`| model | configuration | settings | size | UNet evaluations | wall (median, min-max) | UNet / shallow / VAE enc / VAE dec s | peak RSS |`, `| --- | --- | --- | --- | --- | --- | --- | --- |`);
  for (const c of r.cost) {
    const s = c.componentS;
    const wall = c.wallS.min === c.wallS.max ? `${c.wallS.median.toFixed(3)} s` : `${c.wallS.median.toFixed(3)} s (${c.wallS.min.toFixed(3)}-${c.wallS.max.toFixed(3)})`;
    out.push(`| ${c.model} | ${c.config} | ${c.settings} | ${c.size} | ${evals(c.unetEvaluations, c.shallowEvaluations)} | ${wall} | ${s.unet.toFixed(2)} / ${s.unet_shallow.toFixed(2)} / ${s.vae_encoder.toFixed(2)} / ${s.vae_decoder.toFixed(2)} | ${c.peakRssGb.toFixed(2)} GB |`);
  }
  const ratio = (model: string) => {
    const rows = r.cost.filter((c) => c.model === model);
    const a = rows.find((c) => c.config !== "fast");
    const b = rows.find((c) => c.config === "fast");
    return a && b ? `${model}: fast is ${(a.wallS.median / b.wallS.median).toFixed(1)}x faster, peak RSS ${(b.peakRssGb / a.peakRssGb).toFixed(2)}x` : null;
  };
  const ratios = [...new Set(r.cost.map((c) => c.model))].map(ratio).filter(Boolean);
  if (ratios.length) out.push("", ...ratios.map((x) => `- ${x}`));
  return out.join("\n") + "\n";
}
