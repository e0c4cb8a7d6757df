"""Procedural product-photo world: scenes, exact edits and noisy training triplets.

Every scene is described by a small dict, so an edit is applied to the description and the
target re-rendered: ground truth is exact, which is what lets following / preservation /
quality be measured without a judge (DESIGN.md 7).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import numpy as np

SIZE = 64
SLOTS = (20, 44)  # x centres; one object per slot keeps "the mug" unambiguous and "add" exact
FLOOR = 52

COLOURS = {
    "red": (0.85, 0.12, 0.12),
    "green": (0.15, 0.62, 0.22),
    "blue": (0.15, 0.30, 0.85),
    "yellow": (0.95, 0.85, 0.15),
    "orange": (0.96, 0.52, 0.08),
    "purple": (0.52, 0.18, 0.68),
    "white": (0.97, 0.97, 0.97),
    "black": (0.07, 0.07, 0.07),
}
BACKGROUNDS = {
    "white": (0.93, 0.93, 0.93),
    "grey": (0.55, 0.55, 0.57),
    "beige": (0.88, 0.80, 0.64),
    "pink": (0.96, 0.68, 0.78),
    "light blue": (0.58, 0.76, 0.96),
    "mint": (0.62, 0.90, 0.74),
    "dark blue": (0.10, 0.14, 0.36),
}
KINDS = ("mug", "bottle", "box", "ball")

PHRASES = {
    "recolour": ["make the {kind} {colour}", "turn the {kind} {colour}", "change the colour of the {kind} to {colour}",
                 "paint the {kind} {colour}", "recolour the {kind} {colour}"],
    "background": ["change the background to {bg}", "make the background {bg}", "put it on a {bg} background",
                   "use a {bg} backdrop"],
    "remove": ["remove the {kind}", "take away the {kind}", "delete the {kind}", "get rid of the {kind}"],
    "add": ["add a {colour} {kind}", "put a {colour} {kind} next to it", "place a {colour} {kind} beside it"],
    "grayscale": ["make it black and white", "convert it to grayscale", "remove all colour"],
    "brighter": ["make it brighter", "increase the brightness", "brighten the photo"],
}
EDIT_KINDS = ("recolour", "background", "remove", "add", "grayscale", "brighter")

FEEDBACK = {
    "following": ["no change was made", "the wrong colour was used", "the edit is only half done"],
    "preserving": ["another object changed", "the background changed"],
    "quality": ["the image is noisy", "the image is blurry", "there are blotches"],
}


@dataclass
class Obj:
    kind: str
    colour: str
    slot: int


@dataclass
class Scene:
    bg: str
    gradient: bool
    objects: list[Obj] = field(default_factory=list)

    def copy(self) -> "Scene":
        return Scene(self.bg, self.gradient, [Obj(o.kind, o.colour, o.slot) for o in self.objects])

    def to_json(self) -> dict:
        return {"bg": self.bg, "gradient": self.gradient,
                "objects": [{"kind": o.kind, "colour": o.colour, "slot": o.slot} for o in self.objects]}


_yy, _xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


def object_mask(o: Obj) -> np.ndarray:
    cx = SLOTS[o.slot]
    x, y = _xx, _yy
    if o.kind == "mug":
        body = (abs(x - cx) <= 7) & (y >= FLOOR - 15) & (y < FLOOR)
        ring = np.hypot(x - (cx + 9), y - (FLOOR - 8))
        return body | ((ring <= 4.5) & (ring >= 2.2) & (x > cx + 7))
    if o.kind == "bottle":
        body = (abs(x - cx) <= 5) & (y >= FLOOR - 20) & (y < FLOOR)
        neck = (abs(x - cx) <= 2) & (y >= FLOOR - 27) & (y < FLOOR - 20)
        return body | neck
    if o.kind == "box":
        return (abs(x - cx) <= 8) & (y >= FLOOR - 16) & (y < FLOOR)
    if o.kind == "ball":
        return np.hypot(x - cx, y - (FLOOR - 8.5)) <= 8.5
    raise ValueError(o.kind)


def shadow(o: Obj) -> np.ndarray:
    """Soft elliptical contact shadow, as a darkening factor's strength in [0, 1]."""
    cx = SLOTS[o.slot] + 2
    d = ((_xx - cx) / 11.0) ** 2 + ((_yy - FLOOR) / 3.0) ** 2
    return np.clip(1.0 - d, 0.0, 1.0) ** 1.5 * 0.45


