/**
 * Original Stable Diffusion (CompVis/LDM) single-file checkpoints, written from a diffusers-format
 * folder: the reverse of the converter's name mapping (models/convert/single_file.py), stated here
 * on its own, name by name from the diffusers side with index arithmetic, so a test of the
 * converter checks its mapping instead of repeating it. Tensor bytes are copied file to file in
 * slices, so a full-size (4 GB) checkpoint is written in little memory.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import path from "node:path";

/** A tensor to write: its bytes either held or at a byte range of a source file. */
export interface Tensor {
  dtype: string;
  shape: number[];
  bytes?: Uint8Array;
  from?: { file: string; start: number; end: number };
}
export type Tensors = Map<string, Tensor>;

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export const tensorBytes = (t: Tensor): number => (t.bytes ? t.bytes.length : t.from!.end - t.from!.start);

/** The tensors of a .safetensors file, by reference (only its header is read). */
export function tensorsOf(file: string): Tensors {
  const fd = openSync(file, "r");
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const head = Buffer.alloc(n);
    readSync(fd, head, 0, n, 8);
    const header = JSON.parse(head.toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const out: Tensors = new Map();
    for (const [name, h] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      out.set(name, { dtype: h.dtype, shape: h.shape, from: { file, start: 8 + n + h.data_offsets[0], end: 8 + n + h.data_offsets[1] } });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

export function writeSafetensors(file: string, tensors: Tensors): void {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, t] of tensors) {
    const size = tensorBytes(t);
    if (size !== t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype]) throw new Error(`${name}: ${size} bytes for ${t.dtype} ${JSON.stringify(t.shape)}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const fd = openSync(file, "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    writeSync(fd, len);
    writeSync(fd, json);
    const chunk = Buffer.alloc(16 << 20);
    const fds = new Map<string, number>();
    try {
      for (const t of tensors.values()) {
        if (t.bytes) {
          writeSync(fd, t.bytes);
          continue;
        }
        const { file: src, start, end } = t.from!;
        if (!fds.has(src)) fds.set(src, openSync(src, "r"));
        for (let at = start; at < end; at += chunk.length) {
          const n = readSync(fds.get(src)!, chunk, 0, Math.min(chunk.length, end - at), at);
          writeSync(fd, chunk, 0, n);
        }
      }
    } finally {
      for (const f of fds.values()) closeSync(f);
    }
  } finally {
    closeSync(fd);
  }
}

interface UnetConfig {
  layers_per_block?: number;
  up_block_types: string[];
}
interface VaeConfig {
  block_out_channels: number[];
}

/** diffusers ResnetBlock2D -> LDM ResBlock (UNet) inner names. */
const UNET_RESNET: Record<string, string> = {
  norm1: "in_layers.0", conv1: "in_layers.2", time_emb_proj: "emb_layers.1",
  norm2: "out_layers.0", conv2: "out_layers.3", conv_shortcut: "skip_connection",
};

function resnetInner(rest: string, table: Record<string, string>): string {
  const [head, ...tail] = rest.split(".");
  return [table[head] ?? head, ...tail].join(".");
}

/** The LDM name of a diffusers UNet weight (without the model.diffusion_model. prefix). */
export function originalUnetName(name: string, cfg: UnetConfig): string {
  const lpb = cfg.layers_per_block ?? 2;
  const fixed: Record<string, string> = {
    conv_in: "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
    conv_norm_out: "out.0", conv_out: "out.2",
  };
  const leaf = name.slice(name.lastIndexOf(".") + 1);
  const module = name.slice(0, name.lastIndexOf("."));
  if (fixed[module]) return `${fixed[module]}.${leaf}`;
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    // every earlier down block holds lpb layers and a downsampler; input_blocks.0 is conv_in
    const index = 1 + Number(m[1]) * (lpb + 1) + Number(m[3]);
    return m[2] === "resnets" ? `input_blocks.${index}.0.${resnetInner(m[4], UNET_RESNET)}` : `input_blocks.${index}.1.${m[4]}`;
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$/.exec(name);
  if (m) return `input_blocks.${1 + Number(m[1]) * (lpb + 1) + lpb}.0.op.${m[2]}`;
  m = /^mid_block\.(resnets|attentions)\.(\d)\.(.+)$/.exec(name);
  if (m) {
    if (m[1] === "attentions") return `middle_block.1.${m[3]}`;
    return `middle_block.${m[2] === "0" ? 0 : 2}.${resnetInner(m[3], UNET_RESNET)}`;
  }
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(name);
  if (m) {
    const index = Number(m[1]) * (lpb + 1) + Number(m[3]);
    return m[2] === "resnets" ? `output_blocks.${index}.0.${resnetInner(m[4], UNET_RESNET)}` : `output_blocks.${index}.1.${m[4]}`;
  }
  m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)$/.exec(name);
  if (m) {
    // the upsampler follows the last layer's resnet, and its attention when the block has them
    const b = Number(m[1]);
    const slot = cfg.up_block_types[b].startsWith("CrossAttn") ? 2 : 1;
    return `output_blocks.${b * (lpb + 1) + lpb}.${slot}.conv.${m[2]}`;
  }
  throw new Error(`no LDM name for UNet weight ${name}`);
}

const VAE_ATTENTION: Record<string, string> = { group_norm: "norm", to_q: "q", to_k: "k", to_v: "v", "to_out.0": "proj_out" };

/** The LDM name of a diffusers VAE weight (without first_stage_model.). */
export function originalVaeName(name: string, cfg: VaeConfig): string {
  const levels = cfg.block_out_channels.length;
  const vaeResnet = (rest: string) => rest.replace(/^conv_shortcut\./, "nin_shortcut.");
  let m = /^(encoder|decoder)\.conv_norm_out\.(.+)$/.exec(name);
  if (m) return `${m[1]}.norm_out.${m[2]}`;
  m = /^(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)$/.exec(name);
  if (m) return `${m[1]}.mid.block_${Number(m[2]) + 1}.${vaeResnet(m[3])}`;
  m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.+)$/.exec(name);
  if (m) return `${m[1]}.mid.attn_1.${VAE_ATTENTION[m[2]]}.${m[3]}`;
  m = /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(name);
  if (m) return `encoder.down.${m[1]}.block.${m[2]}.${vaeResnet(m[3])}`;
  m = /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)$/.exec(name);
  if (m) return `encoder.down.${m[1]}.downsample.${m[2]}`;
  // decoder.up counts from the finest resolution, diffusers' up_blocks from the deepest
  m = /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/.exec(name);
  if (m) return `decoder.up.${levels - 1 - Number(m[1])}.block.${m[2]}.${vaeResnet(m[3])}`;
  m = /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)$/.exec(name);
  if (m) return `decoder.up.${levels - 1 - Number(m[1])}.upsample.${m[2]}`;
  if (/^(encoder\.conv_(in|out)|decoder\.conv_(in|out)|quant_conv|post_quant_conv)\./.test(name)) return name;
  throw new Error(`no LDM name for VAE weight ${name}`);
}

/** LitEma's key for a model.diffusion_model.* weight: the path below `model.` with its dots dropped. */
export const emaName = (original: string): string => `model_ema.${original.slice("model.".length).replaceAll(".", "")}`;

export interface SingleFileOptions {
  /** Write text encoder names without `text_model.`, as transformers < 4.17 saved them. */
  legacyText?: boolean;
}

/**
 * Every weight of a diffusers folder under its original single-file name, the VAE attention
 * projections as the 1x1 convolutions the original autoencoder stores ([C, C] -> [C, C, 1, 1]).
 */
export function singleFileTensors(dir: string, o: SingleFileOptions = {}): Tensors {
  const cfg = (c: string) => JSON.parse(readFileSync(path.join(dir, c, "config.json"), "utf8"));
  const unetCfg = cfg("unet") as UnetConfig;
  const vaeCfg = cfg("vae") as VaeConfig;
  const out: Tensors = new Map();
  for (const [name, t] of tensorsOf(path.join(dir, "unet", "diffusion_pytorch_model.safetensors"))) {
    out.set(`model.diffusion_model.${originalUnetName(name, unetCfg)}`, t);
  }
  for (const [name, t] of tensorsOf(path.join(dir, "vae", "diffusion_pytorch_model.safetensors"))) {
    const conv = /\.mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(name);
    out.set(`first_stage_model.${originalVaeName(name, vaeCfg)}`, conv ? { ...t, shape: [...t.shape, 1, 1] } : t);
  }
  for (const [name, t] of tensorsOf(path.join(dir, "text_encoder", "model.safetensors"))) {
    out.set(`cond_stage_model.transformer.${o.legacyText ? name.replace(/^text_model\./, "") : name}`, t);
  }
  return out;
}

export const f32Tensor = (shape: number[], values: (i: number) => number): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: "F32", shape, bytes: new Uint8Array(Float32Array.from({ length: n }, (_, i) => values(i)).buffer) };
};

/** What the LDM training wrapper stores beside the weights: the noise schedule, EMA counters, the CLIP position ids. */
export function ldmExtras(o: SingleFileOptions = {}): Tensors {
  const betas = Array.from({ length: 1000 }, (_, i) => (0.00085 ** 0.5 + ((0.012 ** 0.5 - 0.00085 ** 0.5) * i) / 999) ** 2);
  const cumprod: number[] = [];
  betas.reduce((p, b, i) => (cumprod[i] = p * (1 - b)), 1);
  const ids = new BigInt64Array(77).map((_, i) => BigInt(i));
  return new Map<string, Tensor>([
    ["betas", f32Tensor([1000], (i) => betas[i])],
    ["alphas_cumprod", f32Tensor([1000], (i) => cumprod[i])],
    ["alphas_cumprod_prev", f32Tensor([1000], (i) => (i === 0 ? 1 : cumprod[i - 1]))],
    ["sqrt_one_minus_alphas_cumprod", f32Tensor([1000], (i) => Math.sqrt(1 - cumprod[i]))],
    ["model_ema.decay", f32Tensor([], () => 0.9999)],
    ["model_ema.num_updates", { dtype: "I32", shape: [], bytes: new Uint8Array(new Int32Array([22000]).buffer) }],
    [`cond_stage_model.transformer.${o.legacyText ? "" : "text_model."}embeddings.position_ids`, { dtype: "I64", shape: [1, 77], bytes: new Uint8Array(ids.buffer) }],
  ]);
}

/** EMA copies of the UNet weights (LitEma names), each filled by `fill` or copying the weight. */
export function emaCopies(tensors: Tensors, fill?: (t: Tensor) => Tensor): Tensors {
  const out: Tensors = new Map();
  for (const [name, t] of tensors) if (name.startsWith("model.diffusion_model.")) out.set(emaName(name), fill ? fill(t) : t);
  return out;
}

/** The same dtype and shape, all zeros: weights that would spoil every output if they were used. */
export const zerosLike = (t: Tensor): Tensor => ({ dtype: t.dtype, shape: t.shape, bytes: new Uint8Array(tensorBytes(t)) });
