/** `reward-edit models quantize DIR OUT --compute int8`: int8 arithmetic, calibrated and reported (issue 42). */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { inspectModelFolder } from "../../editor/index.js";
import { sessionOptionsFromEnv } from "../config/session.js";
import { BUNDLED_MODEL } from "../paths.js";
import { COMPUTE_GRAPHS, DEFAULT_KEEP_FRACTION, MATMUL_MODES, type MatmulMode, defaultCalibrationItems, quantizeCompute } from "../quantize/int8-compute.js";
import { countKernels } from "../quantize/kernels.js";
import type { GraphName } from "../quantize/record.js";
import { ReportInputError, compareFolders, reportMarkdown, writeReport } from "../quantize/report.js";
import { CliError } from "./errors.js";

export interface ComputeFlags {
  graphs?: string;
  matmul: string;
  keepFraction: string;
  keep?: string;
  calibrationPhotos?: string;
  instruction?: string;
  photos?: string;
}

const QUANTISABLE: readonly GraphName[] = ["unet", "unet_shallow", "vae_decoder", "vae_encoder"];

/** The bundled sample photos: what the report edits when the user names none. */
export function samplePhotos(): string[] {
  const dir = path.join(BUNDLED_MODEL, "examples");
  return readdirSync(dir).filter((f) => f.endsWith(".png")).sort().map((f) => path.join(dir, f));
}

function sourceOf(dir: string): { dtype: string; compute?: string } {
  try {
    const m = JSON.parse(readFileSync(path.join(dir, "reward-edit.json"), "utf8")) as { source?: { dtype?: string; compute?: string } };
    return { dtype: m.source?.dtype ?? "float32", compute: m.source?.compute };
  } catch {
    throw new CliError(`${dir}: not a converted model folder (no readable reward-edit.json)`);
  }
}

const list = (s: string | undefined) => (s ?? "").split(",").map((x) => x.trim()).filter(Boolean);

export async function quantizeComputeCommand(dir: string, out: string, o: ComputeFlags): Promise<void> {
  if (!existsSync(dir)) throw new CliError(`${dir}: no such folder`);
  const source = sourceOf(dir);
  // once is enough: quantising a quantised folder would calibrate int8 against int8
  if (source.dtype !== "float32") throw new CliError(`${dir}: its weights are ${source.dtype}${source.compute ? ` (${source.compute} arithmetic)` : ""}; quantise a float32 folder`);
  if (path.resolve(dir) === path.resolve(out)) throw new CliError(`${out}: write the int8-arithmetic folder beside its float32 source (the report compares the two)`);
  const graphs = o.graphs ? list(o.graphs) : [...COMPUTE_GRAPHS];
  const unknown = graphs.find((g) => !QUANTISABLE.includes(g as GraphName));
  if (unknown) throw new CliError(`--graphs: unknown graph ${unknown} (int8 arithmetic: ${QUANTISABLE.join(", ")})`);
  if (!(MATMUL_MODES as readonly string[]).includes(o.matmul)) throw new CliError(`--matmul must be one of ${MATMUL_MODES.join(", ")}, got "${o.matmul}"`);
  const fraction = Number(o.keepFraction);
  if (o.keepFraction.trim() === "" || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) throw new CliError(`--keep-fraction must be a number in [0, 1], got "${o.keepFraction}"`);
  const photos = o.photos ? list(o.photos) : samplePhotos();
  const calibration = list(o.calibrationPhotos);
  for (const p of [...photos, ...calibration]) if (!existsSync(p)) throw new CliError(`${p}: no such photo`);
  const log = (line: string) => process.stderr.write(`quantize: ${line}\n`);
  const items = calibration.length
    ? calibration.map((p) => ({ image: readFileSync(p), instruction: o.instruction ?? "make it look like a watercolour painting" }))
    : defaultCalibrationItems();
  const session = sessionOptionsFromEnv();
  const r = await quantizeCompute({ src: dir, out, graphs: graphs as GraphName[], items, matmul: o.matmul as MatmulMode, keepFraction: fraction, keep: list(o.keep), threads: session.intraOpThreads, log });
  const report = await inspectModelFolder(out);
  await Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
  if (report.problems.length > 0) throw new CliError(`quantised folder ${out} does not validate: ${report.problems.join("; ")}`);
  for (const g of Object.keys(r.graphs).filter((g) => graphs.includes(g))) {
    const k = await countKernels(path.join(out, g, "model.onnx"), session);
    log(`${g}: ${r.graphs[g].int8_nodes} layers in int8, ${r.graphs[g].kept_float.length} kept float32; ONNX Runtime runs ${k.int8} int8 kernels (${Object.entries(k.ops).filter(([op]) => op.startsWith("QLinear") || op.includes("Integer") || op.startsWith("DynamicQuantize")).map(([op, n]) => `${n} ${op}`).join(", ")}), ${k.unfusedDequantized} unfused`);
  }
  let q;
  try {
    q = await compareFolders({ reference: dir, candidate: out, photos, session, log: (line) => log(`report: ${line}`) });
  } catch (e) {
    if (e instanceof ReportInputError) throw new CliError(e.message);
    throw e;
  }
  const files = await writeReport(q, out);
  log(`wrote ${files.json} and ${path.basename(files.md)} (against ${dir}, on ${photos.length} photo(s))`);
  process.stdout.write(reportMarkdown(q));
  process.stdout.write(`ok: ${out} (${report.manifest!.name}, int8 arithmetic in ${Object.keys(r.graphs).filter((g) => graphs.includes(g)).join(", ")}); serve it with REWARD_EDIT_MODEL=${out} npm start\n`);
}

export const COMPUTE_OPTION_HELP = {
  compute: "float32: int8 weights only (the default; a quarter of the memory, float32 arithmetic); int8: int8 arithmetic in the UNets and VAE decoder too, calibrated on edits, with a report against the float32 folder (docs/performance.md)",
  graphs: `with --compute int8: graphs computing in int8 (default ${COMPUTE_GRAPHS.join(",")})`,
  matmul: "with --compute int8: MatMuls static (calibrated), dynamic (scale per call) or float",
  keepFraction: `with --compute int8: share of layers kept float32, those the sensitivity sweep finds add the most error (default ${DEFAULT_KEEP_FRACTION})`,
  keep: "with --compute int8: more layers (ONNX node names) kept float32, comma-separated",
  calibrationPhotos: "with --compute int8: photos to calibrate on, comma-separated (default: the bundled sample photos and synthetic scenes)",
  photos: "with --compute int8: photos the report edits with both folders (default: the bundled sample photos)",
};