def render(s: Scene) -> np.ndarray:
    base = np.array(BACKGROUNDS[s.bg], np.float32)
    if s.gradient:
        ramp = (1.0 - 0.3 * _yy / SIZE)[..., None]
        img = base[None, None, :] * ramp
    else:
        img = np.broadcast_to(base, (SIZE, SIZE, 3)).copy()
    for o in s.objects:
        img = img * (1.0 - shadow(o)[..., None])
    for o in s.objects:
        m = object_mask(o)
        # left-to-right shading gives the flat shapes some volume
        shade = 1.08 - 0.22 * np.clip((_xx - SLOTS[o.slot] + 8) / 16.0, 0, 1)
        col = np.clip(np.array(COLOURS[o.colour], np.float32)[None, None, :] * shade[..., None], 0, 1)
        img = np.where(m[..., None], col, img)
    return np.clip(img, 0, 1).astype(np.float32)


def objects_mask(s: Scene) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), bool)
    for o in s.objects:
        m |= object_mask(o)
    return m


def _far(a: tuple, b: tuple, d: float = 0.35) -> bool:
    return float(np.linalg.norm(np.subtract(a, b))) > d


def random_scene(rng: random.Random, n_objects: int | None = None) -> Scene:
    bg = rng.choice(list(BACKGROUNDS))
    n = n_objects or rng.choice((1, 2))
    slots = rng.sample((0, 1), n)
    kinds = rng.sample(KINDS, n)
    objs = []
    for k, sl in zip(kinds, slots):
        colour = rng.choice([c for c in COLOURS if _far(COLOURS[c], BACKGROUNDS[bg])])
        objs.append(Obj(k, colour, sl))
    return Scene(bg, rng.random() < 0.5, objs)


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


def random_edit(rng: random.Random, s: Scene) -> Edit:
    options = ["recolour", "background", "remove", "grayscale", "brighter"]
    if len(s.objects) == 1:
        options.append("add")
    weights = {"recolour": 3, "background": 3, "remove": 2, "add": 2, "grayscale": 1, "brighter": 1}
    kind = rng.choices(options, [weights[o] for o in options])[0]
    phrase = rng.choice(PHRASES[kind])
    t = s.copy()
    full = np.ones((SIZE, SIZE), bool)
    if kind == "recolour":
        i = rng.randrange(len(t.objects))
        o = t.objects[i]
        o.colour = rng.choice([c for c in COLOURS if c != o.colour and _far(COLOURS[c], BACKGROUNDS[s.bg])])
        return Edit(kind, phrase.format(kind=o.kind, colour=o.colour), t, object_mask(o), {"object": i, "colour": o.colour})
    if kind == "background":
        t.bg = rng.choice([b for b in BACKGROUNDS if b != s.bg
                           and all(_far(COLOURS[o.colour], BACKGROUNDS[b]) for o in s.objects)] or [s.bg])
        return Edit(kind, phrase.format(bg=t.bg), t, ~objects_mask(s), {"bg": t.bg})
    if kind == "remove":
        i = rng.randrange(len(t.objects))
        o = t.objects.pop(i)
        region = object_mask(o) | (shadow(o) > 0.01)
        return Edit(kind, phrase.format(kind=o.kind), t, region, {"object": i, "kind": o.kind})
    if kind == "add":
        free = 1 - s.objects[0].slot
        k = rng.choice([k for k in KINDS if k != s.objects[0].kind])
        colour = rng.choice([c for c in COLOURS if _far(COLOURS[c], BACKGROUNDS[s.bg])])
        o = Obj(k, colour, free)
        t.objects.append(o)
        region = object_mask(o) | (shadow(o) > 0.01)
        return Edit(kind, phrase.format(kind=k, colour=colour), t, region, {"kind": k, "colour": colour, "slot": free})
    return Edit(kind, phrase, None, full, {})


def edit_target(s: Scene, e: Edit) -> np.ndarray:
    return render(e.target) if e.target is not None else apply_global(e.kind, render(s))


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
    if mode == "following":
        how = rng.randrange(3)
        if how == 0:
            out, scores[0] = src.copy(), 0.0
        elif how == 1 and e.kind in ("recolour", "add"):
            t = e.target.copy()
            o = t.objects[e.params["object"]] if e.kind == "recolour" else t.objects[-1]
            o.colour = rng.choice([c for c in COLOURS if c not in (o.colour, e.params["colour"])])
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
            out = _blur(tgt, (1, 2, 3)[level]).astype(np.float32)
        else:
            out = tgt.copy()
            for _ in range((2, 4, 7)[level]):
                cy, cx, r = nrng.uniform(0, SIZE), nrng.uniform(0, SIZE), nrng.uniform(2, 5)
                m = np.hypot(_xx - cx, _yy - cy) <= r
                out[m] = out[m] * 0.3 + nrng.uniform(0, 1, 3).astype(np.float32) * 0.7
        scores[2], notes[2] = (3.0, 2.0, 1.0)[level], FEEDBACK["quality"][how]
    return out.astype(np.float32), scores, notes


