"""diffusers' AutoencoderKL (the SD VAE), from its config.json, with the real parameter names.
The encoder graph returns the latent distribution's mean (DESIGN.md 3: image latents are the
mean, not a sample); the decoder graph includes post_quant_conv, as diffusers' ONNX exports do.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

import unet as _unet
from unet import Downsample2D, ResnetBlock2D, Upsample2D

# names written before diffusers 0.14 -> current names (DESIGN.md 8)
OLD_ATTENTION_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def upgrade_name(k: str) -> str:
    parts = k.split(".")
    if len(parts) >= 3 and "attentions" in parts and parts[-2] in OLD_ATTENTION_NAMES:
        return ".".join(parts[:-2] + [OLD_ATTENTION_NAMES[parts[-2]], parts[-1]])
    return k


def is_conv_attention(k: str, shape) -> bool:
    """Attention projections stored as 1x1 convolutions (original LDM conversions)."""
    return ".mid_block.attentions." in k and len(shape) == 4 and tuple(shape[2:]) == (1, 1)


def upgrade_names(state: dict) -> dict:
    """Old VAE attention names to current ones; 1x1-conv attention weights to linear ones."""
    return {upgrade_name(k): (v[:, :, 0, 0] if is_conv_attention(k, v.shape) else v) for k, v in state.items()}


def upgrade_shapes(shapes: dict) -> dict:
    return {upgrade_name(k): (list(v[:2]) if is_conv_attention(k, v) else v) for k, v in shapes.items()}


class VaeAttention(nn.Module):
    """The single-head spatial self-attention of the middle blocks (biases on q/k/v)."""

    def __init__(self, ch: int, groups: int):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(ch, ch), nn.Linear(ch, ch), nn.Linear(ch, ch)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch)])

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)
        a = _unet.attention(self.to_q(t), self.to_k(t), self.to_v(t), 1)
        return self.to_out[0](a).transpose(1, 2).reshape(b, c, h, w) + x


class VaeMidBlock(nn.Module):
    def __init__(self, ch: int, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, None, groups, 1e-6), ResnetBlock2D(ch, ch, None, groups, 1e-6)])
        self.attentions = nn.ModuleList([VaeAttention(ch, groups)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class EncoderBlock(nn.Module):
    def __init__(self, cin, cout, layers, groups, downsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, None, groups, 1e-6) for i in range(layers)])
        if downsample:
            self.downsamplers = nn.ModuleList([Downsample2D(cout, padding=0)])

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        return self.downsamplers[0](x) if hasattr(self, "downsamplers") else x


class DecoderBlock(nn.Module):
    def __init__(self, cin, cout, layers, groups, upsample):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, None, groups, 1e-6) for i in range(layers)])
        if upsample:
            self.upsamplers = nn.ModuleList([Upsample2D(cout)])

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        return self.upsamplers[0](x) if hasattr(self, "upsamplers") else x


class Encoder(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        chs, layers, g = cfg["block_out_channels"], cfg.get("layers_per_block", 1), cfg.get("norm_num_groups", 32)
        self.conv_in = nn.Conv2d(cfg.get("in_channels", 3), chs[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            [EncoderBlock(chs[max(i - 1, 0)], c, layers, g, i < len(chs) - 1) for i, c in enumerate(chs)])
        self.mid_block = VaeMidBlock(chs[-1], g)
        self.conv_norm_out = nn.GroupNorm(g, chs[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(chs[-1], 2 * cfg.get("latent_channels", 4), 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for blk in self.down_blocks:
            x = blk(x)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(x))))


class Decoder(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        chs, layers, g = cfg["block_out_channels"], cfg.get("layers_per_block", 1), cfg.get("norm_num_groups", 32)
        rev = list(reversed(chs))
        self.conv_in = nn.Conv2d(cfg.get("latent_channels", 4), rev[0], 3, padding=1)
        self.mid_block = VaeMidBlock(rev[0], g)
        self.up_blocks = nn.ModuleList(
            [DecoderBlock(rev[max(i - 1, 0)], c, layers + 1, g, i < len(chs) - 1) for i, c in enumerate(rev)])
        self.conv_norm_out = nn.GroupNorm(g, chs[0], eps=1e-6)
        self.conv_out = nn.Conv2d(chs[0], cfg.get("out_channels", 3), 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for blk in self.up_blocks:
            x = blk(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        L = cfg.get("latent_channels", 4)
        self.latent_channels = L
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * L, 2 * L, 1)
        self.post_quant_conv = nn.Conv2d(L, L, 1)

    def encode_mean(self, x):
        return self.quant_conv(self.encoder(x))[:, : self.latent_channels]

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))


class VaeEncoderGraph(nn.Module):
    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        return self.vae.encode_mean(sample)


class VaeDecoderGraph(nn.Module):
    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample)


def config_problems(cfg: dict) -> list[str]:
    problems = []
    for t in cfg.get("down_block_types", []):
        if t != "DownEncoderBlock2D":
            problems.append(f"vae/config.json: down block type {t} is not supported (DownEncoderBlock2D)")
    for t in cfg.get("up_block_types", []):
        if t != "UpDecoderBlock2D":
            problems.append(f"vae/config.json: up block type {t} is not supported (UpDecoderBlock2D)")
    for k, default in {"use_quant_conv": True, "use_post_quant_conv": True, "mid_block_add_attention": True, "act_fn": "silu"}.items():
        if cfg.get(k, default) != default:
            problems.append(f"vae/config.json: {k} = {cfg[k]!r} is not supported (expected {default!r})")
    return problems

