"""Multiply-adds counted per module (2 FLOPs each) while a model runs once in eager mode: forward
hooks for convolutions and linear layers, explicit calls for attention's two matrix products."""
from __future__ import annotations

import torch
from torch import nn

FLOPS = {"total": 0}


def count(n: float) -> None:
    if not torch.jit.is_tracing():
        FLOPS["total"] += n


def attention(b: int, heads_x_n_x_m: int, head_dim: int) -> None:
    """q k^T and (weights) v: 2 products of b * heads * n * m * head_dim multiply-adds each."""
    count(2 * 2 * b * heads_x_n_x_m * head_dim)


def measure(model: nn.Module, *args) -> int:
    """FLOPs of one eager call of `model(*args)`."""

    def conv_hook(m, inp, out):
        count(2 * out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])

    def linear_hook(m, inp, out):
        count(2 * out.numel() * m.in_features)

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    FLOPS["total"] = 0
    with torch.no_grad():
        model(*args)
    for h in handles:
        h.remove()
    return FLOPS["total"]
