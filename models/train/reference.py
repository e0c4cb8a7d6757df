"""The PyTorch reference for the TypeScript pipeline: the same editor weights, the same seeded
noise stream and the same InstructPix2Pix Euler-ancestral loop, in eager PyTorch.

  reference.py parity --weights W.pt --out DIR     write one UNet call and one whole edit for the parity test
  reference.py time --weights W.pt --steps 20      time edits (for `npm run bench`), JSON on stdout
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
from PIL import Image

import bpe
from model import AutoEncoder, EpsUNet, TextEncoder, UNet, sd_sigmas

M32 = 0xFFFFFFFF


class Generator:
    """Bit-for-bit the TypeScript Generator (editor/tensor/random.ts): splitmix32 -> xoshiro128**, Box-Muller."""

    def __init__(self, seed: int):
        x = (seed & M32) ^ (seed >> 32)

        def splitmix() -> int:
            nonlocal x
            x = (x + 0x9E3779B9) & M32
            z = x
            z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
            z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
            return (z ^ (z >> 16)) & M32

        self.s = [splitmix() for _ in range(4)]
        self.spare = None

    @staticmethod
    def _rotl(v: int, k: int) -> int:
        return ((v << k) | (v >> (32 - k))) & M32

    def uniform(self) -> float:
        s0, s1, s2, s3 = self.s
        result = (self._rotl((s1 * 5) & M32, 7) * 9) & M32
        t = (s1 << 9) & M32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = self._rotl(s3, 11)
        self.s = [s0, s1, s2, s3]
        return result / 4294967296.0

    def normal(self) -> float:
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        r = math.sqrt(-2.0 * math.log(u1))
        self.spare = r * math.sin(2 * math.pi * u2)
        return r * math.cos(2 * math.pi * u2)

    def randn(self, n: int) -> torch.Tensor:
        return torch.tensor(np.array([self.normal() for _ in range(n)], dtype=np.float32))


class Editor:
    def __init__(self, weights: str):
        ck = torch.load(weights)
        cfg = ck["config"]
        self.tok = bpe.Tokenizer(ck["vocab"], [tuple(m) for m in ck["merges"]])
        self.text = TextEncoder(len(ck["vocab"]), dim=cfg["text_dim"], layers=cfg["text_layers"]).eval()
        self.ae = AutoEncoder(width=cfg["ae_width"], down=cfg.get("ae_down", 2)).eval()
        self.unet = UNet(text_dim=cfg["text_dim"], chs=tuple(cfg["chs"]), temb=cfg["temb"], rewards=cfg["rewards"],
                         score_dim=cfg["score_dim"]).eval()
        self.text.load_state_dict(ck["text"])
        self.ae.load_state_dict(ck["ae"])
        self.unet.load_state_dict(ck["unet"])
        self.sf = ck["scaling_factor"]
        self.eps = EpsUNet(self.unet, self.sf).eval()
        self.rewards = cfg["rewards"]
        self.size = cfg.get("size", 64)
        self.train_sigmas = sd_sigmas().double().numpy()

    @torch.no_grad()
    def edit(self, image_u8: np.ndarray, instruction: str, seed: int, steps: int = 20, text_scale: float = 3.0,
             image_scale: float = 1.5, scores=(5.0, 5.0, 5.0), feedback: str = "None; None; None") -> torch.Tensor:
        prompts = [instruction, ""] + ([feedback] if self.rewards else [])
        hidden, pooled = self.text(torch.tensor([self.tok(p) for p in prompts]))
        img = torch.from_numpy(image_u8).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        lat = self.ae.encode(img)
        _, c, h, w = lat.shape
        # Euler ancestral, linspace spacing (the bundled scheduler config)
        ts = np.linspace(0, 999, steps)[::-1].copy()
        sig = np.interp(ts, np.arange(1000), self.train_sigmas).tolist() + [0.0]
        rng = Generator(seed)
        x = rng.randn(c * h * w).reshape(1, c, h, w) * float(max(sig))
        # batch order: [full, image-only, unconditional]
        cond = torch.stack([hidden[0], hidden[1], hidden[1]])
        imgs = torch.cat([lat, lat, torch.zeros_like(lat)])
        extra = {}
        if self.rewards:
            extra = {"reward_scores": torch.tensor([list(scores)] * 3, dtype=torch.float32),
                     "feedback_embeds": pooled[2:3].repeat(3, 1)}
        for i, t in enumerate(ts):
            s, nxt = sig[i], sig[i + 1]
            scaled = x / math.sqrt(s * s + 1)
            sample = torch.cat([scaled.repeat(3, 1, 1, 1), imgs], 1)
            out = self.eps(sample, torch.full((3,), float(t)), cond, **extra)
            full, image_only, uncond = out[0:1], out[1:2], out[2:3]
            eps = uncond + text_scale * (full - image_only) + image_scale * (image_only - uncond)
            up = math.sqrt(nxt * nxt * (s * s - nxt * nxt) / (s * s))
            down = math.sqrt(nxt * nxt - up * up)
            noise = rng.randn(c * h * w).reshape(1, c, h, w)
            x0 = x - s * eps
            x = x + (x - x0) / s * (down - s) + noise * up
        return self.ae.decode(x / self.sf)[0]


def save_weights(path: str, text, ae, unet, sf: float, vocab: dict, merges: list, cfg: dict) -> None:
    torch.save({"text": text.state_dict(), "ae": ae.state_dict(), "unet": unet.state_dict(), "scaling_factor": sf,
                "vocab": vocab, "merges": [list(m) for m in merges], "config": cfg}, path)


def parity(a) -> None:
    ed = Editor(a.weights)
    os.makedirs(a.out, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    dim = ed.text.tok.embedding_dim
    sample = torch.randn(3, 8, 32, 32, generator=g)
    hidden = torch.randn(3, 77, dim, generator=g)
    t = torch.tensor([981.0, 500.25, 3.0])
    extra = {}
    if ed.rewards:
        extra = {"reward_scores": torch.tensor([[5.0, 5.0, 5.0], [1.0, 2.5, 4.0], [0.0, 0.0, 0.0]]),
                 "feedback_embeds": torch.randn(3, dim, generator=g)}
    with torch.no_grad():
        out = ed.eps(sample, t, hidden, **extra)
    tensors = {"sample": sample, "timestep": t, "encoder_hidden_states": hidden, **extra, "out_sample": out}
    for k, v in tensors.items():
        v.numpy().astype(np.float32).tofile(f"{a.out}/{k}.f32")
    src = np.array(Image.open(a.image).convert("RGB").resize((ed.size, ed.size), Image.BILINEAR))
    edited = ed.edit(src, a.instruction, a.seed, a.steps)
    edited.numpy().astype(np.float32).tofile(f"{a.out}/edit.f32")
    json.dump({"image": os.path.relpath(a.image, a.root), "instruction": a.instruction, "seed": a.seed, "steps": a.steps,
               "text_guidance": 3.0, "image_guidance": 1.5, "rewards": [5, 5, 5], "scheduler": "euler-a",
               "shapes": {k: list(v.shape) for k, v in tensors.items()} | {"edit": list(edited.shape)},
               "torch": torch.__version__}, open(f"{a.out}/reference.json", "w"), indent=2)


def timing(a) -> None:
    torch.set_num_threads(a.threads)
    ed = Editor(a.weights)
    src = np.array(Image.open(a.image).convert("RGB").resize((ed.size, ed.size)))
    ed.edit(src, "make the mug red", 0, a.steps)
    times = []
    for r in range(a.repeats):
        t0 = time.perf_counter()
        ed.edit(src, "make the mug red", r, a.steps)
        times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"edit_ms": times, "threads": a.threads, "torch": torch.__version__}))


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parity")
    p.add_argument("--weights", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(here)))
    p.add_argument("--image", default=os.path.join(os.path.dirname(here), "heldout-v2", "scenes", "syn-0002-source.png"))
    p.add_argument("--instruction", default="change the clock to dark blue")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--steps", type=int, default=12)
    t = sub.add_parser("time")
    t.add_argument("--weights", required=True)
    t.add_argument("--image", required=True)
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--repeats", type=int, default=5)
    t.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(getattr(a, "threads", 2))
    parity(a) if a.cmd == "parity" else timing(a)


if __name__ == "__main__":
    main()
