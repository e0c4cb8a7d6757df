"""Single-file checkpoints in the original Stable Diffusion layout (CompVis/LDM: the official
`instruct-pix2pix-00-22000` file, MagicBrush), read into the same Checkpoint a diffusers folder
gives, so convert.py exports them unchanged:

  python3 convert.py FILE.safetensors|FILE.ckpt OUT --config DIR [--ema]

The file holds `model.diffusion_model.*` (UNet), `first_stage_model.*` (VAE) and
`cond_stage_model.transformer.*` (CLIP text encoder) under the LDM module names; the names are
mapped to diffusers' as diffusers' own single-file loader maps them, block by block from the
config's block_out_channels, layers_per_block and block types. Configs, tokenizer and scheduler
come from DIR, a diffusers folder of the same model (its weights are not read).
"""
from __future__ import annotations

import os
import re

import torch

import checkpoint
import clip_text
import safetensors_io
import unet as unet_mod
import vae as vae_mod

PREFIXES = {"unet": "model.diffusion_model.", "vae": "first_stage_model.", "text_encoder": "cond_stage_model.transformer."}
EMA_PREFIX = "model_ema."
# the LDM training wrapper's noise-schedule buffers and EMA bookkeeping: nothing a component loads
IGNORED = {
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "logvar", "lvlb_weights", "model_ema.decay", "model_ema.num_updates",
}
# a buffer transformers stopped saving; our text encoder computes positions itself
TEXT_IGNORED = {"text_model.embeddings.position_ids", "embeddings.position_ids"}
# autoencoder training losses (LPIPS, discriminator) some VAE-tuned files still carry
IGNORED_PREFIXES = ("first_stage_model.loss.",)
TORCH_PICKLES = (".ckpt", ".pt", ".pth", ".bin")

# inner module names of the LDM ResBlock / VAE ResnetBlock / VAE AttnBlock -> diffusers'
UNET_RESNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
               "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
VAE_RESNET = {"nin_shortcut": "conv_shortcut"}
VAE_ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
SAME: dict = {}  # SpatialTransformer, convs, norms: LDM and diffusers use the same inner names


class Refused(checkpoint.CheckpointError):
    """A file this converter will not open at all (one line, no list)."""


def is_single_file(src: str) -> bool:
    return os.path.isfile(src) or src.endswith((".safetensors",) + TORCH_PICKLES)


def unet_table(cfg: dict) -> dict[str, tuple[str, dict]]:
    """LDM module path -> (diffusers module path, inner renames), for the UNet a config builds:
    input_blocks.N counts resnet(+attention) layers and downsamplers in order; output_blocks.N the
    up blocks' layers, the last of each carrying its upsampler after the attention, if any."""
    chs, layers = cfg["block_out_channels"], cfg.get("layers_per_block", 2)
    t = {"time_embed.0": ("time_embedding.linear_1", SAME), "time_embed.2": ("time_embedding.linear_2", SAME),
         "input_blocks.0.0": ("conv_in", SAME), "out.0": ("conv_norm_out", SAME), "out.2": ("conv_out", SAME)}
    n = 1
    for b, kind in enumerate(cfg["down_block_types"]):
        for j in range(layers):
            t[f"input_blocks.{n}.0"] = (f"down_blocks.{b}.resnets.{j}", UNET_RESNET)
            if kind.startswith("CrossAttn"):
                t[f"input_blocks.{n}.1"] = (f"down_blocks.{b}.attentions.{j}", SAME)
            n += 1
        if b < len(chs) - 1:
            t[f"input_blocks.{n}.0.op"] = (f"down_blocks.{b}.downsamplers.0.conv", SAME)
            n += 1
    if cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn") is not None:
        t["middle_block.0"] = ("mid_block.resnets.0", UNET_RESNET)
        t["middle_block.1"] = ("mid_block.attentions.0", SAME)
        t["middle_block.2"] = ("mid_block.resnets.1", UNET_RESNET)
    n = 0
    for b, kind in enumerate(cfg["up_block_types"]):
        cross = kind.startswith("CrossAttn")
        for j in range(layers + 1):
            t[f"output_blocks.{n}.0"] = (f"up_blocks.{b}.resnets.{j}", UNET_RESNET)
            if cross:
                t[f"output_blocks.{n}.1"] = (f"up_blocks.{b}.attentions.{j}", SAME)
            if j == layers and b < len(chs) - 1:
                t[f"output_blocks.{n}.{2 if cross else 1}.conv"] = (f"up_blocks.{b}.upsamplers.0.conv", SAME)
            n += 1
    return t


