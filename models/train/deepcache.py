"""DeepCache's two export graphs (issue 20), for any UNet module with forward_cached (the whole
UNet, also returning the deep features) and forward_shallow (the outer blocks on those features):
the bundled editors' EpsUNet (export.py) and the converter's UNet2DConditionModel (convert.py)."""
from __future__ import annotations

import torch

FEATURES = "deep_features"
SHALLOW = "unet_shallow/model.onnx"


def manifest_entry(split: str) -> dict:
    """reward-edit.json's deep_cache block."""
    return {"shallow": SHALLOW, "features": FEATURES, "split": split}


class CachedGraph(torch.nn.Module):
    """unet/model.onnx: out_sample and the deep features."""

    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, *args):
        return self.unet.forward_cached(*args)


class ShallowGraph(CachedGraph):
    """unet_shallow/model.onnx: the UNet's inputs (the reward ones optional) and the deep features last."""

    def forward(self, *args):
        *inputs, deep = args
        inputs += [None] * (5 - len(inputs))
        return self.unet.forward_shallow(*inputs, deep_features=deep)
