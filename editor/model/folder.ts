/**
 * Model folders (DESIGN.md 2): a diffusers ONNX export plus our reward-edit.json manifest.
 * `inspectModelFolder` lists every problem at once; `loadModel` opens each session once and
 * refuses a folder with problems.
 */
import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { CLIPTokenizer } from "../tokenizer/clip.js";
import { type Manifest, parseManifest } from "./manifest.js";
import { type InputInfo, type Session, type SessionOptions, createSession } from "./session.js";

export const COMPONENTS = ["text_encoder", "vae_encoder", "unet", "vae_decoder"] as const;
/** The graphs a folder may add: DeepCache's shallow UNet, when reward-edit.json declares deep_cache. */
export type Component = (typeof COMPONENTS)[number] | "unet_shallow";

interface InputSpec {
  types: string[];
  ranks: number[];
  /** Fixed sizes to check where the export has a concrete dim: [axis, size]. */
  dims?: Array<[number, number]>;
  /** A graph may leave it out (the shallow UNet when its outer blocks never read the text). */
  optional?: boolean;
}

function expectedInputs(m: Manifest): Record<Component, Record<string, InputSpec>> {
  const unet: Record<string, InputSpec> = {
    sample: { types: ["float32"], ranks: [4], dims: [[1, 2 * m.latent_channels]] },
    timestep: { types: ["float32", "int64"], ranks: [0, 1] },
    encoder_hidden_states: { types: ["float32"], ranks: [3] },
  };
  if (m.rewards) {
    unet[m.rewards.scores_input] = { types: ["float32"], ranks: [2], dims: [[1, 3]] };
    if (m.rewards.feedback_input) unet[m.rewards.feedback_input] = { types: ["float32"], ranks: [2] };
  }
  return {
    text_encoder: { input_ids: { types: ["int32", "int64"], ranks: [2] } },
    vae_encoder: { sample: { types: ["float32"], ranks: [4], dims: [[1, 3]] } },
    unet,
    unet_shallow: m.deep_cache
      ? { ...unet, encoder_hidden_states: { ...unet.encoder_hidden_states, optional: true }, [m.deep_cache.features]: { types: ["float32"], ranks: [4] } }
      : {},
    vae_decoder: { latent_sample: { types: ["float32"], ranks: [4], dims: [[1, m.latent_channels]] } },
  };
}

/** Every mismatch between a component's session and what the pipeline will feed it. */
export function checkSignature(component: Component, inputs: readonly InputInfo[], m: Manifest): string[] {
  const problems: string[] = [];
  const spec = expectedInputs(m)[component];
  const byName = new Map(inputs.map((i) => [i.name, i]));
  for (const [name, want] of Object.entries(spec)) {
    const got = byName.get(name);
    if (!got && want.optional) continue;
    if (!got) {
      const declared = m.rewards && (name === m.rewards.scores_input || name === m.rewards.feedback_input);
      problems.push(
        declared
          ? `${component}: reward input "${name}" is declared in reward-edit.json but absent from the model`
          : `${component}: missing input "${name}"`,
      );
      continue;
    }
    if (!want.types.includes(got.type)) {
      problems.push(`${component}: input "${name}" has dtype ${got.type}, expected ${want.types.join(" or ")}`);
    }
    if (!want.ranks.includes(got.shape.length)) {
      problems.push(`${component}: input "${name}" has rank ${got.shape.length}, expected ${want.ranks.join(" or ")}`);
    }
    for (const [axis, size] of want.dims ?? []) {
      const d = got.shape[axis];
      if (typeof d === "number" && d > 0 && d !== size) {
        problems.push(`${component}: input "${name}" has size ${d} on axis ${axis}, expected ${size}`);
      }
    }
  }
  for (const name of byName.keys()) {
    if (!(name in spec)) problems.push(`${component}: unexpected input "${name}" (not declared in reward-edit.json)`);
  }
  return problems;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, "utf8"));
}

/** Whether a folder's manifest declares DeepCache's outer UNet graph, without opening any session. */
export async function declaresDeepCache(dir: string): Promise<boolean> {
  const file = path.join(dir, "reward-edit.json");
  if (!(await exists(file))) return false;
  try {
    return parseManifest(await readJson(file)).deep_cache !== undefined;
  } catch {
    return false;
  }
}

export interface FolderReport {
  dir: string;
  problems: string[];
  manifest?: Manifest;
  sessions: Partial<Record<Component, Session>>;
}

/**
 * Opens everything a folder should hold and reports every problem found, not just the first.
 * The caller owns the returned sessions.
 */
/** A fixed size of one axis, or undefined when the graph leaves it symbolic. */
function axis(info: { shape: Array<number | string | null> } | undefined, i: number): number | undefined {
  const d = info?.shape.at(i);
  return typeof d === "number" && d > 0 ? d : undefined;
}

/**
 * Whether the components can feed each other, by the shapes their graphs declare: the text
 * encoder's width against the UNet's cross-attention and feedback inputs, the latent channels of
 * the VAE halves against the UNet's. A folder assembled from mismatched exports otherwise loads
 * and fails only inside ONNX Runtime at the first edit.
 */
