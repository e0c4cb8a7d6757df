"""Procedural product-photo world v2: scenes, exact edits and noisy training triplets.

Every scene is described by a small record, so an edit is applied to the description and the
target re-rendered: ground truth is exact, which is what lets following / preservation /
quality be measured without a judge (DESIGN.md 7).

v2 (issue 15): one colour vocabulary for objects and backdrops (24 names with light/dark shades,
each drawn with a little jitter around its centre), real clipart silhouettes from openclipart
beside the four procedural shapes, textured and photographic backdrops, many phrasings with US
and UK spellings, and held-out shapes, backdrops and colour/backdrop pairs. Scenes are drawn at
RENDER px; a 64 px world is the same scenes box-filtered by 2.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field, replace

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RENDER = 128
SLOTS = (0.31, 0.69)  # x centres as fractions; one object per slot keeps "the mug" unambiguous and "add" exact
FLOOR = 0.81

# v1's colours keep their values (its held-out suite stays meaningful); the rest fill the shades
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.12), "dark red": (0.50, 0.05, 0.08), "orange": (0.96, 0.52, 0.08),
    "yellow": (0.95, 0.85, 0.15), "green": (0.15, 0.62, 0.22), "dark green": (0.05, 0.30, 0.10),
    "light green": (0.55, 0.85, 0.40), "mint": (0.62, 0.90, 0.74), "teal": (0.05, 0.50, 0.50),
    "blue": (0.15, 0.30, 0.85), "dark blue": (0.10, 0.14, 0.36), "light blue": (0.58, 0.76, 0.96),
    "purple": (0.52, 0.18, 0.68), "dark purple": (0.28, 0.06, 0.36), "light purple": (0.78, 0.62, 0.92),
    "pink": (0.96, 0.68, 0.78), "hot pink": (0.92, 0.25, 0.58), "brown": (0.50, 0.30, 0.14),
    "light brown": (0.76, 0.56, 0.34), "beige": (0.88, 0.80, 0.64), "white": (0.97, 0.97, 0.97),
    "light grey": (0.78, 0.78, 0.80), "grey": (0.55, 0.55, 0.57), "dark grey": (0.30, 0.30, 0.32),
    "black": (0.07, 0.07, 0.07),
}
JITTER = 0.03  # per channel, uniform: well inside the 0.2+ gaps between names

PROCEDURAL = ("mug", "bottle", "box", "ball")
# backdrop families: colour x procedural luminance pattern, or a photographic texture
PATTERNS = ("plain", "gradient", "grain", "tiles", "weave")
HELD_PATTERNS = ("stripes",)
TEXTURE_NAMES = ("marble", "wood", "parquet", "stone", "fabric", "brick")


class Assets:
    """Silhouettes and photographic textures (assets.py), with held-out members marked."""

    def __init__(self, path: str = f"{HERE}/assets/world-v2.npz"):
        d = np.load(path)
        index = json.loads(str(d["index"]))
        self.shapes: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for noun, files in index["shapes"].items():
            self.shapes[noun] = [(d[f"shape/{noun}/{i}/alpha"].astype(np.float32) / 255,
                                  d[f"shape/{noun}/{i}/lum"].astype(np.float32) / 255) for i in range(len(files))]
        self.textures = {n: [d[f"texture/{n}/{i}"].astype(np.float32) / 255 for i in range(len(fs))]
                         for n, fs in index["textures"].items()}

    @staticmethod
    def held(n: int) -> list[int]:
        # the last drawing / texture of each noun or family is never trained on (when it has two or more)
        return [n - 1] if n >= 2 else []


ASSETS = Assets()
CLIPART = tuple(ASSETS.shapes)
KINDS = PROCEDURAL + CLIPART

# (colour, backdrop family) pairs never shown in training in any role: the compositional test
_pairs = [(c, f) for c in COLOURS for f in PATTERNS + TEXTURE_NAMES]
HELD_PAIRS = frozenset(random.Random(7).sample(_pairs, len(_pairs) // 7))

PHRASES = {
    "recolour": ["make the {kind} {colour}", "turn the {kind} {colour}", "change the colour of the {kind} to {colour}",
                 "paint the {kind} {colour}", "recolour the {kind} {colour}", "change the color of the {kind} to {colour}",
                 "recolor the {kind} {colour}", "change the {kind} to {colour}", "colour the {kind} {colour}",
                 "i want the {kind} in {colour}", "{colour} {kind} please"],
    "recolour_single": ["make it {colour}", "turn it {colour}", "paint it {colour}", "color it {colour}"],
    "background": ["change the background to {bg}", "make the background {bg}", "put it on a {bg} background",
                   "use a {bg} backdrop", "turn the background {bg}", "{bg} background please",
                   "set the background to {bg}", "change the background colour to {bg}",
                   "change the background color to {bg}", "make the backdrop {bg}", "paint the background {bg}"],
    "remove": ["remove the {kind}", "take away the {kind}", "delete the {kind}", "get rid of the {kind}",
               "erase the {kind}", "remove the {kind} please", "take the {kind} out"],
    "add": ["add a {colour} {kind}", "put a {colour} {kind} next to it", "place a {colour} {kind} beside it",
            "add a {colour} {kind} next to it", "also show a {colour} {kind}"],
    "grayscale": ["make it black and white", "convert it to grayscale", "remove all colour", "convert it to greyscale",
                  "make it grayscale", "make it greyscale", "remove all color", "desaturate it", "make it monochrome"],
    "brighter": ["make it brighter", "increase the brightness", "brighten the photo", "make it lighter",
                 "brighten it up", "more light please"],
}
EDIT_KINDS = ("recolour", "background", "remove", "add", "grayscale", "brighter")

FEEDBACK = {
    "following": ["no change was made", "the wrong colour was used", "the edit is only half done"],
    "preserving": ["another object changed", "the background changed"],
    "quality": ["the image is noisy", "the image is blurry", "there are blotches"],
}


def spell(name: str, rng: random.Random) -> str:
    """US or UK spelling of a colour name, half each."""
    return name.replace("grey", "gray") if rng.random() < 0.5 else name


def jittered(name: str, rng: random.Random) -> tuple[float, float, float]:
    c = COLOURS[name]
    return tuple(float(np.clip(v + rng.uniform(-JITTER, JITTER), 0, 1)) for v in c)  # type: ignore[return-value]


@dataclass
class Obj:
    kind: str
    colour: str
    rgb: tuple[float, float, float]
    slot: int
    drawing: int = 0  # which silhouette of a clipart noun


@dataclass
class Backdrop:
    family: str  # a pattern (plain, gradient, ...) or a texture name (marble, wood, ...)
    colour: str | None  # named colour for patterns; None for an untinted photographic texture
    rgb: tuple[float, float, float] | None
    variant: int = 0  # texture index, or the pattern's phase/scale seed

    @property
    def photo(self) -> bool:
        return self.family in TEXTURE_NAMES


@dataclass
class Scene:
    bg: Backdrop
    objects: list[Obj] = field(default_factory=list)

    def copy(self) -> "Scene":
        return Scene(replace(self.bg), [replace(o) for o in self.objects])

    def to_json(self) -> dict:
        return {"bg": self.bg.colour or self.bg.family, "backdrop": self.bg.__dict__ | {"photo": self.bg.photo},
                "gradient": self.bg.family == "gradient",
                "objects": [{"kind": o.kind, "colour": o.colour, "slot": o.slot, "drawing": o.drawing} for o in self.objects]}

    def pairs(self) -> set[tuple[str, str]]:
        out = {(o.colour, self.bg.family) for o in self.objects}
        if self.bg.colour:
            out.add((self.bg.colour, self.bg.family))
        return out


N = RENDER
_yy, _xx = np.mgrid[0:N, 0:N].astype(np.float32) / N  # unit coordinates


def _procedural_mask(kind: str, cx: float) -> np.ndarray:
    x, y, f = _xx, _yy, FLOOR
    u = 1 / 64  # v1's geometry, in 64ths of the image
    if kind == "mug":
        body = (abs(x - cx) <= 7 * u) & (y >= f - 15 * u) & (y < f)
        ring = np.hypot(x - (cx + 9 * u), y - (f - 8 * u))
        return body | ((ring <= 4.5 * u) & (ring >= 2.2 * u) & (x > cx + 7 * u))
    if kind == "bottle":
        body = (abs(x - cx) <= 5 * u) & (y >= f - 20 * u) & (y < f)
        neck = (abs(x - cx) <= 2 * u) & (y >= f - 27 * u) & (y < f - 20 * u)
        return body | neck
    if kind == "box":
        return (abs(x - cx) <= 8 * u) & (y >= f - 16 * u) & (y < f)
    if kind == "ball":
        return np.hypot(x - cx, y - (f - 8.5 * u)) <= 8.5 * u
    raise ValueError(kind)


def _clipart(o: Obj) -> tuple[np.ndarray, np.ndarray]:
    """Alpha and shading of a silhouette standing on the floor at its slot."""
    alpha, lum = ASSETS.shapes[o.kind][o.drawing]
    scale = 0.34 * N / max(alpha.shape)
    from PIL import Image
    h, w = max(4, round(alpha.shape[0] * scale)), max(4, round(alpha.shape[1] * scale))
    al = np.asarray(Image.fromarray(alpha).resize((w, h), Image.BILINEAR))
    lu = np.asarray(Image.fromarray(lum).resize((w, h), Image.BILINEAR))
    a = np.zeros((N, N), np.float32)
    s = np.ones((N, N), np.float32)
    top, left = round(FLOOR * N) - h, round(SLOTS[o.slot] * N) - w // 2
    a[top:top + h, left:left + w] = al
    # the drawing's own light and dark, around the named colour: recolouring keeps the shading
    ref = float(np.percentile(lu[al > 0.5], 75)) if (al > 0.5).any() else 1.0
    s[top:top + h, left:left + w] = np.clip(0.5 + 0.55 * lu / max(ref, 0.2), 0.45, 1.1)
    return a, s


_cache: dict = {}


def object_layers(o: Obj) -> tuple[np.ndarray, np.ndarray]:
    """(coverage 0..1, shading factor) for one object."""
    key = (o.kind, o.slot, o.drawing)
    if key not in _cache:
        if o.kind in PROCEDURAL:
            m = _procedural_mask(o.kind, SLOTS[o.slot]).astype(np.float32)
            shade = 1.08 - 0.22 * np.clip((_xx - SLOTS[o.slot] + 8 / 64) / (16 / 64), 0, 1)
            _cache[key] = (m, shade.astype(np.float32))
        else:
            _cache[key] = _clipart(o)
    return _cache[key]


def object_mask(o: Obj) -> np.ndarray:
    return object_layers(o)[0] > 0.5


def shadow(o: Obj) -> np.ndarray:
    """Soft elliptical contact shadow, as a darkening factor's strength in [0, 1]."""
    cx = SLOTS[o.slot] + 2 / 64
    d = ((_xx - cx) / (11 / 64)) ** 2 + ((_yy - FLOOR) / (3 / 64)) ** 2
    return np.clip(1.0 - d, 0.0, 1.0) ** 1.5 * 0.45