def make_triplets(n: int, seed: int, noisy: bool = True) -> dict:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    src = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    tgt = np.zeros_like(src)
    instructions, feedback, scores = [], [], np.zeros((n, 3), np.float32)
    for i in range(n):
        s = random_scene(rng)
        e = random_edit(rng, s)
        a, b = render(s), edit_target(s, e)
        sc, notes = [5.0, 5.0, 5.0], ["None"] * 3
        if noisy:
            b, sc, notes = corrupt(rng, nrng, s, e, a, b)
        src[i] = np.round(a * 255)
        tgt[i] = np.round(np.clip(b, 0, 1) * 255)
        instructions.append(e.instruction)
        feedback.append("; ".join(notes))
        scores[i] = sc
    return {"source": src, "target": tgt, "instruction": instructions, "feedback": feedback, "scores": scores}


def corpus() -> list[str]:
    """Every word the grammar can produce, for building the tokenizer's vocabulary."""
    text = []
    for kind, phrases in PHRASES.items():
        for p in phrases:
            text.append(p.format(kind=" ".join(KINDS), colour=" ".join(COLOURS), bg=" ".join(BACKGROUNDS)))
    for v in FEEDBACK.values():
        text.extend(v)
    text.append("None; None; None")
    return text


def save_heldout(folder: str, n: int, seed: int) -> None:
    """Held-out scenes with exact targets and region masks, for the TypeScript evaluation."""
    import os
    from PIL import Image  # Debian's python3-pil comes with python3-torch's stack

    os.makedirs(folder, exist_ok=True)
    rng = random.Random(seed)
    records = []
    for i in range(n):
        s = random_scene(rng)
        e = random_edit(rng, s)
        sid = f"syn-{i:04d}"
        Image.fromarray(np.round(render(s) * 255).astype(np.uint8)).save(f"{folder}/{sid}-source.png")
        Image.fromarray(np.round(edit_target(s, e) * 255).astype(np.uint8)).save(f"{folder}/{sid}-target.png")
        Image.fromarray((e.region * 255).astype(np.uint8)).save(f"{folder}/{sid}-region.png")
        records.append({"id": sid, "kind": e.kind, "instruction": e.instruction, "params": e.params,
                        "scene": s.to_json(), "target_scene": e.target.to_json() if e.target else None})
    with open(f"{folder}/scenes.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    with open(f"{folder}/palette.json", "w") as f:
        json.dump({"colours": COLOURS, "backgrounds": BACKGROUNDS, "slots": SLOTS, "floor": FLOOR, "size": SIZE}, f, indent=1)


# One-click examples for the page: held-out scenes (models/heldout) with an instruction each.
EXAMPLES = [("syn-0000", "white-mug.png", "make the mug yellow"),
            ("syn-0004", "mug-dark-blue.png", "put it on a beige background"),
            ("syn-0002", "orange-ball.png", "remove the ball"),
            ("syn-0006", "purple-box.png", "put a yellow bottle next to it")]


def domain() -> dict:
    """The manifest's `domain` block: what a model trained on this world is for."""
    return {
        "kind": "synthetic",
        "description": (
            f"Trained only on {SIZE}x{SIZE} synthetic product scenes drawn by models/train/scenes.py: a "
            f"{', '.join(KINDS[:-1])} or {KINDS[-1]} in one of {len(COLOURS)} flat colours ({', '.join(COLOURS)}) "
            f"on one of {len(BACKGROUNDS)} plain or gradient backdrops ({', '.join(BACKGROUNDS)}). It has never seen "
            f"a photograph: a real photo is edited at {SIZE} px and the result is blurred and often wrong. For photos, "
            "convert a real InstructPix2Pix or Multi-Reward checkpoint (README, 'Use a real model')."),
        "working_size": SIZE,
        "instructions": [f"{k}: {PHRASES[k][0].format(kind='mug', colour='red', bg='beige')}" for k in EDIT_KINDS],
        "examples": [{"image": f"examples/{name}", "instruction": instr} for _, name, instr in EXAMPLES],
    }