def vae_table(cfg: dict) -> dict[str, tuple[str, dict]]:
    """The LDM autoencoder's encoder.down.I / decoder.up.I count resolutions from the finest, so the
    decoder's are reversed against diffusers' up_blocks (applied deepest first)."""
    levels, layers = len(cfg["block_out_channels"]), cfg.get("layers_per_block", 1)
    t = {"quant_conv": ("quant_conv", SAME), "post_quant_conv": ("post_quant_conv", SAME)}
    for side in ("encoder", "decoder"):
        t[f"{side}.conv_in"] = (f"{side}.conv_in", SAME)
        t[f"{side}.conv_out"] = (f"{side}.conv_out", SAME)
        t[f"{side}.norm_out"] = (f"{side}.conv_norm_out", SAME)
        t[f"{side}.mid.block_1"] = (f"{side}.mid_block.resnets.0", VAE_RESNET)
        t[f"{side}.mid.attn_1"] = (f"{side}.mid_block.attentions.0", VAE_ATTENTION)
        t[f"{side}.mid.block_2"] = (f"{side}.mid_block.resnets.1", VAE_RESNET)
    for i in range(levels):
        for j in range(layers):
            t[f"encoder.down.{i}.block.{j}"] = (f"encoder.down_blocks.{i}.resnets.{j}", VAE_RESNET)
        if i < levels - 1:
            t[f"encoder.down.{i}.downsample.conv"] = (f"encoder.down_blocks.{i}.downsamplers.0.conv", SAME)
        up = levels - 1 - i
        for j in range(layers + 1):
            t[f"decoder.up.{i}.block.{j}"] = (f"decoder.up_blocks.{up}.resnets.{j}", VAE_RESNET)
        if i > 0:
            t[f"decoder.up.{i}.upsample.conv"] = (f"decoder.up_blocks.{up}.upsamplers.0.conv", SAME)
    return t


def invert(table: dict[str, tuple[str, dict]]) -> dict[str, tuple[str, dict]]:
    return {d: (o, {v: k for k, v in inner.items()}) for o, (d, inner) in table.items()}


def rename(key: str, table: dict[str, tuple[str, dict]]) -> str | None:
    """The longest module path of `table` that `key` lies under, with the inner rename applied;
    None when no module of the table holds it."""
    parts = key.split(".")
    for n in range(len(parts) - 1, 0, -1):
        hit = table.get(".".join(parts[:n]))
        if hit:
            module, inner = hit
            rest = ".".join(parts[n:])
            for old, new in inner.items():
                if rest.startswith(old + "."):
                    rest = new + rest[len(old):]
                    break
            return f"{module}.{rest}"
    return None


def text_name(key: str) -> str:
    # files written with transformers < 4.17 lack the text_model. level
    return key if key.startswith("text_model.") else "text_model." + key


def ema_name(key: str) -> str:
    """LitEma's name for a UNet weight: its path under the LDM wrapper (`diffusion_model.`...) with
    the dots dropped, as diffusers' extract_ema looks it up."""
    return EMA_PREFIX + key[len("model."):].replace(".", "")


