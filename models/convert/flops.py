"""FLOPs per call of each component of a converted SD-size folder, counted on the converter's own
modules (random weights: FLOPs do not depend on them), plus a 2048^2 MatMul graph for the sgemm
peak. For `npm run bench`'s full-scale figures.

  python3 flops.py --checkpoint CKPT --out MODEL_FOLDER [--latent 64]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))

import checkpoint  # noqa: E402
import flop_count  # noqa: E402
import unet as unet_mod  # noqa: E402
from vae import AutoencoderKL, VaeDecoderGraph, VaeEncoderGraph  # noqa: E402


def counted_attention(q, k, v, heads):
    flop_count.attention(q.shape[0], heads * q.shape[1] * k.shape[1], q.shape[2] // heads)
    return ATTENTION(q, k, v, heads)


ATTENTION = unet_mod.attention
unet_mod.attention = counted_attention


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--latent", type=int, default=64)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    L, px = a.latent, 8 * a.latent
    cfg = {c: json.load(open(f"{a.checkpoint}/{c}/config.json")) for c in ("unet", "vae", "text_encoder")}
    rewards = "add_embedding.linear_1.weight" in checkpoint.safetensors_io.shapes(f"{a.checkpoint}/unet/diffusion_pytorch_model.safetensors")
    comps = {}

    def measure(name, model, *args, **info):
        params = sum(p.numel() for p in model.parameters())
        comps[name] = {"params": params, "flops_per_call": flop_count.measure(model.eval(), *args), **info}
        print(f"{name}: params {params / 1e6:.1f} M, {comps[name]['flops_per_call'] / 1e12:.3f} TFLOP per call", flush=True)

    unet = checkpoint.build("unet", cfg["unet"], rewards=rewards)
    uargs = [torch.randn(3, 8, L, L), torch.full((3,), 500.0), torch.randn(3, 77, cfg["unet"]["cross_attention_dim"])]
    if rewards:
        uargs += [torch.full((3, 3), 5.0), torch.randn(3, 768)]
    measure("unet", unet, *uargs, batch=3, latent=L)
    del unet
    vae = AutoencoderKL(cfg["vae"])
    measure("vae_encoder", VaeEncoderGraph(vae), torch.randn(1, 3, px, px), batch=1, pixels=px)
    measure("vae_decoder", VaeDecoderGraph(vae), torch.randn(1, 4, L, L), batch=1, pixels=px)
    # the pipeline encodes the instruction, the empty prompt and the feedback text in one batch
    measure("text_encoder", checkpoint.build("text_encoder", cfg["text_encoder"]), torch.zeros(3, 77, dtype=torch.int64), batch=3)
    u = comps["unet"]
    json.dump({"components": comps, "params": u["params"], "flops_per_call": u["flops_per_call"], "batch": 3, "latent": L},
              open(f"{a.out}/flops.json", "w"), indent=2)

    n = 2048
    os.makedirs(f"{a.out}/matmul", exist_ok=True)

    class MatMul(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(n, n))

        def forward(self, x):
            return x @ self.w

    torch.onnx.export(MatMul(), (torch.randn(n, n),), f"{a.out}/matmul/model.onnx", opset_version=14, input_names=["x"], output_names=["y"])
    json.dump({"n": n, "flops_per_call": 2 * n ** 3}, open(f"{a.out}/matmul/flops.json", "w"))


if __name__ == "__main__":
    main()
