"""Reading a diffusers-format InstructPix2Pix / Multi-Reward folder: component configs, weights in
any of the published file forms, the kind of editor, and every name/shape problem at once.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field

import torch
from torch import nn

import clip_text
import safetensors_io
import unet as unet_mod
import vae as vae_mod

WEIGHT_FILES = {
    "unet": ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin"],
    "vae": ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin"],
    "text_encoder": ["model.safetensors", "model.fp16.safetensors", "pytorch_model.bin", "pytorch_model.fp16.bin"],
}
MRC_MARKERS = ("add_embedding.", "add_embedding2.", "text_linear.", "text_linear2.", "proj_deal.", "ca.")


class CheckpointError(Exception):
    """Carries every problem found, one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@contextlib.contextmanager
def meta_parameters():
    """Modules built inside keep their parameters on the meta device: shapes without memory.
    (torch 1.13 has no `with torch.device("meta")`; each parameter is moved as it is registered,
    so at most one layer's tensor exists at a time.)"""
    original = nn.Module.register_parameter

    def register(self, name, param):
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        original(self, name, param)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def expected_shapes(module: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def weight_file(component_dir: str, component: str) -> str | None:
    for name in WEIGHT_FILES[component]:
        p = os.path.join(component_dir, name)
        if os.path.exists(p):
            return p
    return None


def shard_files(component_dir: str) -> list[str]:
    """Sharded checkpoints: *.safetensors.index.json / *.bin.index.json name their shards (a variant's
    index is *.safetensors.index.fp16.json)."""
    for f in sorted(os.listdir(component_dir)) if os.path.isdir(component_dir) else []:
        if re.search(r"\.index(\.\w+)?\.json$", f):
            shards = sorted(set(json.load(open(os.path.join(component_dir, f)))["weight_map"].values()))
            return [os.path.join(component_dir, s) for s in shards]
    return []


def load_state(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        return safetensors_io.load(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def read_json(path: str, problems: list[str]) -> dict | None:
    try:
        return json.load(open(path))
    except FileNotFoundError:
        problems.append(f"missing file {os.path.relpath(path, os.path.dirname(os.path.dirname(path)))}")
    except ValueError as e:
        problems.append(f"{path}: not valid JSON ({e})")
    return None


@dataclass
class Checkpoint:
    src: str
    kind: str  # "instruct-pix2pix" | "multi-reward"
    configs: dict
    states: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


def compare(component: str, expected: dict, got: dict, ignored: set[str] = frozenset()) -> list[str]:
    problems = []
    for k in expected:
        if k not in got:
            problems.append(f"{component}: missing tensor {k} {expected[k]}")
        elif list(got[k]) != expected[k]:
            problems.append(f"{component}: tensor {k} has shape {list(got[k])}, expected {expected[k]}")
    for k in got:
        if k not in expected and k not in ignored:
            problems.append(f"{component}: unexpected tensor {k} {list(got[k])}")
    return problems


def build(component: str, cfg: dict, rewards: bool = False) -> nn.Module:
    if component == "unet":
        return unet_mod.UNet2DConditionModel(cfg, rewards=rewards)
    if component == "vae":
        return vae_mod.AutoencoderKL(cfg)
    return clip_text.CLIPTextModel(cfg)


def inspect(src: str, load_weights: bool = True) -> Checkpoint:
    """Reads and checks a checkpoint folder; raises CheckpointError listing every problem."""
    problems: list[str] = []
    if not os.path.isdir(src):
        raise CheckpointError([f"{src}: folder does not exist"])
    index = read_json(os.path.join(src, "model_index.json"), problems)
    if index and index.get("_class_name") not in (None, "StableDiffusionInstructPix2PixPipeline"):
        problems.append(f"model_index.json: pipeline {index['_class_name']} is not an InstructPix2Pix editor")
    for f in ("tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json"):
        if not os.path.exists(os.path.join(src, f)):
            problems.append(f"missing file {f}")
    configs, shapes, files = {}, {}, {}
    for c in ("unet", "vae", "text_encoder"):
        cfg = read_json(os.path.join(src, c, "config.json"), problems)
        if cfg is None:
            continue
        configs[c] = cfg
        found = weight_file(os.path.join(src, c), c)
        paths = [found] if found else shard_files(os.path.join(src, c))
        if not paths:
            problems.append(f"{c}: no weights ({' or '.join(WEIGHT_FILES[c])})")
            continue
        files[c] = paths
        try:
            if all(p.endswith(".safetensors") for p in paths) and not load_weights:
                shapes[c] = {k: v for p in paths for k, v in safetensors_io.shapes(p).items()}
            else:
                shapes[c] = {k: list(v.shape) for p in paths for k, v in load_state(p).items()}
        except Exception as e:  # a corrupt file is one more problem, not a traceback
            problems.append(f"{c}: cannot read {os.path.basename(paths[0])}: {str(e).splitlines()[0]}")
    if "unet" in configs:
        problems += unet_mod.config_problems(configs["unet"])
    if "vae" in configs:
        problems += vae_mod.config_problems(configs["vae"])
        if "vae" in shapes:
            shapes["vae"] = vae_mod.upgrade_shapes(shapes["vae"])
    kind = "instruct-pix2pix"
    if "unet" in shapes:
        if any(k.startswith(MRC_MARKERS) for k in shapes["unet"]):
            kind = "multi-reward"
        conv_in = shapes["unet"].get("conv_in.weight")
        channels = conv_in[1] if conv_in else configs["unet"].get("in_channels")
        if channels != 8:
            # one clear line: the rest of the comparison would only restate it
            raise CheckpointError([f"unet: conv_in takes {channels} channels; an InstructPix2Pix editor takes 8 "
                                   "(noisy latent + image latent). This looks like a text-to-image UNet, not an editor."])
    for c in ("unet", "vae", "text_encoder"):
        if c in shapes and c in configs:
            try:
                with meta_parameters():
                    module = build(c, configs[c], rewards=kind == "multi-reward")
            except (KeyError, ValueError, TypeError) as e:
                problems.append(f"{c}/config.json: cannot build the model: {e}")
                continue
            ignored = clip_text.IGNORED if c == "text_encoder" else set()
            problems += compare(c, expected_shapes(module), shapes[c], ignored)
    if problems:
        raise CheckpointError(problems)
    ck = Checkpoint(src, kind, configs, files=files)
    if load_weights:
        for c, paths in files.items():
            state = {k: v for p in paths for k, v in load_state(p).items()}
            ck.states[c] = vae_mod.upgrade_names(state) if c == "vae" else state
    return ck


def instantiate(ck: Checkpoint, component: str) -> nn.Module:
    """The float32 module with the checkpoint's weights (float16/bfloat16 stored weights are widened)."""
    with meta_parameters():
        module = build(component, ck.configs[component], rewards=ck.kind == "multi-reward")
    state = {k: v.float() for k, v in ck.states[component].items()
             if not (component == "text_encoder" and k in clip_text.IGNORED)}
    module.load_state_dict(state, strict=True, assign=True) if _has_assign() else _load_assign(module, state)
    return module.eval()


def _has_assign() -> bool:
    import inspect as _inspect
    return "assign" in _inspect.signature(nn.Module.load_state_dict).parameters


def _load_assign(module: nn.Module, state: dict) -> None:
    """load_state_dict(assign=True) for torch < 2.1: replace the meta parameters by the loaded ones."""
    for name, tensor in state.items():
        *path, leaf = name.split(".")
        owner = module
        for p in path:
            owner = getattr(owner, p) if not p.isdigit() else owner[int(p)]
        setattr(owner, leaf, nn.Parameter(tensor, requires_grad=False))
    left = [n for n, p in module.named_parameters() if p.device.type == "meta"]
    if left:
        raise CheckpointError([f"parameter {n} was not loaded" for n in left])
