"""transformers' CLIPTextModel (the text tower of CLIP), from its config.json, with the real
parameter names (`text_model.*`). Causal self-attention, quick_gelu or gelu MLPs, a final LayerNorm;
the pooled output is the final hidden state at the first end-of-text token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"quick_gelu": lambda x: x * torch.sigmoid(1.702 * x), "gelu": F.gelu}
# a buffer, not a weight: older checkpoints store it, current ones do not
IGNORED = {"text_model.embeddings.position_ids"}


class Embeddings(nn.Module):
    def __init__(self, vocab: int, dim: int, positions: int):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.position_embedding = nn.Embedding(positions, dim)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, mask):
        b, n, c = x.shape
        d = c // self.heads
        q, k, v = (p(x).reshape(b, n, self.heads, d).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        w = (q * d ** -0.5) @ k.transpose(-1, -2) + mask
        return self.out_proj((w.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, inner: int, act: str):
        super().__init__()
        self.act = ACTIVATIONS[act]
        self.fc1, self.fc2 = nn.Linear(dim, inner), nn.Linear(inner, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, dim, heads, inner, act, eps):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, inner, act)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([
            EncoderLayer(cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"],
                         cfg.get("hidden_act", "quick_gelu"), cfg.get("layer_norm_eps", 1e-5))
            for _ in range(cfg["num_hidden_layers"])])


class TextTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = Embeddings(cfg["vocab_size"], cfg["hidden_size"], cfg.get("max_position_embeddings", 77))
        self.encoder = Encoder(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg["hidden_size"], eps=cfg.get("layer_norm_eps", 1e-5))


class CLIPTextModel(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        if cfg.get("hidden_act", "quick_gelu") not in ACTIVATIONS:
            raise ValueError(f"text_encoder/config.json: hidden_act {cfg['hidden_act']} is not supported")
        self.eos = cfg.get("eos_token_id", 49407)
        self.text_model = TextTransformer(cfg)

    def forward(self, input_ids):
        tm = self.text_model
        n = input_ids.shape[1]
        x = tm.embeddings.token_embedding(input_ids) + tm.embeddings.position_embedding.weight[:n][None]
        mask = torch.full((n, n), float("-inf")).triu(1)[None, None]
        for layer in tm.encoder.layers:
            x = layer(x, mask)
        x = tm.final_layer_norm(x)
        # pooled: the hidden state at the first end-of-text token (transformers' rule when
        # eos_token_id is not the legacy 2; the CLIP vocabulary's EOS is also its largest id)
        first_eos = (input_ids == self.eos).int().argmax(dim=-1)
        pooled = x[torch.arange(x.shape[0]), first_eos]
        return x, pooled