def _read_torch(path: str) -> dict[str, torch.Tensor]:
    import pickle
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported (?:class|global: GLOBAL) ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise Refused([f"{path} needs arbitrary code to unpickle{what}; refusing: convert it to safetensors first "
                       "with a tool you trust, or use the checkpoint's .safetensors release"]) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise checkpoint.CheckpointError([f"{path}: holds a {type(state).__name__}, not a dict of tensors"])
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _load_safetensors(path: str, names: set[str]) -> dict[str, torch.Tensor]:
    """Only the named tensors: an EMA file is twice the weights the conversion uses."""
    header, base = safetensors_io.read_header(path)
    out = {}
    with open(path, "rb") as f:
        # in file order: one pass through the file, not a seek per tensor
        for name in sorted(names, key=lambda n: header[n]["data_offsets"][0]):
            h = header[name]
            if h["dtype"] not in safetensors_io.DTYPES:
                raise safetensors_io.FormatError(f"{path}: tensor {name} has unsupported dtype {h['dtype']}")
            a, b = h["data_offsets"]
            f.seek(base + a)
            buf = bytearray(f.read(b - a))
            if len(buf) != b - a:
                raise safetensors_io.FormatError(f"{path}: truncated at tensor {name}")
            dtype = safetensors_io.DTYPES[h["dtype"]]
            out[name] = (torch.frombuffer(buf, dtype=dtype) if b > a else torch.empty(0, dtype=dtype)).reshape(h["shape"])
    return out


def read_configs(config_dir: str, problems: list[str]) -> dict:
    """The small files of a diffusers folder, checked as checkpoint.inspect checks a whole folder."""
    if not os.path.isdir(config_dir):
        problems.append(f"--config {config_dir}: folder does not exist")
        return {}

    def read(rel: str) -> dict | None:
        if not os.path.exists(os.path.join(config_dir, rel)):
            problems.append(f"--config {config_dir}: missing file {rel}")
            return None
        return checkpoint.read_json(os.path.join(config_dir, rel), problems)

    index = read("model_index.json")
    if index and index.get("_class_name") not in (None, "StableDiffusionInstructPix2PixPipeline"):
        problems.append(f"--config {config_dir}: model_index.json: pipeline {index['_class_name']} is not an InstructPix2Pix editor")
    for f in ("tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json"):
        if not os.path.exists(os.path.join(config_dir, f)):
            problems.append(f"--config {config_dir}: missing file {f}")
    configs = {}
    for c in ("unet", "vae", "text_encoder"):
        cfg = read(f"{c}/config.json")
        if cfg is not None:
            configs[c] = cfg
    if "unet" in configs:
        problems += unet_mod.config_problems(configs["unet"])
    if "vae" in configs:
        problems += vae_mod.config_problems(configs["vae"])
    return configs


