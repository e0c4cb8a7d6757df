"""The editor's components, sized for CPU training (DESIGN.md 2 and 4).

TextEncoder    CLIP-shaped: input_ids [B,77] -> last_hidden_state [B,77,D], pooled [B,D]
AutoEncoder    a learnt 2x stand-in for the SD VAE: 3 ch image <-> 4 ch latent
UNet           8 input channels (noisy latent + image latent), cross-attention to the text,
               optional Multi-Reward Conditioning (scores + feedback embedding)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal(x: torch.Tensor, dim: int) -> torch.Tensor:
    """diffusers' get_timestep_embedding with flip_sin_to_cos=True, shift 0."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
    arg = x.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, ctx_dim: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(ctx_dim, dim, bias=False)
        self.v = nn.Linear(ctx_dim, dim, bias=False)
        self.o = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        h = self.heads
        q = self.q(x).reshape(b, n, h, c // h).transpose(1, 2)
        k = self.k(ctx).reshape(b, ctx.shape[1], h, c // h).transpose(1, 2)
        v = self.v(ctx).reshape(b, ctx.shape[1], h, c // h).transpose(1, 2)
        w = (q @ k.transpose(-1, -2)) / math.sqrt(c // h)
        if mask is not None:
            w = w + mask
        return self.o((w.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, dim: int = 64, layers: int = 2, length: int = 77):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.randn(length, dim) * 0.01)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"ln1": nn.LayerNorm(dim), "attn": Attention(dim, dim), "ln2": nn.LayerNorm(dim),
                           "mlp": nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))})
            for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        causal = torch.full((length, length), float("-inf")).triu(1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.tok(input_ids) + self.pos
        for blk in self.blocks:
            x = x + blk["attn"](blk["ln1"](x), blk["ln1"](x), self.causal)
            x = x + blk["mlp"](blk["ln2"](x))
        x = self.ln(x)
        # CLIP pools at the first EOS, which has the largest id in the vocabulary
        pooled = x[torch.arange(x.shape[0], device=x.device), input_ids.argmax(-1)]
        return x, pooled


class AutoEncoder(nn.Module):
    """Decodes at the low resolution and upsamples at the end, so the work stays small.

    down=2 for the 64 px world (32x32 latents), down=4 for 128 px (the same 32x32 latents, so
    the UNet costs the same at either size).
    """

    def __init__(self, latent: int = 4, width: int = 48, down: int = 2):
        super().__init__()
        self.down = down
        extra = 1 if down == 4 else 0
        enc = [nn.Conv2d(3, width // 2, 3, padding=1), nn.SiLU(),
               nn.Conv2d(width // 2, width, 4, stride=2, padding=1), nn.SiLU()]
        enc += [nn.Conv2d(width, width, 4, stride=2, padding=1), nn.SiLU()] * extra
        enc += [nn.Conv2d(width, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, latent, 1)]
        self.enc = nn.Sequential(*enc)
        dec = [nn.Conv2d(latent, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1), nn.SiLU()]
        dec += [nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.SiLU()] * extra
        dec += [nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.SiLU(),
                nn.Conv2d(width // 2, 3, 3, padding=1)]
        self.dec = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, temb: int):
        super().__init__()
        self.n1 = nn.GroupNorm(8, cin)
        self.c1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.t = nn.Linear(temb, cout)
        self.n2 = nn.GroupNorm(8, cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x))) + self.t(F.silu(temb))[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class SpatialCrossAttn(nn.Module):
    """Feature map as h*w query tokens attending to context tokens, residual added."""

    def __init__(self, ch: int, ctx_dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, ch)
        self.attn = Attention(ch, ctx_dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.norm(x).reshape(b, c, h * w).transpose(1, 2)
        return x + self.attn(q, ctx).transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    def __init__(self, text_dim: int = 64, chs: tuple[int, int, int] = (32, 64, 128), temb: int = 256,
                 rewards: bool = True, score_dim: int = 64):
        super().__init__()
        c0, c1, c2 = chs
        self.rewards = rewards
        self.score_dim = score_dim
        self.temb = nn.Sequential(nn.Linear(c0, temb), nn.SiLU(), nn.Linear(temb, temb))
        if rewards:
            # MRC (DESIGN.md 4): scores -> sinusoidal, concatenated -> two MLPs; feedback pooled -> two linears
            self.score_to_temb = nn.Sequential(nn.Linear(3 * score_dim, temb), nn.SiLU(), nn.Linear(temb, temb))
            self.score_to_feat = nn.Sequential(nn.Linear(3 * score_dim, temb), nn.SiLU(), nn.Linear(temb, c0))
            self.fb_to_temb = nn.Linear(text_dim, temb)
            self.fb_to_feat = nn.Linear(text_dim, c0)
            self.inject = SpatialCrossAttn(c0, c0)
        self.conv_in = nn.Conv2d(8, c0, 3, padding=1)
        self.d0 = ResBlock(c0, c0, temb)
        self.down1 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        self.d1 = ResBlock(c0, c1, temb)
        self.a1 = SpatialCrossAttn(c1, text_dim)
        self.down2 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.d2 = ResBlock(c1, c2, temb)
        self.a2 = SpatialCrossAttn(c2, text_dim)
        self.mid = ResBlock(c2, c2, temb)
        self.u1 = ResBlock(c2 + c1, c1, temb)
        self.ua1 = SpatialCrossAttn(c1, text_dim)
        self.u0 = ResBlock(c1 + c0, c0, temb)
        self.out = nn.Sequential(nn.GroupNorm(8, c0), nn.SiLU(), nn.Conv2d(c0, 4, 3, padding=1))

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor,
                scores: torch.Tensor | None = None, feedback: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the predicted *change* of the clean latent relative to the image latent."""
        return self.forward_cached(sample, timestep, text, scores, feedback)[0]

    def forward_cached(self, sample, timestep, text, scores=None, feedback=None):
        """The whole UNet, also returning the deep features (the last up block's upsampled input) for DeepCache."""
        h, t = self._head(sample, timestep, scores, feedback)
        h0 = self.d0(h, t)  # no text attention at full latent resolution: it doubled the step time
        h1 = self.a1(self.d1(self.down1(h0), t), text)
        h2 = self.a2(self.d2(self.down2(h1), t), text)
        h2 = self.mid(h2, t)
        u = F.interpolate(h2, scale_factor=2.0, mode="nearest")
        u = self.ua1(self.u1(torch.cat([u, h1], 1), t), text)
        deep = F.interpolate(u, scale_factor=2.0, mode="nearest")
        return self._tail(deep, h0, t), deep

    def forward_shallow(self, sample, timestep, text, scores=None, feedback=None, deep=None):
        """DeepCache's cheap step (Ma et al. 2023): the outermost blocks only, the deep features reused."""
        h, t = self._head(sample, timestep, scores, feedback)
        return self._tail(deep, self.d0(h, t), t)

    def _head(self, sample, timestep, scores, feedback):
        c0 = self.conv_in.out_channels
        t = self.temb(sinusoidal(timestep, c0))
        h = self.conv_in(sample)
        if self.rewards:
            s = torch.cat([sinusoidal(scores[:, i], self.score_dim) for i in range(3)], dim=-1)
            t = t + self.score_to_temb(s) + self.fb_to_temb(feedback)
            tokens = torch.stack([self.score_to_feat(s), self.fb_to_feat(feedback)], dim=1)
            h = self.inject(h, tokens)
        return h, t

    def _tail(self, deep, h0, t):
        return self.out(self.u0(torch.cat([deep, h0], 1), t))


def sd_sigmas(n: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, n, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0)
    return ((1 - abar) / abar).sqrt().float()


class EpsUNet(nn.Module):
    """The exported UNet: turns the x0-as-change prediction into the epsilon the pipeline expects.

    Inputs follow the diffusers convention: `sample` is the scheduler-scaled noisy latent
    x / sqrt(sigma^2 + 1) concatenated with the unscaled image latent.
    """

    def __init__(self, unet: UNet, scaling_factor: float):
        super().__init__()
        self.unet = unet
        self.scaling_factor = scaling_factor
        self.register_buffer("sigmas", sd_sigmas(), persistent=False)

    def sigma_at(self, t: torch.Tensor) -> torch.Tensor:
        t = t.float().clamp(0, len(self.sigmas) - 1)
        lo = t.floor().long()
        hi = (lo + 1).clamp(max=len(self.sigmas) - 1)
        frac = t - lo.float()
        return self.sigmas[lo] * (1 - frac) + self.sigmas[hi] * frac

    def x0(self, sample, timestep, text, scores=None, feedback=None):
        return self.scaling_factor * sample[:, 4:] + self.unet(sample, timestep, text, scores, feedback)

    def forward(self, sample, timestep, encoder_hidden_states, reward_scores=None, feedback_embeds=None):
        return self.forward_cached(sample, timestep, encoder_hidden_states, reward_scores, feedback_embeds)[0]

    def forward_cached(self, sample, timestep, encoder_hidden_states, reward_scores=None, feedback_embeds=None):
        change, deep = self.unet.forward_cached(sample, timestep, encoder_hidden_states, reward_scores, feedback_embeds)
        return self._eps(sample, timestep, change), deep

    def forward_shallow(self, sample, timestep, encoder_hidden_states, reward_scores=None, feedback_embeds=None,
                        deep_features=None):
        change = self.unet.forward_shallow(sample, timestep, encoder_hidden_states, reward_scores, feedback_embeds,
                                           deep_features)
        return self._eps(sample, timestep, change)

    def _eps(self, sample, timestep, change):
        sigma = self.sigma_at(timestep)[:, None, None, None]
        x = sample[:, :4] * (sigma ** 2 + 1).sqrt()
        x0 = self.scaling_factor * sample[:, 4:] + change
        return (x - x0) / sigma
