/**
 * Model folders (DESIGN.md 2): a diffusers ONNX export plus our reward-edit.json manifest.
 * `inspectModelFolder` lists every problem at once; `loadModel` opens each session once and
 * refuses a folder with problems. Where a graph leaves a text-encoder width symbolic, both run
 * the text encoder (and, if the UNet's side is symbolic too, the UNet) once on a tiny probe.
 */
import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { CLIPTokenizer } from "../tokenizer/clip.js";
import { type Manifest, parseManifest } from "./manifest.js";
import { type HostTensor, type InputInfo, type Session, type SessionOptions, createSession } from "./session.js";

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

/** A fixed size of one axis, or undefined when the graph leaves it symbolic. */
function axis(info: { shape: Array<number | string | null> } | undefined, i: number): number | undefined {
  const d = info?.shape.at(i);
  return typeof d === "number" && d > 0 ? d : undefined;
}

const POOLED = ["pooler_output", "text_embeds"];

/** One text-encoder width and the UNet input it feeds. */
interface Link {
  /** The text encoder's output, as problem lines name it. */
  what: "last_hidden_state" | "pooled";
  input: string;
  /** The text encoder's width: declared by its graph, else measured by the probe. */
  width?: number;
  measured?: boolean;
}

/** ONNX Runtime's own words from a failed Session.run, on one line. */
function ortMessage(err: unknown): string {
  const e = err as Error;
  const msg = ((e.cause as Error | undefined)?.message ?? e.message).split("\n")[0];
  const node = /running (\w+) node\. Name:'([^']*)' Status Message: (.*)/.exec(msg);
  return node ? `${node[1]} node '${node[2]}': ${node[3]}` : msg;
}

/**
 * The text encoder's real output widths, from one run on a [1, 77] probe: torch.onnx declares
 * them symbolic ("Addlast_hidden_state_dim_2") unless the converter fixes them, and such a
 * folder otherwise passes and fails only at the first edit.
 */
async function probeTextEncoder(te: Session, problems: string[]): Promise<Partial<Record<Link["what"], number>> | undefined> {
  const ids = te.inputs.find((i) => i.name === "input_ids")!;
  const len = axis(ids, 1) ?? 77;
  const feed: HostTensor =
    ids.type === "int32" ? { type: "int32", data: new Int32Array(len), dims: [1, len] } : { type: "int64", data: new BigInt64Array(len), dims: [1, len] };
  try {
    const out = await te.run({ input_ids: feed }, { probe: true });
    const hidden = out.last_hidden_state ?? out[te.outputNames[0]];
    const pooled = POOLED.map((n) => out[n]).find((o) => o !== undefined);
    return { last_hidden_state: hidden?.dims.at(-1), pooled: pooled?.dims.at(-1) };
  } catch (err) {
    problems.push(`text_encoder: one run on a [1, ${len}] input_ids probe fails: ${ortMessage(err)}`);
    return undefined;
  }
}

/**
 * Where the UNet declares a width symbolic too, only its weights know it: one run at batch 1 on
 * the smallest latent the pipeline can ask for, each width input fed what the text encoder
 * gives, says whether it takes them; ONNX Runtime's dimension error becomes one problem line.
 */
async function probeUnet(unet: Session, m: Manifest, fed: Link[], unsure: Link[]): Promise<string[]> {
  const input = (name: string) => unet.inputs.find((i) => i.name === name)!;
  const zeros = (dims: number[]): HostTensor => ({ type: "float32", data: new Float32Array(dims.reduce((a, b) => a * b, 1)), dims });
  const side = Math.max(1, Math.round(m.size_multiple / m.latent_downscale));
  const t = input("timestep");
  const tDims = t.shape.length === 0 ? [] : [1];
  const feeds: Record<string, HostTensor> = {
    sample: zeros([1, 2 * m.latent_channels, side, side]),
    timestep: t.type === "int64" ? { type: "int64", data: new BigInt64Array([500n]), dims: tDims } : { type: "float32", data: new Float32Array([500]), dims: tDims },
  };
  if (m.rewards) feeds[m.rewards.scores_input] = zeros([1, 3]);
  const feed = (l: Link, w: number) => zeros(l.what === "pooled" ? [1, w] : [1, axis(input(l.input), 1) ?? 77, w]);
  // a width the UNet declares is fed as declared (a mismatch there is already a problem line),
  // so the run tests only the symbolic ones
  for (const l of fed) feeds[l.input] = feed(l, axis(input(l.input), -1) ?? l.width!);
  const attempt = (f: Record<string, HostTensor>) => unet.run(f, { probe: true }).then(() => undefined, (err: unknown) => err as Error);
  const err = await attempt(feeds);
  if (!err) return [];
  const raw = (err.cause as Error | undefined)?.message ?? err.message;
  const words = ortMessage(err);
  let got: number | undefined;
  let expected: number | undefined;
  let named: string | undefined;
  const boundary = /invalid dimensions for input: (\S+) for the following indices\s+index: \d+ Got: (\d+) Expected: (\d+)/.exec(raw);
  const gemm = /W: \{(\d+),(\d+)\} K: (\d+) N:\s*(\d+)/.exec(raw);
  if (boundary) [named, got, expected] = [boundary[1], Number(boundary[2]), Number(boundary[3])];
  else if (gemm) [got, expected] = [Number(gemm[3]), gemm[1] === gemm[4] ? Number(gemm[2]) : Number(gemm[1])];
  else if (!/dimension|shape|broadcast|mismatch/i.test(raw)) {
    return [`unet: one run on a probe (batch 1, ${side}x${side} latent, the text encoder's widths) fails: ${words}`];
  }
  // the input that was fed the rejected width
  let blamed = unsure.filter((l) => (named ? l.input === named : got === undefined || l.width === got));
  if (!blamed.length) blamed = unsure;
  // both, when the text encoder's two widths agree: the one that runs once given the UNet's
  // width is it; else both, when the graph runs with both given it; else the UNet's width for
  // the other is not known
  if (blamed.length > 1 && expected !== undefined) {
    const alone = [];
    for (const l of blamed) if (!(await attempt({ ...feeds, [l.input]: feed(l, expected) }))) alone.push(l);
    if (alone.length === 1) blamed = alone;
    else if (await attempt({ ...feeds, ...Object.fromEntries(blamed.map((l) => [l.input, feed(l, expected!)])) })) expected = undefined;
  }
  const joiner = blamed.length > 1 && expected !== undefined ? " and " : " or ";
  const what = [...new Set(blamed.map((l) => l.what))].join(joiner);
  const inputs = blamed.map((l) => l.input).join(joiner);
  const width = got ?? blamed[0].width;
  return [
    `components do not fit: text_encoder ${what} width vs unet ${inputs} width (${width} vs ${expected ?? "another"}; ` +
      `unet declares the width symbolic and its graph rejects ${width} in a probe run: ${words})`,
  ];
}

