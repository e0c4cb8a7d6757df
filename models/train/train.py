"""Training of the bundled editors (issue 3). See models/README.md for the commands.

  prepare   vocabulary, the fixed noisy-triplet set, and the autoencoder (shared by both editors);
            --size 64 | 128 picks the world's working size (the same scenes either way)
  editor    text encoder + UNet, with (--rewards) or without Multi-Reward Conditioning
  heldout   the v2 held-out suites (models/heldout-v2/{scenes,shapes,backdrops,pairs})
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

import bpe
import scenes
from model import AutoEncoder, EpsUNet, TextEncoder, UNet, sd_sigmas

HERE = os.path.dirname(os.path.abspath(__file__))


def setup(threads: int, seed: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def to_tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def prepare(args) -> None:
    setup(args.threads, args.seed)
    os.makedirs(args.work, exist_ok=True)
    if args.ae_from:
        # continuing a shipped model: its vocabulary and autoencoder, not new ones
        shipped = torch.load(args.ae_from)
        vocab, merges = shipped["vocab"], [tuple(m) for m in shipped["merges"]]
    else:
        vocab, merges = bpe.learn(scenes.corpus())
    bpe.save(f"{args.work}/tokenizer", vocab, merges)
    t0 = time.time()
    if args.reuse and os.path.exists(f"{args.work}/triplets.npz"):
        data = dict(np.load(f"{args.work}/triplets.npz"))
    else:
        data = scenes.make_triplets(args.triplets, args.seed, size=args.size)
    if args.extra_triplets:
        # more triplets from another seed, drawn with other edit-kind weights, appended to the set:
        # how a continued model gets more of the kinds it still fails without losing the rest
        weights = dict(scenes.EDIT_WEIGHTS, **{k: float(v) for k, v in
                                               (kv.split("=") for kv in args.kind_weights.split(",") if kv)})
        more = scenes.make_triplets(args.extra_triplets, args.extra_seed, size=args.size, weights=weights)
        data = {k: np.concatenate([np.asarray(data[k]), np.asarray(more[k])]) for k in data}
        print(f"appended {args.extra_triplets} triplets (seed {args.extra_seed}, weights {weights})", flush=True)
    if not (args.reuse and not args.extra_triplets and os.path.exists(f"{args.work}/triplets.npz")):
        np.savez_compressed(f"{args.work}/triplets.npz", source=data["source"], target=data["target"],
                            scores=data["scores"], instruction=np.array(data["instruction"]),
                            feedback=np.array(data["feedback"]))
    print(f"triplets: {len(data['source'])} in {time.time() - t0:.0f}s; vocab {len(vocab)}", flush=True)
    images = np.concatenate([data["source"], data["target"]])
    down = 2 if args.size <= 64 else 4  # 32x32 latents either way
    ae = AutoEncoder(down=down)
    if args.ae_from:
        ae.load_state_dict(shipped["ae"])
        args.ae_steps = 0
    opt = torch.optim.AdamW(ae.parameters(), lr=3e-3)
    for step in range(args.ae_steps):
        x = to_tensor(images[np.random.randint(0, len(images), 32)])
        z = ae.encode(x)
        loss = F.mse_loss(ae.decode(z), x) + 1e-4 * z.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0:
            print(f"ae step {step} loss {loss.item():.5f}", flush=True)
    with torch.no_grad():
        z = ae.encode(to_tensor(images[:2048]))
        # the latent diffusion convention: scale latents to unit variance
        scaling = shipped["scaling_factor"] if args.ae_from else float(1.0 / z.std())
        err = F.mse_loss(ae.decode(z), to_tensor(images[:2048])).item()
    torch.save({"ae": ae.state_dict(), "scaling_factor": scaling, "recon_mse": err, "size": args.size, "down": down},
               f"{args.work}/ae.pt")
    print(f"ae recon mse {err:.5f} scaling_factor {scaling:.5f}", flush=True)


class Data:
    """The fixed triplet set, latents precomputed once with the frozen autoencoder."""

    def __init__(self, work: str, tok: bpe.Tokenizer, ae: AutoEncoder, sf: float, device: str = "cpu"):
        d = np.load(f"{work}/triplets.npz")
        self.scores = torch.from_numpy(d["scores"]).to(device)
        with torch.no_grad():
            enc = lambda a: torch.cat([ae.encode(to_tensor(a[i:i + 512]).to(device)) for i in range(0, len(a), 512)])
            self.src = enc(d["source"])  # image latent: unscaled (DESIGN.md 3)
            self.tgt = enc(d["target"]) * sf
        self.ids = torch.tensor([tok(t) for t in d["instruction"]], device=device)
        self.fb = torch.tensor([tok(t) for t in d["feedback"]], device=device)
        self.empty = torch.tensor(tok(""), device=device)


def train_editor(args) -> None:
    setup(args.threads, args.seed)
    vocab = json.load(open(f"{args.work}/tokenizer/vocab.json"))
    merges = [tuple(l.split()) for l in open(f"{args.work}/tokenizer/merges.txt").read().splitlines()[1:]]
    tok = bpe.Tokenizer(vocab, merges)
    aeck = torch.load(f"{args.work}/ae.pt")
    ae = AutoEncoder(down=aeck.get("down", 2))
    ae.load_state_dict(aeck["ae"])
    sf = aeck["scaling_factor"]
    dev = args.device
    data = Data(args.work, tok, ae.to(dev), sf, dev)
    n = len(data.ids)
    text = TextEncoder(len(vocab)).to(dev)
    unet = UNet(rewards=args.rewards).to(dev)
    eps = EpsUNet(unet, sf)
    params = list(text.parameters()) + list(unet.parameters())
    print(f"params: text {sum(p.numel() for p in text.parameters())}, unet {sum(p.numel() for p in unet.parameters())}",
          flush=True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    sigmas = sd_sigmas().to(dev)
    out = args.out
    os.makedirs(out, exist_ok=True)
    start, step = time.time(), 0
    before = {"steps": 0, "seconds": 0}  # training the --init weights had already had
    ck = f"{out}/checkpoint.pt"
    if args.init and not os.path.exists(ck):
        # continue a shipped model: its (EMA) weights start both the parameters and the EMA; the
        # optimiser starts afresh
        shipped = torch.load(f"{args.init}/reference/weights.pt", map_location=dev)
        assert shipped["config"]["rewards"] == args.rewards, "--init model and --rewards disagree"
        text.load_state_dict(shipped["text"])
        unet.load_state_dict(shipped["unet"])
        ema = [p.detach().clone() for p in params]
        before = json.load(open(f"{args.init}/reward-edit.json"))["training"]
        print(f"initialised from {args.init} ({before['steps']} steps)", flush=True)
    if os.path.exists(ck):
        state = torch.load(ck, map_location=dev)
        text.load_state_dict(state["text"])
        unet.load_state_dict(state["unet"])
        opt.load_state_dict(state["opt"])
        ema = [e.to(dev) for e in state["ema"]]
        step = state["step"]
        start -= state["elapsed"]
        before = state.get("before", before)
        torch.set_rng_state(state["rng"])
        print(f"resumed at step {step}", flush=True)
    log = open(f"{out}/train.log", "a")
    while True:
        elapsed = time.time() - start
        done = (args.steps and step >= args.steps) or (not args.steps and elapsed >= args.minutes * 60)
        if step % 500 == 0 or done:
            # stored on the CPU whatever the device, so export.py and a CPU resume read it as is
            cpu = lambda sd: {k: v.cpu() for k, v in sd.items()}
            torch.save({"text": cpu(text.state_dict()), "unet": cpu(unet.state_dict()), "opt": opt.state_dict(),
                        "ema": [e.cpu() for e in ema], "step": step, "elapsed": elapsed, "rng": torch.get_rng_state(),
                        "rewards": args.rewards, "scaling_factor": sf, "before": before}, ck)
        if done:
            break
        idx = torch.randint(0, n, (args.batch,)).to(dev)
        src, tgt, ids = data.src[idx], data.tgt[idx], data.ids[idx].clone()
        # InstructPix2Pix conditioning dropout: text only, image only, both (5 % each)
        r = torch.rand(args.batch).to(dev)
        drop_text = (r < 0.05) | ((r >= 0.10) & (r < 0.15))
        drop_img = (r >= 0.05) & (r < 0.15)
        ids[drop_text] = data.empty
        src = src * (~drop_img).float()[:, None, None, None]
        t = torch.randint(0, 1000, (args.batch,)).to(dev)
        sigma = sigmas[t][:, None, None, None]
        x = tgt + sigma * torch.randn_like(tgt)
        sample = torch.cat([x / (sigma ** 2 + 1).sqrt(), src], 1)
        hidden, _ = text(ids)
        if args.rewards:
            _, fb = text(data.fb[idx])
            x0 = eps.x0(sample, t.float(), hidden, data.scores[idx], fb)
        else:
            x0 = eps.x0(sample, t.float(), hidden)
        loss = F.mse_loss(x0, tgt)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema, params):
                e.mul_(args.ema).add_(p.detach(), alpha=1 - args.ema)
        step += 1
        if step % 50 == 0:
            line = f"step {step} loss {loss.item():.5f} elapsed {time.time() - start:.0f}s"
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()


def heldout(args) -> None:
    """The v2 held-out suites (scenes, shapes, backdrops, pairs) at the world's working size."""
    for name, (split, seed) in scenes.SUITES.items():
        scenes.save_heldout(f"{args.out}/{name}", args.n, seed, args.size, split)
        print(f"{args.out}/{name}: {args.n} scenes", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--work", default=f"{HERE}/.work")
    p.add_argument("--triplets", type=int, default=20000)
    p.add_argument("--ae-steps", type=int, default=1200)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse", action="store_true", help="keep an existing triplets.npz (only the autoencoder again)")
    p.add_argument("--size", type=int, default=64, choices=(64, 128), help="working size of the world")
    p.add_argument("--ae-from", help="reference/weights.pt of a shipped model: reuse its vocabulary and autoencoder")
    p.add_argument("--extra-triplets", type=int, default=0, help="append this many triplets from --extra-seed")
    p.add_argument("--extra-seed", type=int, default=1)
    p.add_argument("--kind-weights", default="", help="edit-kind weights of the extra triplets, e.g. recolour=5,add=4")
    e = sub.add_parser("editor")
    e.add_argument("--work", default=f"{HERE}/.work")
    e.add_argument("--out", required=True)
    e.add_argument("--rewards", action=argparse.BooleanOptionalAction, default=True)
    e.add_argument("--minutes", type=float, default=40)
    e.add_argument("--steps", type=int, default=0, help="stop after this many steps instead of --minutes")
    e.add_argument("--batch", type=int, default=32)
    e.add_argument("--lr", type=float, default=1e-3)
    e.add_argument("--ema", type=float, default=0.999)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--init", help="a shipped model folder to continue training from (fresh optimiser)")
    e.add_argument("--device", default="cpu", help="torch device, e.g. cuda (checkpoints are stored on the CPU either way)")
    h = sub.add_parser("heldout")
    h.add_argument("--out", default=f"{HERE}/../heldout-v2")
    h.add_argument("--size", type=int, default=64, choices=(64, 128))
    h.add_argument("--n", type=int, default=120)
    a = ap.parse_args()
    {"prepare": prepare, "editor": train_editor, "heldout": heldout}[a.cmd](a)


if __name__ == "__main__":
    main()
