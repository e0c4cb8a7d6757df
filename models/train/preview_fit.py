"""The latent -> RGB preview map of a model folder (reward-edit.json `preview`, docs/progress.md).

A linear map (+ bias) from the scaled latent's channels to RGB in [-1, 1], fitted by least squares
from the folder's own VAE: images are encoded, decoded again, and the decoded image averaged over
each latent pixel's footprint is the target, so the map imitates the decoder (not the encoder's
inputs). Used by the converter (models/convert/convert.py) and the exporter (export.py).

  python3 preview_fit.py FOLDER      refit FOLDER's manifest from FOLDER/reference/weights.pt (bundled models)
"""
from __future__ import annotations

import json
import math
import os
import sys

import torch
import torch.nn.functional as F


def fit_images(n: int = 12, size: int = 128, seed: int = 0) -> torch.Tensor:
    """Deterministic images in [-1, 1] that cover the colour cube: smooth random colour fields,
    hard-edged colour blocks and grey ramps (a linear colour map needs colours, not content)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n):
        kind = k % 3
        if kind == 0:
            coarse = torch.rand(1, 3, 4, 4, generator=g) * 2 - 1
            img = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
        elif kind == 1:
            coarse = torch.rand(1, 3, 6, 6, generator=g) * 2 - 1
            img = F.interpolate(coarse, size=(size, size), mode="nearest")
        else:
            ramp = torch.linspace(-1, 1, size).view(1, 1, 1, size).expand(1, 3, size, size)
            tint = (torch.rand(1, 3, 1, 1, generator=g) * 2 - 1) * 0.5
            img = ramp * 0.8 + tint
        out.append(img.clamp(-1, 1))
    return torch.cat(out)


@torch.no_grad()
def fit(encode, decode, scaling_factor: float, down: int, images: torch.Tensor | None = None) -> dict:
    """encode: image [-1, 1] -> unscaled latent (the mean); decode: unscaled latent -> image.
    Returns the manifest's `preview` block."""
    images = fit_images() if images is None else images
    zs, ys = [], []
    for img in images.split(4):
        z = encode(img) * scaling_factor
        x = decode(z / scaling_factor)
        zs.append(z)
        ys.append(F.avg_pool2d(x, down))
    z = torch.cat(zs).double()
    y = torch.cat(ys).double()
    C = z.shape[1]
    A = torch.cat([z.permute(0, 2, 3, 1).reshape(-1, C), torch.ones(z.numel() // C, 1, dtype=torch.float64)], 1)
    Y = y.permute(0, 2, 3, 1).reshape(-1, 3)
    sol = torch.linalg.lstsq(A, Y).solution
    res = A @ sol - Y
    rmse = math.sqrt(float((res ** 2).mean()))
    r2 = 1 - float((res ** 2).sum() / ((Y - Y.mean(0)) ** 2).sum())
    r = lambda v: round(float(v), 4)  # noqa: E731
    return {"factors": [[r(v) for v in row] for row in sol[:C]], "bias": [r(v) for v in sol[C]],
            "fit": {"method": "least squares on decoded latents of procedural colour images",
                    "images": int(images.shape[0]), "size": int(images.shape[-1]),
                    "rmse": round(rmse, 4), "r2": round(r2, 4)}}


def refit_folder(folder: str) -> dict:
    """Refits a bundled folder's map from its reference weights (the same weights its ONNX graphs hold)."""
    from model import AutoEncoder
    ck = torch.load(f"{folder}/reference/weights.pt")
    cfg = ck["config"]
    ae = AutoEncoder(width=cfg["ae_width"], down=cfg.get("ae_down", 2)).eval()
    ae.load_state_dict(ck["ae"])
    size = cfg.get("size", 64)
    preview = fit(ae.encode, ae.decode, ck["scaling_factor"], cfg.get("ae_down", 2), fit_images(size=size))
    path = f"{folder}/reward-edit.json"
    manifest = json.load(open(path))
    manifest["preview"] = preview
    json.dump(manifest, open(path, "w"), indent=2)
    return preview


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    torch.set_grad_enabled(False)
    for f in sys.argv[1:]:
        print(f, json.dumps(refit_folder(f)))
