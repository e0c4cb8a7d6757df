/**
 * Which files of a diffusers-format editor repository the converter needs: the configs, the
 * tokenizer, the scheduler and one weight format per component. Never the safety checker, the
 * feature extractor or the multi-gigabyte single-file copies published beside the folders.
 */
import type { RemoteFile, Selector } from "../hub/index.js";

export const WEIGHTED = ["unet", "vae", "text_encoder"] as const;

const BASE: Record<(typeof WEIGHTED)[number], string> = {
  unet: "diffusion_pytorch_model",
  vae: "diffusion_pytorch_model",
  text_encoder: "model",
};
const BIN_BASE: Record<(typeof WEIGHTED)[number], string> = {
  unet: "diffusion_pytorch_model",
  vae: "diffusion_pytorch_model",
  text_encoder: "pytorch_model",
};

/** The names one component's weights go by, best first: safetensors before .bin, and the
 * requested variant before the plain float32 files (diffusers' own order of preference). */
export function weightCandidates(component: (typeof WEIGHTED)[number], variant?: string): Array<{ single: string; index: string }> {
  const forms = [
    { base: BASE[component], ext: "safetensors" },
    { base: BIN_BASE[component], ext: "bin" },
  ];
  const out: Array<{ single: string; index: string }> = [];
  const variants = variant ? [variant, undefined] : [undefined];
  for (const v of variants) {
    for (const { base, ext } of forms) {
      out.push({
        single: v ? `${base}.${v}.${ext}` : `${base}.${ext}`,
        // sharded: <base>.<ext>.index.json, or with a variant <base>.<ext>.index.<variant>.json
        index: v ? `${base}.${ext}.index.${v}.json` : `${base}.${ext}.index.json`,
      });
    }
  }
  return out;
}

const SMALL_FILES = ["model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json", "tokenizer/merges.txt"];
const OPTIONAL_SMALL = ["tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json", "tokenizer/added_tokens.json"];

export interface EditorSelection {
  subfolder?: string;
  variant?: string;
  /** Index files name their shards: read from the cache or the Hub once the index is there. */
  shardsOf?: (indexPath: string) => string[] | undefined;
}

const join = (dir: string | undefined, p: string) => (dir ? `${dir.replace(/\/+$/, "")}/${p}` : p);

/** Picks the files; the shard lists of sharded weights come from `shardsOf` (a second pass). */
export function editorSelector(o: EditorSelection): Selector {
  return (listing: RemoteFile[]) => {
    const have = new Set(listing.map((f) => f.path));
    const files: string[] = [];
    const problems: string[] = [];
    const need = (p: string, missing = `missing ${p}`) => (have.has(p) ? files.push(p) : problems.push(missing));
    for (const f of SMALL_FILES) need(join(o.subfolder, f));
    for (const f of OPTIONAL_SMALL) if (have.has(join(o.subfolder, f))) files.push(join(o.subfolder, f));
    for (const c of WEIGHTED) {
      need(join(o.subfolder, `${c}/config.json`));
      const pick = weightCandidates(c, o.variant).find((w) => have.has(join(o.subfolder, `${c}/${w.single}`)) || have.has(join(o.subfolder, `${c}/${w.index}`)));
      if (!pick) {
        problems.push(`no ${c} weights (${weightCandidates(c, o.variant).map((w) => w.single).join(", ")})`);
        continue;
      }
      const single = join(o.subfolder, `${c}/${pick.single}`);
      if (have.has(single)) {
        files.push(single);
        continue;
      }
      const index = join(o.subfolder, `${c}/${pick.index}`);
      files.push(index);
      const shards = o.shardsOf?.(index);
      for (const s of shards ?? []) need(join(o.subfolder, `${c}/${s}`), `missing shard ${c}/${s}`);
    }
    return { files, problems };
  };
}

/** The small files a single-file checkpoint's conversion borrows from a diffusers repository. */
export function configSelector(subfolder?: string): Selector {
  return (listing) => {
    const have = new Set(listing.map((f) => f.path));
    const wanted = [...SMALL_FILES, ...WEIGHTED.map((c) => `${c}/config.json`)].map((f) => join(subfolder, f));
    return {
      files: [...wanted.filter((f) => have.has(f)), ...OPTIONAL_SMALL.map((f) => join(subfolder, f)).filter((f) => have.has(f))],
      problems: wanted.filter((f) => !have.has(f)).map((f) => `missing ${f}`),
    };
  };
}
