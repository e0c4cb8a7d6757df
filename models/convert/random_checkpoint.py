"""A full-size diffusers-format checkpoint folder with random weights, written in the real layout
(what a user downloads): SD1.5 shapes from the reference configs, an 8-channel UNet, and with
--rewards the Multi-Reward stage-2 modules. For timing the converter and the full-scale edit,
where the real weights cannot be downloaded.

  python3 random_checkpoint.py --layout ../../../shared/reference/sd15-onnx-layout --out DIR [--rewards]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import torch

import checkpoint
import safetensors_io


def write(module, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    safetensors_io.save(module.state_dict(), path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layout", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rewards", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    unet_cfg = dict(json.load(open(f"{a.layout}/unet/config.json")), in_channels=8, _diffusers_version="0.29.0")
    vae_cfg = json.load(open(f"{a.layout}/vae_config.json"))
    text_cfg = json.load(open(f"{a.layout}/text_encoder_config.json"))
    for name, cfg, comp, fname in [("unet", unet_cfg, "unet", "diffusion_pytorch_model.safetensors"),
                                   ("vae", vae_cfg, "vae", "diffusion_pytorch_model.safetensors"),
                                   ("text_encoder", text_cfg, "text_encoder", "model.safetensors")]:
        if os.path.exists(f"{a.out}/{name}/{fname}"):
            continue
        with torch.no_grad():
            module = checkpoint.build(comp, cfg, rewards=a.rewards and comp == "unet")
            if comp == "unet":
                # default inits compound through 16 resnets into huge activations; smaller output
                # projections keep a random network's activations in the range real weights give
                for n, p in module.named_parameters():
                    if n.endswith(("conv2.weight", "proj_out.weight", "to_out.0.weight", "ff.net.2.weight")):
                        p.mul_(0.1)
        write(module, f"{a.out}/{name}/{fname}")
        json.dump(cfg, open(f"{a.out}/{name}/config.json", "w"), indent=2)
        del module
    shutil.copytree(f"{a.layout}/tokenizer", f"{a.out}/tokenizer", dirs_exist_ok=True, copy_function=shutil.copyfile)
    # the published editors ship Euler ancestral over the same SD1.5 training schedule
    sched = dict(json.load(open(f"{a.layout}/scheduler/scheduler_config.json")), _class_name="EulerAncestralDiscreteScheduler")
    for k in ("clip_sample", "set_alpha_to_one", "skip_prk_steps"):
        sched.pop(k, None)
    os.makedirs(f"{a.out}/scheduler", exist_ok=True)
    json.dump(sched, open(f"{a.out}/scheduler/scheduler_config.json", "w"), indent=2)
    index = {"_class_name": "StableDiffusionInstructPix2PixPipeline", "_diffusers_version": "0.29.0",
             "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    json.dump(index, open(f"{a.out}/model_index.json", "w"), indent=2)


if __name__ == "__main__":
    main()
