"""Export an editor to a model folder (diffusers ONNX layout + reward-edit.json, DESIGN.md 2).

  export.py --checkpoint RUN/checkpoint.pt --out models/reward-edit-synthetic   (trained, EMA weights)
  export.py --random --out test/fixtures/tiny-editor                            (test model, random weights)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import torch

import bpe
import deepcache
import preview_fit
import reference
import scenes
from model import AutoEncoder, EpsUNet, TextEncoder, UNet

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 14


def scheduler_config() -> dict:
    # Stable Diffusion 1.5's training schedule, which the editors are trained on
    return {"_class_name": "EulerAncestralDiscreteScheduler", "_diffusers_version": "0.24.0",
            "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
            "num_train_timesteps": 1000, "prediction_type": "epsilon", "timestep_spacing": "linspace",
            "steps_offset": 1, "trained_betas": None}


# DeepCache (issue 20): the whole UNet also outputs its deep features; unet_shallow takes them back
DEEP_CACHE = deepcache.manifest_entry(
    "input of the last up block (u0): conv_in, reward injection, d0, u0 and out run on every step")


def export_unet(eps: EpsUNet, out: str, rewards: bool, dim: int) -> None:
    """unet/model.onnx (out_sample + deep_features) and unet_shallow/model.onnx, which holds only the
    outer blocks' weights; both with a dynamic batch axis (the pipeline drops guidance branches)."""
    spatial = {0: "batch", 2: "height", 3: "width"}
    args = [torch.zeros(3, 8, 32, 32), torch.full((3,), 500.0), torch.zeros(3, 77, dim)]
    names = ["sample", "timestep", "encoder_hidden_states"]
    axes = {"sample": spatial, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}, "out_sample": spatial,
            "deep_features": spatial}
    if rewards:
        args += [torch.full((3, 3), 5.0), torch.zeros(3, dim)]
        names += ["reward_scores", "feedback_embeds"]
        axes.update({"reward_scores": {0: "batch"}, "feedback_embeds": {0: "batch"}})
    os.makedirs(f"{out}/unet", exist_ok=True)
    os.makedirs(f"{out}/unet_shallow", exist_ok=True)
    torch.onnx.export(deepcache.CachedGraph(eps), tuple(args), f"{out}/unet/model.onnx", opset_version=OPSET,
                      input_names=names, output_names=["out_sample", "deep_features"], dynamic_axes=axes)
    _, deep = eps.forward_cached(*args)
    torch.onnx.export(deepcache.ShallowGraph(eps), tuple(args + [deep]), f"{out}/unet_shallow/model.onnx", opset_version=OPSET,
                      input_names=names + ["deep_features"], output_names=["out_sample"], dynamic_axes=axes)


def reexport_unet(folder: str) -> None:
    """Rewrites a shipped folder's UNet graphs from its reference weights (same weights, new graphs)."""
    ck = torch.load(f"{folder}/reference/weights.pt")
    cfg = ck["config"]
    unet = UNet(text_dim=cfg["text_dim"], chs=tuple(cfg["chs"]), temb=cfg["temb"], rewards=cfg["rewards"],
                score_dim=cfg["score_dim"]).eval()
    unet.load_state_dict(ck["unet"])
    export_unet(EpsUNet(unet, ck["scaling_factor"]).eval(), folder, cfg["rewards"], cfg["text_dim"])
    path = f"{folder}/reward-edit.json"
    manifest = json.load(open(path))
    manifest["deep_cache"] = DEEP_CACHE
    json.dump(manifest, open(path, "w"), indent=2)