/**
 * Whether the components can feed each other: the text encoder's width against the UNet's
 * cross-attention and feedback inputs, the latent channels of the VAE halves against the UNet's.
 * Declared shapes decide where both sides are fixed; a symbolic side is settled by probe runs
 * (probeTextEncoder, probeUnet). A folder assembled from mismatched exports otherwise loads and
 * fails only inside ONNX Runtime at the first edit.
 */
async function checkFit(s: Partial<Record<Component, Session>>, m: Manifest): Promise<string[]> {
  const problems: string[] = [];
  const input = (c: Component, name: string) => s[c]?.inputs.find((i) => i.name === name);
  const output = (c: Component, names: string[]) => s[c]?.outputs.find((o) => names.includes(o.name)) ?? s[c]?.outputs[0];
  const mismatch = (what: string, a: number | undefined, b: number | undefined, note = "") => {
    if (a !== undefined && b !== undefined && a !== b) problems.push(`components do not fit: ${what} (${a} vs ${b}${note})`);
  };
  const te = s.text_encoder;
  const clean = (c: Component) => s[c] !== undefined && checkSignature(c, s[c]!.inputs, m).length === 0;
  if (te && s.unet) {
    const links: Link[] = [{ what: "last_hidden_state", input: "encoder_hidden_states", width: axis(output("text_encoder", ["last_hidden_state"]), -1) }];
    const feedback = m.rewards?.feedback_input;
    if (feedback && input("unet", feedback)) {
      const pooled = te.outputs.find((o) => POOLED.includes(o.name));
      if (pooled) links.push({ what: "pooled", input: feedback, width: axis(pooled, -1) });
      else problems.push(`components do not fit: text_encoder has no pooled output (${POOLED.join(" or ")}) for unet ${feedback}`);
    }
    const fed = links.filter((l) => input("unet", l.input));
    if (fed.some((l) => l.width === undefined) && clean("text_encoder")) {
      const measured = await probeTextEncoder(te, problems);
      for (const l of fed) {
        if (l.width === undefined && measured?.[l.what] !== undefined) Object.assign(l, { width: measured[l.what], measured: true });
      }
    }
    const unsure: Link[] = [];
    for (const l of fed) {
      const want = axis(input("unet", l.input), -1);
      if (l.width === undefined) continue;
      if (want === undefined) unsure.push(l);
      const note = l.measured ? `; text_encoder declares its width symbolic, ${l.width} is what a probe run returns` : "";
      mismatch(`text_encoder ${l.what} width vs unet ${l.input} width`, l.width, want, note);
      // the shallow graph only where it differs from the whole UNet, so one mismatch is one line
      const shallow = axis(input("unet_shallow", l.input), -1);
      if (shallow !== want) mismatch(`text_encoder ${l.what} width vs unet_shallow ${l.input} width`, l.width, shallow, note);
    }
    if (unsure.length && fed.every((l) => l.width !== undefined) && clean("unet")) problems.push(...(await probeUnet(s.unet, m, fed, unsure)));
  }
  const C = m.latent_channels;
  mismatch("unet sample channels vs 2 x latent_channels (noisy latent + image latent)", axis(input("unet", "sample"), 1), 2 * C);
  mismatch("vae_decoder latent_sample channels vs latent_channels", axis(input("vae_decoder", "latent_sample"), 1), C);
  const enc = axis(output("vae_encoder", ["latent_sample", "latent_dist", "latent_parameters"]), 1);
  if (enc !== undefined && enc !== C && enc !== 2 * C) problems.push(`components do not fit: vae_encoder output channels ${enc}, expected ${C} (or ${2 * C}: mean and log-variance)`);
  mismatch("unet output channels vs latent_channels", axis(output("unet", ["out_sample"]), 1), C);
  return problems;
}

/**
 * Opens everything a folder should hold and reports every problem found, not just the first.
 * The caller owns the returned sessions.
 */
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
  // ONNX Runtime's saved graph of an int8 folder (models quantize) loaded to a 8.3 GB peak where
  // the folder itself peaks at 3.7 GB, and ran its UNet 40 % slower (docs/performance.md); its
  // sessions load in about 3 s without it, so the saved graphs are not used for such a folder
  if (options.optimizedCacheDir && manifest?.source?.dtype === "int8") {
    options.log?.(`${dir}: int8 weights; ONNX Runtime's saved optimised graphs are not used for them`);
    options = { ...options, optimizedCacheDir: undefined };
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
  // after the shallow graph opens: checkFit checks its widths too
  if (manifest) problems.push(...(await checkFit(sessions, manifest)));
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
