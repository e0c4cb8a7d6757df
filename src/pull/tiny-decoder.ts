/**
 * `models tiny-decoder DIR`: TAESD (diffusers' AutoencoderTiny, default `madebyollin/taesd`, MIT)
 * from the Hub into the shared cache, its decoder exported by models/convert/taesd.py as the
 * folder's `preview_decoder`, which `--decoder tiny` decodes with (issue 33).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type HubEnv, type PullProgress, type Selector, type Snapshot, hubEnv, snapshot } from "../hub/index.js";
import { PYTHON, TAESD } from "../paths.js";
import { ConverterMissing } from "./converter.js";
import { PullError } from "./model.js";

export const DEFAULT_TINY_DECODER_REPO = "madebyollin/taesd";
const FILES = ["config.json", "diffusion_pytorch_model.safetensors"];

/** Only the diffusers files: never the repository's .pth copies of the encoder and decoder. */
export function tinyDecoderSelector(subfolder?: string): Selector {
  const join = (f: string) => (subfolder ? `${subfolder}/${f}` : f);
  return (listing) => {
    const have = new Set(listing.map((f) => f.path));
    const wanted = FILES.map(join);
    return { files: wanted.filter((f) => have.has(f)), problems: wanted.filter((f) => !have.has(f)).map((f) => `missing ${f} (an AutoencoderTiny in the diffusers layout)`) };
  };
}

export interface TinyDecoderOptions {
  dir: string;
  repo?: string;
  revision?: string;
  subfolder?: string;
  env?: HubEnv;
  progress?: PullProgress;
  fetch?: typeof fetch;
}

export async function pullTinyDecoder(o: TinyDecoderOptions): Promise<{ snapshot: Snapshot; repo: string }> {
  const manifestFile = path.join(o.dir, "reward-edit.json");
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as Record<string, unknown>;
  } catch {
    throw new PullError(`${o.dir}: not a model folder with a reward-edit.json`);
  }
  const repo = o.repo ?? DEFAULT_TINY_DECODER_REPO;
  const snap = await snapshot({ repo: { type: "model", name: repo }, revision: o.revision, under: o.subfolder, env: o.env ?? hubEnv(), progress: o.progress, select: tinyDecoderSelector(o.subfolder), fetch: o.fetch });
  const weights = path.join(snap.dir, ...(o.subfolder ? [o.subfolder] : []), "diffusion_pytorch_model.safetensors");
  const r = spawnSync(PYTHON, [TAESD, "--weights", weights, "--folder", o.dir], { encoding: "utf8", env: { ...process.env, OPENBLAS_NUM_THREADS: "1" } });
  if (r.error) throw new ConverterMissing(`cannot run ${PYTHON} (${r.error.message}); the tiny decoder's export needs Python 3 with torch and onnx (Debian: python3-torch python3-onnx)`);
  if (r.status !== 0) {
    // taesd.py's own one line (an unsupported config, a state dict of another shape), named by repository
    const why = (r.stderr.trim().split("\n").pop() ?? "").replaceAll(`${snap.dir}/`, "");
    throw new PullError(`${repo}@${snap.commit.slice(0, 12)}: ${why || `taesd.py failed (exit ${r.status})`}; the files are cached`);
  }
  // taesd.py named the graph in the manifest; where it came from goes beside the converter's record
  manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as Record<string, unknown>;
  const source = (manifest.source ?? {}) as Record<string, unknown>;
  manifest.source = { ...source, preview_decoder: { repo, subfolder: o.subfolder ?? null, revision: snap.revision, commit: snap.commit, files: snap.files } };
  writeFileSync(manifestFile, JSON.stringify(manifest, null, 2));
  return { snapshot: snap, repo };
}
