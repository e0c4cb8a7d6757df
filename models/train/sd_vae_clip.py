"""Stable Diffusion 1.5's VAE (AutoencoderKL) and CLIP ViT-L/14 text encoder, built from their
config files with random weights: the full-scale shapes a whole edit needs besides the UNet
(issue 7). Layer names follow diffusers and transformers so the ONNX graphs read alike.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import flop_count


class VaeResnet(nn.Module):
    """diffusers' ResnetBlock2D without a time embedding."""

    def __init__(self, cin: int, cout: int, groups: int = 32, eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class VaeAttention(nn.Module):
    """The single-head spatial self-attention in the VAE's middle block."""

    def __init__(self, ch: int, groups: int = 32):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(ch, ch), nn.Linear(ch, ch), nn.Linear(ch, ch)
        self.to_out = nn.Linear(ch, ch)

    def forward(self, x):
        b, c, hh, ww = x.shape
        h = self.group_norm(x).reshape(b, c, hh * ww).transpose(1, 2)
        q, k, v = self.to_q(h), self.to_k(h), self.to_v(h)
        flop_count.attention(b, hh * ww * hh * ww, c)
        w = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(c))
        out = self.to_out(w.softmax(-1) @ v)
        return x + out.transpose(1, 2).reshape(b, c, hh, ww)


class VaeMid(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.res1, self.attn, self.res2 = VaeResnet(ch, ch), VaeAttention(ch), VaeResnet(ch, ch)

    def forward(self, x):
        return self.res2(self.attn(self.res1(x)))


class VaeEncoder(nn.Module):
    """pixels [B, 3, H, W] in [-1, 1] -> the latent mean [B, 4, H/8, W/8] (InstructPix2Pix takes the mode)."""

    def __init__(self, cfg: dict):
        super().__init__()
        chs, L, lat = cfg["block_out_channels"], cfg["layers_per_block"], cfg["latent_channels"]
        self.latent_channels = lat
        self.conv_in = nn.Conv2d(cfg["in_channels"], chs[0], 3, padding=1)
        self.down = nn.ModuleList()
        cin = chs[0]
        for i, cout in enumerate(chs):
            blk = nn.ModuleDict({"res": nn.ModuleList([VaeResnet(cin if j == 0 else cout, cout) for j in range(L)])})
            if i < len(chs) - 1:
                blk["downsample"] = nn.Conv2d(cout, cout, 3, stride=2)
            self.down.append(blk)
            cin = cout
        self.mid = VaeMid(chs[-1])
        self.conv_norm_out = nn.GroupNorm(32, chs[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(chs[-1], 2 * lat, 3, padding=1)
        self.quant_conv = nn.Conv2d(2 * lat, 2 * lat, 1)

    def forward(self, sample):
        h = self.conv_in(sample)
        for blk in self.down:
            for res in blk["res"]:
                h = res(h)
            if "downsample" in blk:
                h = blk["downsample"](F.pad(h, (0, 1, 0, 1)))  # diffusers pads right/bottom only
        moments = self.quant_conv(self.conv_out(F.silu(self.conv_norm_out(self.mid(h)))))
        return moments[:, : self.latent_channels]


class VaeDecoder(nn.Module):
    """latent [B, 4, h, w] (already divided by scaling_factor) -> pixels [B, 3, 8h, 8w]."""

    def __init__(self, cfg: dict):
        super().__init__()
        chs, L, lat = cfg["block_out_channels"], cfg["layers_per_block"], cfg["latent_channels"]
        rev = list(reversed(chs))
        self.post_quant_conv = nn.Conv2d(lat, lat, 1)
        self.conv_in = nn.Conv2d(lat, rev[0], 3, padding=1)
        self.mid = VaeMid(rev[0])
        self.up = nn.ModuleList()
        cin = rev[0]
        for i, cout in enumerate(rev):
            blk = nn.ModuleDict({"res": nn.ModuleList([VaeResnet(cin if j == 0 else cout, cout) for j in range(L + 1)])})
            if i < len(rev) - 1:
                blk["upsample"] = nn.Conv2d(cout, cout, 3, padding=1)
            self.up.append(blk)
            cin = cout
        self.conv_norm_out = nn.GroupNorm(32, chs[0], eps=1e-6)
        self.conv_out = nn.Conv2d(chs[0], cfg["out_channels"], 3, padding=1)

    def forward(self, latent_sample):
        h = self.mid(self.conv_in(self.post_quant_conv(latent_sample)))
        for blk in self.up:
            for res in blk["res"]:
                h = res(h)
            if "upsample" in blk:
                h = blk["upsample"](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class ClipLayer(nn.Module):
    def __init__(self, dim: int, heads: int, inner: int):
        super().__init__()
        self.heads = heads
        self.layer_norm1 = nn.LayerNorm(dim)
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.layer_norm2 = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, inner), nn.Linear(inner, dim)

    def forward(self, x, mask):
        b, n, c = x.shape
        h = self.heads
        y = self.layer_norm1(x)
        q = self.q_proj(y).reshape(b, n, h, c // h).transpose(1, 2)
        k = self.k_proj(y).reshape(b, n, h, c // h).transpose(1, 2)
        v = self.v_proj(y).reshape(b, n, h, c // h).transpose(1, 2)
        flop_count.attention(b, h * n * n, c // h)
        w = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(c // h)) + mask
        x = x + self.out_proj((w.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))
        y = self.fc1(self.layer_norm2(x))
        return x + self.fc2(y * torch.sigmoid(1.702 * y))  # quick_gelu


class ClipTextEncoder(nn.Module):
    """input_ids [B, 77] -> last_hidden_state [B, 77, 768], pooler_output [B, 768] (the EOS token's state)."""

    def __init__(self, cfg: dict):
        super().__init__()
        dim, n = cfg["hidden_size"], cfg["max_position_embeddings"]
        self.token_embedding = nn.Embedding(cfg["vocab_size"], dim)
        self.position_embedding = nn.Embedding(n, dim)
        self.layers = nn.ModuleList(
            [ClipLayer(dim, cfg["num_attention_heads"], cfg["intermediate_size"]) for _ in range(cfg["num_hidden_layers"])]
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=cfg["layer_norm_eps"])
        self.register_buffer("causal", torch.full((n, n), float("-inf")).triu(1), persistent=False)

    def forward(self, input_ids):
        ids = input_ids.long()
        x = self.token_embedding(ids) + self.position_embedding.weight[None, : ids.shape[1]]
        for layer in self.layers:
            x = layer(x, self.causal)
        x = self.final_layer_norm(x)
        # the highest id is EOS in CLIP's vocabulary: transformers' rule for this config
        pooled = x[torch.arange(x.shape[0]), ids.argmax(-1)]
        return x, pooled