def _summary(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def inspect(path: str, config_dir: str | None, ema: bool = False, load_weights: bool = True) -> checkpoint.Checkpoint:
    """Reads and checks a single-file checkpoint against the configs of `config_dir`; raises
    CheckpointError listing every problem (file names first, the diffusers name beside them)."""
    if not os.path.isfile(path):
        raise checkpoint.CheckpointError([f"{path}: file does not exist"])
    if not config_dir:
        raise checkpoint.CheckpointError([f"{path}: a single-file checkpoint needs --config DIR, a diffusers folder "
                                          "with model_index.json, unet/vae/text_encoder config.json, tokenizer/ and scheduler/"])
    problems: list[str] = []
    configs = read_configs(config_dir, problems)
    state: dict[str, torch.Tensor] | None = None
    try:
        if path.endswith(".safetensors"):
            file_shapes = safetensors_io.shapes(path)
        else:
            state = _read_torch(path)
            file_shapes = {k: list(v.shape) for k, v in state.items()}
    except checkpoint.CheckpointError:
        raise
    except Exception as e:  # a corrupt file is one line, not a traceback
        raise checkpoint.CheckpointError([f"{path}: cannot read: {str(e).splitlines()[0] if str(e) else type(e).__name__}"]) from None

    # which file tensor becomes which diffusers tensor of which component
    tables = {}
    if "unet" in configs:
        tables["unet"] = unet_table(configs["unet"])
    if "vae" in configs:
        tables["vae"] = vae_table(configs["vae"])
    chosen: dict[str, dict[str, str]] = {c: {} for c in PREFIXES}  # component -> diffusers name -> file name
    stray = []
    ema_keys = {k for k in file_shapes if k.startswith(EMA_PREFIX) and k not in IGNORED}
    for key in file_shapes:
        if key in IGNORED or key.startswith(IGNORED_PREFIXES) or key in ema_keys:
            continue
        comp = next((c for c, p in PREFIXES.items() if key.startswith(p)), None)
        if comp is None:
            stray.append(key)
            continue
        inner = key[len(PREFIXES[comp]):]
        if comp == "text_encoder":
            if inner in TEXT_IGNORED:
                continue
            name = text_name(inner)
        elif comp in tables:
            name = rename(inner, tables[comp]) or key  # unmapped: reported under its own name
        else:
            continue  # no config to map it by: already a problem
        chosen[comp][name] = key
    if ema:
        if not ema_keys:
            problems.append(f"--ema: the file has no EMA weights ({EMA_PREFIX}*)")
        else:
            for name, key in chosen["unet"].items():
                if ema_name(key) in ema_keys:
                    chosen["unet"][name] = ema_name(key)
                else:
                    problems.append(f"unet: --ema: no EMA copy {ema_name(key)} of {key}")
    if any(k.startswith("cond_stage_model.model.") for k in stray):
        problems.append("text_encoder: cond_stage_model.model.* is an OpenCLIP text encoder (Stable Diffusion 2.x); "
                        "InstructPix2Pix editors use the CLIP ViT-L/14 of SD 1.x (cond_stage_model.transformer.*)")
        stray = [k for k in stray if not k.startswith("cond_stage_model.model.")]
    if stray:
        problems.append(f"{len(stray)} tensor{'s' if len(stray) != 1 else ''} outside "
                        f"{', '.join(p + '*' for p in PREFIXES.values())}: {_summary(sorted(stray))}")

    shapes = {c: {n: file_shapes[k] for n, k in chosen[c].items()} for c in PREFIXES}
    # the original autoencoder's attention projections are 1x1 convolutions: compared as linears
    shapes["vae"] = vae_mod.upgrade_shapes(shapes["vae"])
    conv_in = shapes["unet"].get("conv_in.weight")
    channels = conv_in[1] if conv_in else configs.get("unet", {}).get("in_channels")
    if channels is not None and channels != 8:
        raise checkpoint.CheckpointError([f"unet: conv_in takes {channels} channels; an InstructPix2Pix editor takes 8 "
                                          "(noisy latent + image latent). This looks like a text-to-image UNet, not an editor."])
    for c, prefix in PREFIXES.items():
        if c not in configs:
            continue
        if not chosen[c]:
            problems.append(f"{c}: the file has no {prefix}* tensors")
            continue
        try:
            with checkpoint.meta_parameters():
                module = checkpoint.build(c, configs[c])
        except (KeyError, ValueError, TypeError) as e:
            problems.append(f"{c}/config.json: cannot build the model: {e}")
            continue
        back = invert(tables[c]) if c in tables else {}

        def file_name(name: str, c=c, prefix=prefix, back=back) -> str:
            if name in chosen[c]:
                return chosen[c][name]
            if c == "text_encoder":
                return prefix + name
            found = rename(name, back)
            return prefix + found if found else name

        expected = checkpoint.expected_shapes(module)
        for p in checkpoint.compare(c, expected, shapes[c], clip_text.IGNORED if c == "text_encoder" else set()):
            problems.append(_annotate(p, file_name))
    if problems:
        raise checkpoint.CheckpointError(problems)

    ck = checkpoint.Checkpoint(path, "instruct-pix2pix", configs, files={c: [path] for c in PREFIXES})
    if load_weights:
        wanted = {k for c in PREFIXES for k in chosen[c].values()}
        if state is None:
            state = _load_safetensors(path, wanted)
        for c in PREFIXES:
            ck.states[c] = {n: state[k] for n, k in chosen[c].items()}
        ck.states["vae"] = vae_mod.upgrade_names(ck.states["vae"])
    return ck


PROBLEM = re.compile(r"^(\w+): (missing tensor|tensor|unexpected tensor) (\S+)(.*)$")


def _annotate(problem: str, file_name) -> str:
    """compare()'s line with the file's own name first: that is the name the user can look up."""
    m = PROBLEM.match(problem)
    if not m:
        return problem
    comp, what, name, rest = m.groups()
    original = file_name(name)
    shown = name if original == name else f"{original} ({name})"
    return f"{comp}: {what} {shown}{rest}"