def export_folder(out: str, text: TextEncoder, ae: AutoEncoder, unet: UNet, sf: float, tokenizer_dir: str,
                  manifest: dict, cfg: dict) -> None:
    os.makedirs(out, exist_ok=True)
    for sub in ("text_encoder", "vae_encoder", "vae_decoder", "unet"):
        os.makedirs(f"{out}/{sub}", exist_ok=True)
    shutil.copytree(tokenizer_dir, f"{out}/tokenizer", dirs_exist_ok=True)
    os.makedirs(f"{out}/scheduler", exist_ok=True)
    json.dump(scheduler_config(), open(f"{out}/scheduler/scheduler_config.json", "w"), indent=2)
    json.dump({"_class_name": "OnnxStableDiffusionInstructPix2PixPipeline", "_diffusers_version": "0.24.0",
               "scheduler": ["diffusers", "EulerAncestralDiscreteScheduler"],
               "text_encoder": ["diffusers", "OnnxRuntimeModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
               "unet": ["diffusers", "OnnxRuntimeModel"], "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
               "vae_encoder": ["diffusers", "OnnxRuntimeModel"]}, open(f"{out}/model_index.json", "w"), indent=2)
    text.eval(), ae.eval(), unet.eval()
    rewards = unet.rewards
    dim = text.tok.embedding_dim
    ids = torch.zeros(1, 77, dtype=torch.long)
    torch.onnx.export(text, (ids,), f"{out}/text_encoder/model.onnx", opset_version=OPSET,
                      input_names=["input_ids"], output_names=["last_hidden_state", "pooler_output"],
                      dynamic_axes={"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"},
                                    "pooler_output": {0: "batch"}})

    class Enc(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ae = ae

        def forward(self, sample):
            return self.ae.encode(sample)

    class Dec(Enc):
        def forward(self, latent_sample):
            return self.ae.decode(latent_sample)

    size = cfg.get("size", 64)
    img = torch.zeros(1, 3, size, size)
    spatial = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(Enc(), (img,), f"{out}/vae_encoder/model.onnx", opset_version=OPSET,
                      input_names=["sample"], output_names=["latent_sample"],
                      dynamic_axes={"sample": spatial, "latent_sample": spatial})
    torch.onnx.export(Dec(), (torch.zeros(1, 4, 32, 32),), f"{out}/vae_decoder/model.onnx", opset_version=OPSET,
                      input_names=["latent_sample"], output_names=["sample"],
                      dynamic_axes={"latent_sample": spatial, "sample": spatial})
    export_unet(EpsUNet(unet, sf).eval(), out, rewards, dim)
    manifest = dict(manifest)
    manifest.update({
        "format": "reward-edit/1",
        "resolution": size,
        "size_multiple": 8,
        "latent_channels": 4,
        "latent_downscale": cfg.get("ae_down", 2),
        "scaling_factor": sf,
        "defaults": {"steps": 20, "text_guidance": 3.0, "image_guidance": 1.5, "scheduler": "euler-a"},
    })
    manifest["deep_cache"] = DEEP_CACHE
    if rewards:
        manifest["rewards"] = {"scores_input": "reward_scores", "feedback_input": "feedback_embeds",
                               "perspectives": ["following", "preserving", "quality"], "range": [0, 5],
                               "default_feedback": "None; None; None"}
    # live previews: the latent -> RGB map of this decoder (preview_fit.py)
    manifest["preview"] = preview_fit.fit(ae.encode, ae.decode, sf, cfg.get("ae_down", 2), preview_fit.fit_images(size=size))
    json.dump(manifest, open(f"{out}/reward-edit.json", "w"), indent=2)
    # the same weights for the PyTorch reference (parity test, `npm run bench`)
    os.makedirs(f"{out}/reference", exist_ok=True)
    vocab = json.load(open(f"{tokenizer_dir}/vocab.json"))
    merges = [l.split() for l in open(f"{tokenizer_dir}/merges.txt").read().splitlines()[1:]]
    reference.save_weights(f"{out}/reference/weights.pt", text, ae, unet, sf, vocab, merges, cfg | {"rewards": rewards})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--work", default=f"{HERE}/.work")
    ap.add_argument("--random", action="store_true", help="tiny random-weight test model with the real I/O signature")
    ap.add_argument("--no-rewards", action="store_true")
    ap.add_argument("--name", default="reward-edit-synthetic")
    ap.add_argument("--description", default="")
    ap.add_argument("--unet-only", action="store_true",
                    help="rewrite the UNet graphs of the folder --out from its reference weights")
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    if a.unet_only:
        reexport_unet(a.out)
        return
    if a.random:
        vocab, merges = bpe.learn(scenes.corpus())
        tok_dir = f"{a.out}.tokenizer-tmp"
        bpe.save(tok_dir, vocab, merges)
        cfg = {"text_dim": 16, "text_layers": 1, "ae_width": 8, "chs": [8, 16, 16], "temb": 32, "score_dim": 16}
        text = TextEncoder(len(vocab), dim=16, layers=1)
        ae = AutoEncoder(width=8)
        unet = UNet(text_dim=16, chs=(8, 16, 16), temb=32, rewards=not a.no_rewards, score_dim=16)
        export_folder(a.out, text, ae, unet, 1.0, tok_dir,
                      {"name": "tiny-random", "description": "random weights: exercises every code path, edits nothing",
                       "licence": "Apache-2.0"}, cfg)
        shutil.rmtree(tok_dir)
        return
    ck = torch.load(a.checkpoint)
    vocab = json.load(open(f"{a.work}/tokenizer/vocab.json"))
    text = TextEncoder(len(vocab))
    unet = UNet(rewards=ck["rewards"])
    # ship the EMA weights: they edit more cleanly than the last optimiser step
    ema = iter(ck["ema"])
    text.load_state_dict(ck["text"])
    unet.load_state_dict(ck["unet"])
    with torch.no_grad():
        for p in list(text.parameters()) + list(unet.parameters()):
            p.copy_(next(ema))
    aeck = torch.load(f"{a.work}/ae.pt")
    size, down = aeck.get("size", 64), aeck.get("down", 2)
    ae = AutoEncoder(down=down)
    ae.load_state_dict(aeck["ae"])
    # the set the run trained on (20,000 at first; a continued run may have appended more)
    triplets = int(np.load(f"{a.work}/triplets.npz")["scores"].shape[0]) if os.path.exists(f"{a.work}/triplets.npz") else 20000
    cfg = {"text_dim": 64, "text_layers": 2, "ae_width": 48, "ae_down": down, "size": size, "chs": [32, 64, 128],
           "temb": 256, "score_dim": 64}
    export_folder(a.out, text, ae, unet, ck["scaling_factor"], f"{a.work}/tokenizer",
                  {"name": a.name, "description": a.description, "licence": "Apache-2.0",
                   "training": {"steps": ck.get("before", {}).get("steps", 0) + ck["step"],
                                "seconds": round(ck.get("before", {}).get("seconds", 0) + ck["elapsed"]), "batch": 32,
                                "triplets": triplets, "seed": 0},
                   "domain": scenes.domain(size)}, cfg)
    shutil.rmtree(f"{a.out}/examples", ignore_errors=True)
    os.makedirs(f"{a.out}/examples", exist_ok=True)
    examples = f"{HERE}/../heldout-v2/scenes"
    if os.path.isdir(examples):  # absent in the trainer's smoke test, which exports before any suite exists
        for scene_id, name, _ in scenes.EXAMPLES:
            shutil.copyfile(f"{examples}/{scene_id}-source.png", f"{a.out}/examples/{name}")


if __name__ == "__main__":
    main()
