"""A UNet with Stable Diffusion 1.5's architecture (read from its diffusers config.json), random
weights, 8 input channels as InstructPix2Pix uses: for full-scale timing only (issue 7).

  sd_unet.py --config ../../../shared/reference/sd15-onnx-layout/unet/config.json --out DIR

Writes DIR/unet/model.onnx (+ external weights), DIR/matmul/model.onnx (for the sgemm peak) and
DIR/flops.json (multiply-adds counted per module for one batch-3 call at 64x64 latents).
"""
from __future__ import annotations

import argparse
import json
import math
import os

import torch
import torch.nn.functional as F
from torch import nn

FLOPS = {"total": 0}


def count(n: float) -> None:
    FLOPS["total"] += n


class Resnet(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int, groups: int, eps: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x))) + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):
    def __init__(self, dim: int, ctx: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(ctx, dim, bias=False)
        self.to_v = nn.Linear(ctx, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        b, n, c = x.shape
        m = ctx.shape[1]
        h = self.heads
        q = self.to_q(x).reshape(b, n, h, c // h).transpose(1, 2)
        k = self.to_k(ctx).reshape(b, m, h, c // h).transpose(1, 2)
        v = self.to_v(ctx).reshape(b, m, h, c // h).transpose(1, 2)
        if not torch.jit.is_tracing():
            count(2 * 2 * b * n * m * c)  # q k^T and attn v
        w = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(c // h))
        return self.to_out((w.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class Transformer(nn.Module):
    def __init__(self, ch: int, ctx: int, heads: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.proj_in = nn.Conv2d(ch, ch, 1)
        self.norm1, self.attn1 = nn.LayerNorm(ch), Attention(ch, ch, heads)
        self.norm2, self.attn2 = nn.LayerNorm(ch), Attention(ch, ctx, heads)
        self.norm3 = nn.LayerNorm(ch)
        self.ff_in = nn.Linear(ch, ch * 8)  # GEGLU: 2 x (4 x ch)
        self.ff_out = nn.Linear(ch * 4, ch)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x, ctx):
        b, c, hh, ww = x.shape
        h = self.proj_in(self.norm(x)).reshape(b, c, hh * ww).transpose(1, 2)
        h = h + self.attn1(self.norm1(h))
        h = h + self.attn2(self.norm2(h), ctx)
        a, gate = self.ff_in(self.norm3(h)).chunk(2, dim=-1)
        h = h + self.ff_out(a * F.gelu(gate))
        return x + self.proj_out(h.transpose(1, 2).reshape(b, c, hh, ww))


class SDUNet(nn.Module):
    def __init__(self, cfg: dict, in_channels: int = 8):
        super().__init__()
        chs = cfg["block_out_channels"]
        L = cfg["layers_per_block"]
        g, eps = cfg["norm_num_groups"], cfg["norm_eps"]
        heads = cfg["attention_head_dim"]  # SD1.x's config names the head count this way
        ctx = cfg["cross_attention_dim"]
        temb = chs[0] * 4
        self.c0 = chs[0]
        self.conv_in = nn.Conv2d(in_channels, chs[0], 3, padding=1)
        self.time_embedding = nn.Sequential(nn.Linear(chs[0], temb), nn.SiLU(), nn.Linear(temb, temb))
        self.down = nn.ModuleList()
        skip_chs = [chs[0]]
        cin = chs[0]
        for i, (kind, cout) in enumerate(zip(cfg["down_block_types"], chs)):
            blk = nn.ModuleDict({"res": nn.ModuleList(), "attn": nn.ModuleList()})
            for _ in range(L):
                blk["res"].append(Resnet(cin, cout, temb, g, eps))
                if kind.startswith("CrossAttn"):
                    blk["attn"].append(Transformer(cout, ctx, heads, g))
                cin = cout
                skip_chs.append(cout)
            if i < len(chs) - 1:
                blk["downsample"] = nn.Conv2d(cout, cout, 3, stride=2, padding=1)
                skip_chs.append(cout)
            self.down.append(blk)
        self.mid_res1 = Resnet(chs[-1], chs[-1], temb, g, eps)
        self.mid_attn = Transformer(chs[-1], ctx, heads, g)
        self.mid_res2 = Resnet(chs[-1], chs[-1], temb, g, eps)
        self.up = nn.ModuleList()
        rev = list(reversed(chs))
        cin = chs[-1]
        for i, (kind, cout) in enumerate(zip(cfg["up_block_types"], rev)):
            blk = nn.ModuleDict({"res": nn.ModuleList(), "attn": nn.ModuleList()})
            for _ in range(L + 1):
                blk["res"].append(Resnet(cin + skip_chs.pop(), cout, temb, g, eps))
                if kind.startswith("CrossAttn"):
                    blk["attn"].append(Transformer(cout, ctx, heads, g))
                cin = cout
            if i < len(chs) - 1:
                blk["upsample"] = nn.Conv2d(cout, cout, 3, padding=1)
            self.up.append(blk)
        self.conv_norm_out = nn.GroupNorm(g, chs[0], eps=eps)
        self.conv_out = nn.Conv2d(chs[0], 4, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        half = self.c0 // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        arg = timestep.float()[:, None] * freqs[None]
        t = self.time_embedding(torch.cat([torch.cos(arg), torch.sin(arg)], -1))
        h = self.conv_in(sample)
        skips = [h]
        for blk in self.down:
            for j, res in enumerate(blk["res"]):
                h = res(h, t)
                if len(blk["attn"]):
                    h = blk["attn"][j](h, encoder_hidden_states)
                skips.append(h)
            if "downsample" in blk:
                h = blk["downsample"](h)
                skips.append(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, t), encoder_hidden_states), t)
        for blk in self.up:
            for j, res in enumerate(blk["res"]):
                h = res(torch.cat([h, skips.pop()], 1), t)
                if len(blk["attn"]):
                    h = blk["attn"][j](h, encoder_hidden_states)
            if "upsample" in blk:
                h = blk["upsample"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.conv_norm_out(h)))


def conv_linear_flops(model: nn.Module) -> None:
    def conv_hook(m, inp, out):
        count(2 * out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])

    def linear_hook(m, inp, out):
        count(2 * out.numel() * m.in_features)

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--latent", type=int, default=64)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    cfg = json.load(open(a.config))
    model = SDUNet(cfg).eval()
    params = sum(p.numel() for p in model.parameters())
    args = (torch.randn(3, 8, a.latent, a.latent), torch.tensor([500.0, 500.0, 500.0]), torch.randn(3, 77, cfg["cross_attention_dim"]))
    conv_linear_flops(model)
    FLOPS["total"] = 0
    model(*args)
    flops = FLOPS["total"]
    os.makedirs(f"{a.out}/unet", exist_ok=True)
    json.dump({"params": params, "flops_per_call": flops, "batch": 3, "latent": a.latent}, open(f"{a.out}/flops.json", "w"), indent=2)
    print(f"params {params / 1e6:.1f} M, {flops / 1e12:.3f} TFLOP per batch-3 call", flush=True)
    for m in model.modules():
        m._forward_hooks.clear()
    torch.onnx.export(model, args, f"{a.out}/unet/model.onnx", opset_version=14,
                      input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["out_sample"],
                      dynamic_axes={"sample": {0: "batch"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}})
    n = 2048
    os.makedirs(f"{a.out}/matmul", exist_ok=True)

    class MatMul(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(n, n))

        def forward(self, x):
            return x @ self.w

    torch.onnx.export(MatMul(), (torch.randn(n, n),), f"{a.out}/matmul/model.onnx", opset_version=14,
                      input_names=["x"], output_names=["y"])
    json.dump({"n": n, "flops_per_call": 2 * n ** 3}, open(f"{a.out}/matmul/flops.json", "w"))


if __name__ == "__main__":
    main()