function checkFit(s: Partial<Record<Component, Session>>, m: Manifest): string[] {
  const problems: string[] = [];
  const input = (c: Component, name: string) => s[c]?.inputs.find((i) => i.name === name);
  const output = (c: Component, names: string[]) => s[c]?.outputs.find((o) => names.includes(o.name)) ?? s[c]?.outputs[0];
  const mismatch = (what: string, a: number | undefined, b: number | undefined) => {
    if (a !== undefined && b !== undefined && a !== b) problems.push(`components do not fit: ${what} (${a} vs ${b})`);
  };
  const hidden = output("text_encoder", ["last_hidden_state"]);
  mismatch("text_encoder last_hidden_state width vs unet encoder_hidden_states width", axis(hidden, -1), axis(input("unet", "encoder_hidden_states"), -1));
  if (m.rewards?.feedback_input) {
    const pooled = s.text_encoder?.outputs.find((o) => o.name === "pooler_output" || o.name === "text_embeds");
    mismatch(`text_encoder pooled width vs unet ${m.rewards.feedback_input} width`, axis(pooled, -1), axis(input("unet", m.rewards.feedback_input), -1));
  }
  const C = m.latent_channels;
  mismatch("unet sample channels vs 2 x latent_channels (noisy latent + image latent)", axis(input("unet", "sample"), 1), 2 * C);
  mismatch("vae_decoder latent_sample channels vs latent_channels", axis(input("vae_decoder", "latent_sample"), 1), C);
  const enc = axis(output("vae_encoder", ["latent_sample", "latent_dist", "latent_parameters"]), 1);
  if (enc !== undefined && enc !== C && enc !== 2 * C) problems.push(`components do not fit: vae_encoder output channels ${enc}, expected ${C} (or ${2 * C}: mean and log-variance)`);
  mismatch("unet output channels vs latent_channels", axis(output("unet", ["out_sample"]), 1), C);
  return problems;
}

export async function inspectModelFolder(dir: string, options: SessionOptions = {}): Promise<FolderReport> {
  const problems: string[] = [];
  const sessions: Partial<Record<Component, Session>> = {};
  if (!(await exists(dir))) return { dir, problems: [`${dir}: folder does not exist`], sessions };
  for (const f of ["model_index.json", "tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json"]) {
    if (!(await exists(path.join(dir, f)))) problems.push(`missing file ${f}`);
  }
  let manifest: Manifest | undefined;
  const manifestFile = path.join(dir, "reward-edit.json");
  try {
    manifest = parseManifest((await exists(manifestFile)) ? await readJson(manifestFile) : {});
  } catch (err) {
    problems.push((err as Error).message);
  }
  for (const c of COMPONENTS) {
    const file = path.join(dir, c, "model.onnx");
    if (!(await exists(file))) {
      problems.push(`missing file ${c}/model.onnx`);
      continue;
    }
    try {
      sessions[c] = await createSession(file, options);
    } catch (err) {
      problems.push(`${c}/model.onnx cannot be loaded: ${(err as Error).message.split("\n")[0]}`);
      continue;
    }
    if (manifest) problems.push(...checkSignature(c, sessions[c]!.inputs, manifest));
  }
  if (manifest) problems.push(...checkFit(sessions, manifest));
  const cache = manifest?.deep_cache;
  if (cache) {
    if (sessions.unet && !sessions.unet.outputNames.includes(cache.features)) {
      problems.push(`unet: deep_cache declares the output "${cache.features}", which unet/model.onnx does not have`);
    }
    const file = path.join(dir, cache.shallow);
    if (!(await exists(file))) problems.push(`missing file ${cache.shallow} (declared by deep_cache in reward-edit.json)`);
    else {
      try {
        sessions.unet_shallow = await createSession(file, options);
        problems.push(...checkSignature("unet_shallow", sessions.unet_shallow.inputs, manifest!));
      } catch (err) {
        problems.push(`${cache.shallow} cannot be loaded: ${(err as Error).message.split("\n")[0]}`);
      }
    }
  }
  return { dir, problems, manifest, sessions };
}

export interface EditorModel {
  dir: string;
  manifest: Manifest;
  tokenizer: CLIPTokenizer;
  schedulerConfig: Record<string, unknown>;
  textEncoder: Session;
  vaeEncoder: Session;
  unet: Session;
  /** DeepCache's shallow UNet (outer blocks only), when the folder has one. */
  unetShallow?: Session;
  vaeDecoder: Session;
  /** True when the UNet takes reward conditioning (DESIGN.md 4). */
  takesRewards: boolean;
  dispose(): Promise<void>;
}

export class ModelFolderError extends Error {
  constructor(
    readonly dir: string,
    readonly problems: string[],
  ) {
    super(`invalid model folder ${dir}:\n  - ${problems.join("\n  - ")}`);
  }
}

export async function loadModel(dir: string, options: SessionOptions = {}): Promise<EditorModel> {
  const report = await inspectModelFolder(dir, options);
  const all = () => Promise.all(Object.values(report.sessions).map((s) => s.dispose()));
  if (report.problems.length > 0) {
    await all();
    throw new ModelFolderError(dir, report.problems);
  }
  const s = report.sessions as Record<Component, Session>;
  const [tokenizer, schedulerConfig] = await Promise.all([
    CLIPTokenizer.fromFolder(path.join(dir, "tokenizer")),
    readJson(path.join(dir, "scheduler", "scheduler_config.json")) as Promise<Record<string, unknown>>,
  ]);
  return {
    dir,
    manifest: report.manifest!,
    tokenizer,
    schedulerConfig,
    textEncoder: s.text_encoder,
    vaeEncoder: s.vae_encoder,
    unet: s.unet,
    unetShallow: s.unet_shallow,
    vaeDecoder: s.vae_decoder,
    takesRewards: report.manifest!.rewards !== undefined,
    dispose: async () => {
      await all();
    },
  };
}
