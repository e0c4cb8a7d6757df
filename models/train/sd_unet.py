"""A whole Stable Diffusion 1.5-shaped InstructPix2Pix folder with random weights, for full-scale
timing only (issue 7): the UNet from its diffusers config.json with 8 input channels, the VAE
(AutoencoderKL) and the CLIP ViT-L/14 text encoder from theirs (sd_vae_clip.py).

  sd_unet.py --config ../../../shared/reference/sd15-onnx-layout/unet/config.json --out DIR

Writes a diffusers-style ONNX folder DIR/{unet,vae_encoder,vae_decoder,text_encoder}/model.onnx
(+ external weights for the UNet), tokenizer/ and scheduler/ copied from the reference layout
beside the config, DIR/matmul/model.onnx (for the sgemm peak) and DIR/flops.json (FLOPs per call
of each component at 512x512). A component already written is kept, so a rerun only adds what
is missing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil

import torch
import torch.nn.functional as F
from torch import nn

import flop_count
from sd_vae_clip import ClipTextEncoder, VaeDecoder, VaeEncoder


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
        flop_count.attention(b, h * n * m, c // h)
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


def export(model: nn.Module, args: tuple, path: str, inputs: list[str], outputs: list[str], dynamic: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(model, args, path, opset_version=14, input_names=inputs, output_names=outputs, dynamic_axes=dynamic)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="the UNet's config.json inside a reference layout")
    ap.add_argument("--out", required=True)
    ap.add_argument("--latent", type=int, default=64)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    ref = os.path.dirname(os.path.dirname(os.path.abspath(a.config)))
    cfg = json.load(open(a.config))
    vae_cfg = json.load(open(os.path.join(ref, "vae_config.json")))
    text_cfg = json.load(open(os.path.join(ref, "text_encoder_config.json")))
    L, px = a.latent, 8 * a.latent
    flops_file = os.path.join(a.out, "flops.json")
    flops = json.load(open(flops_file)) if os.path.exists(flops_file) else {}

    def component(name: str, model: nn.Module, args: tuple, inputs: list[str], outputs: list[str], dynamic: dict, **info) -> None:
        path = os.path.join(a.out, name, "model.onnx")
        if os.path.exists(path) and name in flops.get("components", {}):
            return
        model = model.eval()
        params = sum(p.numel() for p in model.parameters())
        n = flop_count.measure(model, *args)
        flops.setdefault("components", {})[name] = {"params": params, "flops_per_call": n, **info}
        print(f"{name}: params {params / 1e6:.1f} M, {n / 1e12:.3f} TFLOP per call", flush=True)
        export(model, args, path, inputs, outputs, dynamic)
        json.dump(flops, open(flops_file, "w"), indent=2)

    os.makedirs(a.out, exist_ok=True)
    component("unet", SDUNet(cfg), (torch.randn(3, 8, L, L), torch.tensor([500.0, 500.0, 500.0]), torch.randn(3, 77, cfg["cross_attention_dim"])),
              ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
              {"sample": {0: "batch"}, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}}, batch=3, latent=L)
    component("vae_encoder", VaeEncoder(vae_cfg), (torch.randn(1, 3, px, px),), ["sample"], ["latent_sample"],
              {"sample": {0: "batch", 2: "height", 3: "width"}}, batch=1, pixels=px)
    component("vae_decoder", VaeDecoder(vae_cfg), (torch.randn(1, vae_cfg["latent_channels"], L, L),), ["latent_sample"], ["sample"],
              {"latent_sample": {0: "batch", 2: "height", 3: "width"}}, batch=1, pixels=px)
    # the pipeline encodes the instruction and the empty prompt in one batch of 2
    component("text_encoder", ClipTextEncoder(text_cfg), (torch.randint(0, text_cfg["vocab_size"], (2, 77), dtype=torch.int32),),
              ["input_ids"], ["last_hidden_state", "pooler_output"], {"input_ids": {0: "batch"}}, batch=2)
    for sub in ("tokenizer", "scheduler"):
        shutil.copytree(os.path.join(ref, sub), os.path.join(a.out, sub), dirs_exist_ok=True)
    index = json.load(open(os.path.join(ref, "model_index.json")))
    index["_class_name"] = "OnnxStableDiffusionInstructPix2PixPipeline"
    json.dump(index, open(os.path.join(a.out, "model_index.json"), "w"), indent=2)
    # kept at the top level for readers of the earlier layout
    unet = flops["components"]["unet"]
    flops.update({"params": unet["params"], "flops_per_call": unet["flops_per_call"], "batch": 3, "latent": L})
    json.dump(flops, open(flops_file, "w"), indent=2)

    n = 2048
    if not os.path.exists(os.path.join(a.out, "matmul", "model.onnx")):
        class MatMul(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Parameter(torch.randn(n, n))

            def forward(self, x):
                return x @ self.w

        export(MatMul(), (torch.randn(n, n),), os.path.join(a.out, "matmul", "model.onnx"), ["x"], ["y"], {})
        json.dump({"n": n, "flops_per_call": 2 * n ** 3}, open(os.path.join(a.out, "matmul", "flops.json"), "w"))


if __name__ == "__main__":
    main()
