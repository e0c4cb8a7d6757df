"""Pictures for world v2 from Debian packages, packed into one small file the trainer reads.

  assets.py [--out assets/world-v2.npz]

- Object silhouettes: public-domain clipart from `openclipart-png` (/usr/share/openclipart/png).
  For each noun, the drawings whose alpha is one solid, compact shape; each is cropped to its
  alpha box and stored as alpha + luminance (the drawing's own shading) at 56 px on its long side.
- Photographic backdrops: GIMP's texture patterns from `gimp-data` (/usr/share/gimp/2.0/patterns,
  GPL-3+ data shipped by Debian), tiled to 128x128 RGB.

The packed file is committed, so training and CI do not need either package; this script is how
it was made (apt-get install openclipart-png gimp-data).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import struct

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
CLIPART = "/usr/share/openclipart/png"
PATTERNS = "/usr/share/gimp/2.0/patterns"
SIDE = 56  # long side of a stored silhouette (128 px world)
PER_NOUN = 4

# noun -> filename fragments in openclipart (black-and-white line drawings excluded: no fill to recolour)
NOUNS = {
    "apple": ["apple"], "pear": ["pear"], "lemon": ["lemon"], "lamp": ["lamp"], "shoe": ["shoe"],
    "hat": ["hat"], "bag": ["bag"], "umbrella": ["umbrella"], "guitar": ["guitar"], "clock": ["clock"],
    "camera": ["camera"], "phone": ["phone"], "heart": ["heart"], "trophy": ["trophy"],
}
# drawings whose names match but that show something else (a sign, a scene, a different object)
EXCLUDE = ("slate", "stappler", "lemonade", "hotel", "man_w", "gramophone", "notebook", "laptop", "that", "chat",
           "hatch", "spear", "juice", "candied", "cupboard", "teacup", "cupcake", "facebook", "cup_of")
# name -> GIMP pattern files (relative to PATTERNS)
TEXTURES = {
    "marble": ["Stone/marble1.pat", "Stone/marble2.pat", "Stone/marble3.pat", "Stone/pink_marble.pat"],
    "wood": ["Wood/wood1.pat", "Wood/wood2.pat", "Wood/wood3.pat", "Wood/walnut.pat", "Wood/pine.pat", "Wood/wood4.pat"],
    "parquet": ["Wood/parque1.pat", "Wood/parque2.pat", "Wood/parque3.pat"],
    "stone": ["Stone/slate.pat", "Stone/granite1.pat", "Stone/rock.pat", "Stone/stone33.pat", "Stone/terra.pat"],
    "fabric": ["Fabric/burlap.pat", "Animal/leather.pat", "Paper/paper.pat", "Paper/crinklepaper.pat",
               "Wood/corkboard.pat"],
    "brick": ["Stone/brick.pat"],
}


def read_pat(path: str) -> np.ndarray:
    """GIMP .pat: big-endian header (size, version, width, height, bytes per pixel, 'GPAT'), name, pixels."""
    raw = open(path, "rb").read()
    size, _version, w, h, bpp = struct.unpack(">5I", raw[:20])
    px = np.frombuffer(raw[size:size + w * h * bpp], np.uint8).reshape(h, w, bpp)
    if bpp in (1, 2):
        px = np.repeat(px[..., :1], 3, axis=2)
    return px[..., :3]


def tile_to(img: np.ndarray, n: int = 128) -> np.ndarray:
    h, w = img.shape[:2]
    if min(h, w) > 2 * n:  # large photos: scale down so a 128 px crop still shows the texture
        s = 2 * n / min(h, w)
        img = np.asarray(Image.fromarray(img).resize((max(n, round(w * s)), max(n, round(h * s))), Image.BOX))
        h, w = img.shape[:2]
    reps = (-(-n // h), -(-n // w), 1)
    return np.tile(img, reps)[:n, :n]


def silhouette(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    im = Image.open(path)
    if im.mode != "RGBA":
        return None
    a = np.asarray(im)
    alpha = a[..., 3] > 128
    if alpha.mean() < 0.02:
        return None
    ys, xs = np.nonzero(alpha)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = y1 - y0, x1 - x0
    if max(h, w) / min(h, w) > 2.6:
        return None
    crop = a[y0:y1, x0:x1]
    s = SIDE / max(h, w)
    size = (max(8, round(w * s)), max(8, round(h * s)))
    small = np.asarray(Image.fromarray(crop).resize(size, Image.LANCZOS)).astype(np.float32) / 255
    al = small[..., 3]
    solid = al > 0.5
    if solid.mean() < 0.35:  # thin outlines and scattered parts recolour badly
        return None
    # one piece: the largest 4-connected component holds nearly all of the shape
    from collections import deque
    seen = np.zeros_like(solid)
    best = 0
    for sy, sx in zip(*np.nonzero(solid)):
        if seen[sy, sx]:
            continue
        q, n = deque([(sy, sx)]), 0
        seen[sy, sx] = True
        while q:
            y, x = q.popleft()
            n += 1
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < solid.shape[0] and 0 <= xx < solid.shape[1] and solid[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    q.append((yy, xx))
        best = max(best, n)
    if best < 0.95 * solid.sum():
        return None
    lum = small[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    return al, lum


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=f"{HERE}/assets/world-v2.npz")
    a = ap.parse_args()
    arrays: dict[str, np.ndarray] = {}
    index: dict = {"shapes": {}, "textures": {}}
    files = sorted(glob.glob(f"{CLIPART}/**/*.png", recursive=True))
    for noun, frags in NOUNS.items():
        picks = []
        for f in files:
            base = os.path.basename(f).lower()
            if "_bw" in base or not any(fr in base for fr in frags) or any(x in base for x in EXCLUDE):
                continue
            s = silhouette(f)
            if s is None:
                continue
            picks.append((f, s))
            if len(picks) == PER_NOUN:
                break
        for i, (f, (al, lum)) in enumerate(picks):
            key = f"shape/{noun}/{i}"
            arrays[key + "/alpha"] = np.round(al * 255).astype(np.uint8)
            arrays[key + "/lum"] = np.round(lum * 255).astype(np.uint8)
            index["shapes"].setdefault(noun, []).append(os.path.relpath(f, CLIPART))
        print(f"{noun}: {len(picks)}")
    for name, pats in TEXTURES.items():
        for i, p in enumerate(pats):
            arrays[f"texture/{name}/{i}"] = tile_to(read_pat(f"{PATTERNS}/{p}"))
            index["textures"].setdefault(name, []).append(p)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    np.savez_compressed(a.out, index=np.array(json.dumps(index)), **arrays)
    print(f"{a.out}: {os.path.getsize(a.out) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