def pattern(family: str, variant: int) -> np.ndarray:
    """Multiplicative luminance pattern (mean about 1) of a procedural backdrop."""
    key = ("pattern", family, variant)
    if key in _cache:
        return _cache[key]
    r = np.random.default_rng(variant)
    x, y = _xx * N, _yy * N
    if family == "plain":
        p = np.ones((N, N), np.float32)
    elif family == "gradient":
        p = 1.0 - 0.3 * _yy
    elif family == "grain":
        g = r.normal(0, 1, (N // 4, N // 4)).astype(np.float32)
        p = 1.0 + 0.07 * np.kron(g, np.ones((4, 4), np.float32)) + 0.05 * r.normal(0, 1, (N, N))
    elif family == "tiles":
        period = r.choice((16, 21, 32))
        grout = (x % period < 1.6) | (y % period < 1.6)
        p = np.where(grout, 0.72, 1.0 + 0.04 * r.normal(0, 1, (N, N)))
    elif family == "weave":
        period = r.choice((4, 6))
        p = 1.0 + 0.09 * np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period) + 0.04 * r.normal(0, 1, (N, N))
    elif family == "stripes":  # held out: never seen in training
        period = r.choice((10, 14))
        p = np.where((x + y) % period < period / 2, 1.06, 0.9)
    else:
        raise ValueError(family)
    _cache[key] = p.astype(np.float32)
    return _cache[key]


def texture_luminance(name: str, variant: int) -> np.ndarray:
    t = ASSETS.textures[name][variant]
    lum = t @ np.array([0.299, 0.587, 0.114], np.float32)
    return (1.0 + 0.6 * (lum / lum.mean() - 1.0)).astype(np.float32)


def backdrop_image(b: Backdrop) -> np.ndarray:
    if b.photo and b.colour is None:
        t = ASSETS.textures[b.family][b.variant]
        return t[:N, :N].copy()
    lum = texture_luminance(b.family, b.variant) if b.photo else pattern(b.family, b.variant)
    return np.asarray(b.rgb, np.float32)[None, None, :] * lum[..., None]


def backdrop_mean(b: Backdrop) -> tuple[float, float, float]:
    return tuple(backdrop_image(b).reshape(-1, 3).mean(0))  # type: ignore[return-value]


def render(s: Scene) -> np.ndarray:
    img = backdrop_image(s.bg)
    for o in s.objects:
        img = img * (1.0 - shadow(o)[..., None])
    for o in s.objects:
        a, shade = object_layers(o)
        col = np.clip(np.asarray(o.rgb, np.float32)[None, None, :] * shade[..., None], 0, 1)
        img = img * (1 - a[..., None]) + col * a[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


def objects_mask(s: Scene, level: float = 0.02) -> np.ndarray:
    m = np.zeros((N, N), bool)
    for o in s.objects:
        m |= object_layers(o)[0] > level
    return m


def _far(a, b, d: float = 0.35) -> bool:
    return float(np.linalg.norm(np.subtract(a, b))) > d


@dataclass
class Split:
    """Which members of the world a generator may use: training, or one held-out axis."""
    shapes: str = "train"  # train | held
    backdrops: str = "train"  # train | held
    pairs: str = "train"  # train (held pairs excluded) | held (the edit must create one) | any


def _drawings(kind: str, split: Split) -> list[int]:
    if kind in PROCEDURAL:
        return [0]
    n = len(ASSETS.shapes[kind])
    held = Assets.held(n)
    return held if split.shapes == "held" else [i for i in range(n) if i not in held]


def random_backdrop(rng: random.Random, split: Split) -> Backdrop:
    if split.backdrops == "held":
        if rng.random() < 0.3:
            fam = "stripes"
        else:
            fam = rng.choice([t for t in TEXTURE_NAMES if Assets.held(len(ASSETS.textures[t]))])
    else:
        fam = rng.choice(PATTERNS + PATTERNS[:2] + TEXTURE_NAMES)  # plain and gradient twice as often
    if fam in TEXTURE_NAMES:
        n = len(ASSETS.textures[fam])
        held = Assets.held(n)
        variant = rng.choice(held if split.backdrops == "held" else [i for i in range(n) if i not in held])
        if rng.random() < 0.5:  # the photo as it is
            return Backdrop(fam, None, None, variant)
    else:
        variant = rng.randrange(1000)
    name = rng.choice(list(COLOURS))
    return Backdrop(fam, name, jittered(name, rng), variant)


def random_scene(rng: random.Random, split: Split = Split(), n_objects: int | None = None) -> Scene:
    bg = random_backdrop(rng, split)
    bg_mean = backdrop_mean(bg)
    n = n_objects or rng.choice((1, 2))
    slots = rng.sample((0, 1), n)
    pool = list(PROCEDURAL) + list(CLIPART) if split.shapes == "train" else [k for k in CLIPART if _drawings(k, split)]
    kinds = rng.sample(pool, n)
    objs = []
    for k, sl in zip(kinds, slots):
        names = [c for c in COLOURS if _far(COLOURS[c], bg_mean) and (split.pairs == "any" or (c, bg.family) not in HELD_PAIRS)]
        colour = rng.choice(names)
        objs.append(Obj(k, colour, jittered(colour, rng), sl, rng.choice(_drawings(k, split))))
    return Scene(bg, objs)


@dataclass
class Edit:
    kind: str
    instruction: str
    target: Scene | None  # None for global edits, which act on pixels
    region: np.ndarray  # bool HxW: where the instruction allows change
    params: dict


def apply_global(kind: str, img: np.ndarray) -> np.ndarray:
    if kind == "grayscale":
        y = img @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.repeat(y[..., None], 3, axis=2)
    if kind == "brighter":
        return np.clip(img * 1.25 + 0.06, 0, 1)
    raise ValueError(kind)


def _pair_ok(pair: tuple[str, str], split: Split) -> bool:
    held = pair in HELD_PAIRS
    return split.pairs == "any" or (held if split.pairs == "held" else not held)


def scorer_mask(region: np.ndarray) -> np.ndarray:
    """The background pixels the exact scorer reads (reward/local/synthetic.ts): the region's upper 40 %."""
    m = region.copy()
    m[int(np.ceil(m.shape[0] * 0.4)):] = False
    return m


EDIT_WEIGHTS = {"recolour": 3, "background": 3, "remove": 2, "add": 2, "grayscale": 1, "brighter": 1}


def random_edit(rng: random.Random, s: Scene, split: Split = Split(), weights: dict | None = None) -> Edit | None:
    """An edit of the scene, or None when the split leaves no valid one (the caller draws again)."""
    options = ["recolour", "background", "remove", "grayscale", "brighter"]
    if len(s.objects) == 1:
        options.append("add")
    weights = weights or EDIT_WEIGHTS
    if split.pairs == "held":
        options = [o for o in options if o in ("recolour", "background", "add")]
    kind = rng.choices(options, [weights[o] for o in options])[0]
    t = s.copy()
    full = np.ones((N, N), bool)
    fam = s.bg.family
    if kind == "recolour":
        i = rng.randrange(len(t.objects))
        o = t.objects[i]
        names = [c for c in COLOURS if c != o.colour and _far(COLOURS[c], backdrop_mean(s.bg)) and _pair_ok((c, fam), split)]
        if not names:
            return None
        o.colour = rng.choice(names)
        o.rgb = jittered(o.colour, rng)
        single = len(s.objects) == 1 and rng.random() < 0.3
        phrase = rng.choice(PHRASES["recolour_single" if single else "recolour"])
        a, shade = object_layers(o)
        m = a > 0.5
        return Edit(kind, phrase.format(kind=o.kind, colour=spell(o.colour, rng)), t, a > 0.02,
                    {"object": i, "colour": o.colour, "shade": float(shade[m].mean())})
    if kind == "background":
        names = [c for c in COLOURS if c != s.bg.colour and _pair_ok((c, fam), split)
                 and all(_far(COLOURS[o.colour], COLOURS[c]) for o in s.objects)]
        if not names:
            return None
        c = rng.choice(names)
        t.bg = Backdrop(fam, c, jittered(c, rng), s.bg.variant)
        # the backdrop shows through an object's soft edge and see-through parts: those may change too
        region = ~objects_mask(s, 0.98)
        lum = texture_luminance(fam, s.bg.variant) if s.bg.photo else pattern(fam, s.bg.variant)
        sm = scorer_mask(region)
        shade = float((lum * np.prod([1.0 - shadow(o) for o in s.objects], axis=0))[sm].mean()) if sm.any() else 1.0
        phrase = rng.choice(PHRASES["background"])
        return Edit(kind, phrase.format(bg=spell(c, rng)), t, region, {"bg": c, "shade": shade})
    if kind == "remove":
        i = rng.randrange(len(t.objects))
        o = t.objects.pop(i)
        region = (object_layers(o)[0] > 0.02) | (shadow(o) > 0.01)
        return Edit(kind, rng.choice(PHRASES["remove"]).format(kind=o.kind), t, region, {"object": i, "kind": o.kind})
    if kind == "add":
        free = 1 - s.objects[0].slot
        kinds = [k for k in (KINDS if split.shapes == "train" else CLIPART) if k != s.objects[0].kind and _drawings(k, split)]
        k = rng.choice(kinds)
        names = [c for c in COLOURS if _far(COLOURS[c], backdrop_mean(s.bg)) and _pair_ok((c, fam), split)]
        if not names:
            return None
        colour = rng.choice(names)
        o = Obj(k, colour, jittered(colour, rng), free, rng.choice(_drawings(k, split)))
        t.objects.append(o)
        a, shade = object_layers(o)
        region = (a > 0.02) | (shadow(o) > 0.01)
        return Edit(kind, rng.choice(PHRASES["add"]).format(kind=k, colour=spell(colour, rng)), t, region,
                    {"kind": k, "colour": colour, "slot": free, "shade": float(shade[a > 0.5].mean())})
    return Edit(kind, rng.choice(PHRASES[kind]), None, full, {})


def edit_target(s: Scene, e: Edit) -> np.ndarray:
    return render(e.target) if e.target is not None else apply_global(e.kind, render(s))


def _nearest(c: np.ndarray, scale: float) -> str:
    return min(COLOURS, key=lambda n: float(np.linalg.norm(c - np.asarray(COLOURS[n]) * scale)))


def scorable(src: np.ndarray, tgt: np.ndarray, region: np.ndarray, e: Edit) -> bool:
    """Whether the exact scorer (reward/local/synthetic.ts, same rules) passes the true target and
    fails the unchanged source, on 8-bit images at the suite's size: suites keep only such cases."""
    src, tgt = np.round(src * 255) / 255, np.round(tgt * 255) / 255
    changed = region & (np.abs(src - tgt).max(-1) > 0.15)
    if e.kind in ("recolour", "add", "remove"):
        if not changed.any():
            return False
        if e.kind == "remove":
            return True
        return _nearest(tgt[changed].mean(0), e.params["shade"]) == e.params["colour"]
    if e.kind == "background":
        m = scorer_mask(region)
        if not m.any():
            return False
        name = lambda img: _nearest(img[m].mean(0), e.params["shade"])
        return name(tgt) == e.params["bg"] and name(src) != e.params["bg"]
    if e.kind == "grayscale":
        sat = lambda img: float((img.max(-1) - img.min(-1)).mean())
        return sat(tgt) < 0.5 * sat(src)
    lum = lambda img: float((img @ np.array([0.299, 0.587, 0.114])).mean())
    return lum(tgt) > lum(src) + 0.05


def draw(rng: random.Random, split: Split = Split(), weights: dict | None = None) -> tuple[Scene, Edit]:
    """A scene and an edit that respect the split (training never sees a held-out pair, shape or backdrop)."""
    while True:
        s = random_scene(rng, split)
        if split.pairs == "train" and s.pairs() & HELD_PAIRS:
            continue
        e = random_edit(rng, s, split, weights)
        if e is None:
            continue
        if split.pairs == "train" and e.target is not None and e.target.pairs() & HELD_PAIRS:
            continue
        if split.pairs == "held" and not (e.target.pairs() - s.pairs()) & HELD_PAIRS:
            continue
        return s, e


# ---- noisy triplets -------------------------------------------------------------------------

def _blur(img: np.ndarray, r: int) -> np.ndarray:
    k = 2 * r + 1
    pad = np.pad(img, ((r, r), (r, r), (0, 0)), mode="edge")
    c = np.cumsum(np.cumsum(pad, 0), 1)
    c = np.pad(c, ((1, 0), (1, 0), (0, 0)))
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def corrupt(rng: random.Random, nrng: np.random.Generator, s: Scene, e: Edit, src: np.ndarray,
            tgt: np.ndarray) -> tuple[np.ndarray, list[float], list[str]]:
    """Make a deliberately imperfect target with its exact scores (following, preserving, quality)."""
    scores = [5.0, 5.0, 5.0]
    notes = ["None", "None", "None"]
    mode = rng.choices(["clean", "following", "preserving", "quality"], [0.4, 0.2, 0.2, 0.2])[0]
    out = tgt
    u = N / 64  # v1's corruption sizes were in 64 px units
    if mode == "following":
        how = rng.randrange(3)
        if how == 0:
            out, scores[0] = src.copy(), 0.0
        elif how == 1 and e.kind in ("recolour", "add"):
            t = e.target.copy()
            o = t.objects[e.params["object"]] if e.kind == "recolour" else t.objects[-1]
            o.colour = rng.choice([c for c in COLOURS if c not in (o.colour, e.params["colour"])])
            o.rgb = jittered(o.colour, rng)
            out, scores[0] = render(t), 1.0
        else:
            how = 2
            out, scores[0] = 0.5 * src + 0.5 * tgt, 2.0
        notes[0] = FEEDBACK["following"][how]
    elif mode == "preserving":
        outside = ~e.region
        others = [i for i, o in enumerate(s.objects) if e.kind != "remove" or i != e.params.get("object")]
        if e.kind in ("recolour", "add", "background", "remove") and others and rng.random() < 0.5 and e.target is not None:
            t = e.target.copy()
            pool = [o for o in t.objects if not (e.kind == "recolour" and o is t.objects[e.params["object"]])
                    and not (e.kind == "add" and o is t.objects[-1])]
            if pool:
                o = rng.choice(pool)
                o.colour = rng.choice([c for c in COLOURS if c != o.colour])
                o.rgb = jittered(o.colour, rng)
                out = render(t)
                scores[1], notes[1] = 1.0, FEEDBACK["preserving"][0]
        if scores[1] == 5.0:
            amount = rng.choice((0.1, 0.2, 0.35))
            shift = nrng.uniform(-1, 1, 3).astype(np.float32)
            shift = shift / (np.linalg.norm(shift) + 1e-6) * amount
            out = np.where(outside[..., None], np.clip(tgt + shift, 0, 1), tgt)
            scores[1] = {0.1: 3.0, 0.2: 2.0, 0.35: 1.0}[amount]
            notes[1] = FEEDBACK["preserving"][1] if e.kind != "background" else FEEDBACK["preserving"][0]
    elif mode == "quality":
        how = rng.randrange(3)
        level = rng.randrange(3)  # 0 mild .. 2 severe
        if how == 0:
            out = np.clip(tgt + nrng.normal(0, (0.05, 0.1, 0.18)[level], tgt.shape).astype(np.float32), 0, 1)
        elif how == 1:
            out = _blur(tgt, round((1, 2, 3)[level] * u)).astype(np.float32)
        else:
            out = tgt.copy()
            for _ in range((2, 4, 7)[level]):
                cy, cx, r = nrng.uniform(0, 1), nrng.uniform(0, 1), nrng.uniform(2, 5) / 64
                m = np.hypot(_xx - cx, _yy - cy) <= r
                out[m] = out[m] * 0.3 + nrng.uniform(0, 1, 3).astype(np.float32) * 0.7
        scores[2], notes[2] = (3.0, 2.0, 1.0)[level], FEEDBACK["quality"][how]
    return out.astype(np.float32), scores, notes


def downsample(a: np.ndarray, size: int) -> np.ndarray:
    """Box filter from RENDER px to `size` px (float images, or bool masks by majority)."""
    f = a.shape[0] // size
    if f == 1:
        return a
    shape = (size, f, size, f) + a.shape[2:]
    m = a.astype(np.float32).reshape(shape).mean(axis=(1, 3))
    return m >= 0.5 if a.dtype == bool else m


def make_triplets(n: int, seed: int, size: int = RENDER, noisy: bool = True, weights: dict | None = None) -> dict:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    src = np.zeros((n, size, size, 3), np.uint8)
    tgt = np.zeros_like(src)
    instructions, feedback, scores = [], [], np.zeros((n, 3), np.float32)
    for i in range(n):
        s, e = draw(rng, weights=weights)
        a, b = render(s), edit_target(s, e)
        sc, notes = [5.0, 5.0, 5.0], ["None"] * 3
        if noisy:
            b, sc, notes = corrupt(rng, nrng, s, e, a, b)
        src[i] = np.round(downsample(a, size) * 255)
        tgt[i] = np.round(np.clip(downsample(b, size), 0, 1) * 255)
        instructions.append(e.instruction)
        feedback.append("; ".join(notes))
        scores[i] = sc
    return {"source": src, "target": tgt, "instruction": instructions, "feedback": feedback, "scores": scores}


def corpus() -> list[str]:
    """Every word the grammar can produce, for building the tokenizer's vocabulary."""
    names = " ".join(COLOURS) + " " + " ".join(COLOURS).replace("grey", "gray")
    text = []
    for phrases in PHRASES.values():
        for p in phrases:
            text.append(p.format(kind=" ".join(KINDS), colour=names, bg=names))
    for v in FEEDBACK.values():
        text.extend(v)
    text.append("None; None; None")
    return text


SUITES = {  # held-out suites of v2 (models/heldout-v2/NAME), each its own seed
    "scenes": (Split(), 20261124),
    "shapes": (Split(shapes="held"), 20261125),
    "backdrops": (Split(backdrops="held"), 20261126),
    "pairs": (Split(pairs="held"), 20261127),
}


def save_heldout(folder: str, n: int, seed: int, size: int, split: Split = Split()) -> None:
    """Held-out scenes with exact targets and region masks, for the TypeScript evaluation."""
    from PIL import Image  # Debian's python3-pil comes with python3-torch's stack

    os.makedirs(folder, exist_ok=True)
    rng = random.Random(seed)
    records = []
    png = lambda a: Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8))
    for i in range(n):
        while True:
            s, e = draw(rng, split)
            src, tgt, region = downsample(render(s), size), downsample(edit_target(s, e), size), downsample(e.region, size)
            if scorable(src, tgt, region, e):
                break
        sid = f"syn-{i:04d}"
        png(src).save(f"{folder}/{sid}-source.png")
        png(tgt).save(f"{folder}/{sid}-target.png")
        Image.fromarray(region.astype(np.uint8) * 255).save(f"{folder}/{sid}-region.png")
        records.append({"id": sid, "kind": e.kind, "instruction": e.instruction, "params": e.params,
                        "scene": s.to_json(), "target_scene": e.target.to_json() if e.target else None})
    with open(f"{folder}/scenes.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    with open(f"{folder}/palette.json", "w") as f:
        json.dump({"colours": COLOURS, "backgrounds": COLOURS, "size": size, "world": 2}, f, indent=1)


# One-click examples for the page: held-out scenes (models/heldout-v2/scenes) with an instruction each.
EXAMPLES = [("syn-0008", "lemon-on-wood.png", "make the background blue"),
            ("syn-0026", "lemon-on-marble.png", "make it red"),
            ("syn-0029", "box-on-tiles.png", "make the box yellow"),
            ("syn-0021", "green-hat.png", "remove the hat")]


def domain(size: int) -> dict:
    """The manifest's `domain` block: what a model trained on this world is for."""
    return {
        "kind": "synthetic",
        "description": (
            f"Trained only on {size}x{size} synthetic product scenes drawn by models/train/scenes.py: one or two "
            f"objects ({', '.join(PROCEDURAL)}, or clipart of a {', '.join(CLIPART[:-1])} or {CLIPART[-1]}) in "
            f"{len(COLOURS)} named colours with light and dark shades, on plain, gradient, textured or photographic "
            f"({', '.join(TEXTURE_NAMES)}) backdrops. It has never seen a photograph: a real photo is edited at "
            f"{size} px and the result is blurred and often wrong. For photos, convert a real InstructPix2Pix or "
            "Multi-Reward checkpoint (README, 'Use a real model')."),
        "working_size": size,
        "instructions": [f"{k}: {PHRASES[k][0].format(kind='mug', colour='red', bg='beige')}" for k in EDIT_KINDS],
        "examples": [{"image": f"examples/{name}", "instruction": instr} for _, name, instr in EXAMPLES],
    }
