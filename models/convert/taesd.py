"""TAESD's decoder (diffusers' AutoencoderTiny, madebyollin/taesd, MIT) as an ONNX graph for a model
folder's `preview_decoder` (issue 33): about 1 % of the SD VAE decoder's work per image.

The module below is plain PyTorch with the parameter names of diffusers' DecoderTiny layout
(`decoder.layers.N...` in the AutoencoderTiny state dict), so a downloaded
`diffusion_pytorch_model.safetensors` loads into it as it is. It is checked here against a second,
functional reading of the same state dict (`reference_decode`), and the exported graph against the
module. The real weights cannot be fetched on this machine; `--random` writes a random-weight
decoder of the same shape (or a narrower one for test fixtures), whose images mean nothing.

    python3 taesd.py --weights taesd/diffusion_pytorch_model.safetensors --folder MODEL_DIR   (config.json beside it)
    python3 taesd.py --random --folder MODEL_DIR [--channels 64]
    python3 taesd.py --random --channels 8 --blocks 1,1 --out test/fixtures/taesd-narrow/model.onnx
    ... --golden FILE.json     also the module's output on a fixed latent, for ONNX Runtime to match
    python3 taesd.py --random --channels 8 --blocks 1,1 --save-checkpoint DIR   a diffusers-layout
                               checkpoint (config.json + safetensors) of it, for the loopback Hub tests
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

# AutoencoderTiny's defaults: decoder_block_out_channels (64,)*4, num_decoder_blocks (3, 3, 3, 1),
# upsampling_scaling_factor 2, act_fn relu, latent_channels 4, out_channels 3
BLOCKS = (3, 3, 3, 1)


class Block(nn.Module):
    """AutoencoderTinyBlock: three 3x3 convs with ReLU between, a skip, ReLU after the sum."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


class TinyDecoder(nn.Module):
    """Latents as the UNet sees them (scaled: AutoencoderTiny's scaling_factor is 1) -> RGB in [-1, 1]."""

    def __init__(self, channels: int = 64, latent_channels: int = 4, blocks: tuple[int, ...] = BLOCKS):
        super().__init__()
        self.blocks = blocks
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, channels, 3, padding=1), nn.ReLU()]
        for i, n in enumerate(blocks):
            last = i == len(blocks) - 1
            layers += [Block(channels, channels) for _ in range(n)]
            if not last:
                layers.append(nn.Upsample(scale_factor=2))
            layers.append(nn.Conv2d(channels, 3 if last else channels, 3, padding=1, bias=last))
        self.layers = nn.Sequential(*layers)

    def forward(self, z):
        # DecoderTiny clamps the latents softly to +-3 and returns [0, 1]; the pipeline works in [-1, 1]
        return self.layers(torch.tanh(z / 3) * 3) * 2 - 1


def reference_decode(state: dict[str, torch.Tensor], z: torch.Tensor, blocks: tuple[int, ...] = BLOCKS) -> torch.Tensor:
    """The same decoder read straight off the state dict with torch.nn.functional: a check that the
    module's layer indices are the layout's, independent of the module code."""
    x = torch.tanh(z / 3) * 3

    def conv(x, k, pad):
        return F.conv2d(x, state[f"layers.{k}.weight"], state.get(f"layers.{k}.bias"), padding=pad)

    x = F.relu(conv(x, 0, 1))
    i = 2
    for b, n in enumerate(blocks):
        for _ in range(n):
            p = f"layers.{i}."
            h = F.relu(F.conv2d(x, state[p + "conv.0.weight"], state[p + "conv.0.bias"], padding=1))
            h = F.relu(F.conv2d(h, state[p + "conv.2.weight"], state[p + "conv.2.bias"], padding=1))
            h = F.conv2d(h, state[p + "conv.4.weight"], state[p + "conv.4.bias"], padding=1)
            skip = F.conv2d(x, state[p + "skip.weight"]) if p + "skip.weight" in state else x
            x = F.relu(h + skip)
            i += 1
        if b < len(blocks) - 1:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            i += 1
        x = conv(x, i, 1)
        i += 1
    return x * 2 - 1


class ConfigError(Exception):
    pass


def shape_from_config(cfg: dict) -> tuple[int, tuple[int, ...]]:
    """(channels, blocks per stage) of an AutoencoderTiny config.json; a layout this module does
    not build is refused rather than loaded wrongly."""
    if cfg.get("_class_name", "AutoencoderTiny") != "AutoencoderTiny":
        raise ConfigError(f"config.json describes a {cfg['_class_name']}, not an AutoencoderTiny")
    channels = cfg.get("decoder_block_out_channels", [64] * len(BLOCKS))
    blocks = cfg.get("num_decoder_blocks", list(BLOCKS))
    problems = []
    if len(set(channels)) != 1:
        problems.append(f"decoder_block_out_channels {channels} (one width throughout is supported)")
    if len(channels) != len(blocks):
        problems.append(f"{len(channels)} decoder widths for {len(blocks)} stages")
    for key, want in (("upsampling_scaling_factor", 2), ("act_fn", "relu"), ("latent_channels", 4), ("out_channels", 3),
                      ("upsample_fn", "nearest")):
        if cfg.get(key, want) != want:
            problems.append(f"{key} {cfg[key]!r} (expected {want!r})")
    if problems:
        raise ConfigError("unsupported AutoencoderTiny: " + "; ".join(problems))
    return int(channels[0]), tuple(int(b) for b in blocks)


def save_checkpoint(m: TinyDecoder, out: str) -> None:
    """The module as AutoencoderTiny's diffusers folder would hold it: config.json and the weights
    under `decoder.` (plus one `encoder.` tensor, which the decoder never reads)."""
    os.makedirs(out, exist_ok=True)
    n = len(m.blocks)
    width = m.layers[0].out_channels
    cfg = {"_class_name": "AutoencoderTiny", "_diffusers_version": "0.29.0", "act_fn": "relu",
           "decoder_block_out_channels": [width] * n, "encoder_block_out_channels": [width] * n,
           "num_decoder_blocks": list(m.blocks), "num_encoder_blocks": [1] * n, "latent_channels": 4,
           "in_channels": 3, "out_channels": 3, "upsampling_scaling_factor": 2, "scaling_factor": 1.0}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    state = {f"decoder.{k}": v.contiguous() for k, v in m.state_dict().items()}
    state["encoder.layers.0.weight"] = torch.zeros(width, 3, 3, 3)
    safetensors_io.save(state, os.path.join(out, "diffusion_pytorch_model.safetensors"))


def decoder_state(path: str) -> dict[str, torch.Tensor]:
    """The decoder's tensors of an AutoencoderTiny safetensors file, without the `decoder.` prefix."""
    state = safetensors_io.load(path)
    return {k[len("decoder."):]: v.float() for k, v in state.items() if k.startswith("decoder.")}


def build(weights: str | None, channels: int, seed: int, blocks: tuple[int, ...] = BLOCKS) -> TinyDecoder:
    torch.manual_seed(seed)
    m = TinyDecoder(channels, blocks=blocks)
    if weights:
        m.load_state_dict(decoder_state(weights), strict=True)
    return m.eval()


def golden(m: TinyDecoder, file: str) -> None:
    """A fixed latent and the PyTorch module's decode of it: what the ONNX graph must reproduce
    (onnxruntime is not installable for this Python, so the comparison runs in the Node tests)."""
    z = torch.randn(1, 4, 6, 10, generator=torch.Generator().manual_seed(2)) * 2
    with torch.no_grad():
        y = m(z)
    with open(file, "w") as f:
        json.dump({"latent": {"dims": list(z.shape), "data": z.flatten().tolist()},
                   "sample": {"dims": list(y.shape), "data": y.flatten().tolist()}}, f)


def export(m: TinyDecoder, out: str) -> dict:
    import onnx
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    z = torch.randn(1, 4, 8, 12, generator=torch.Generator().manual_seed(1))
    spatial = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(m, (z,), out, opset_version=14, input_names=["latent_sample"], output_names=["sample"],
                          dynamic_axes={"latent_sample": spatial, "sample": spatial})
        state = {k: v for k, v in m.state_dict().items()}
        ref = reference_decode(state, z, m.blocks)
        got = m(z)
    onnx.checker.check_model(onnx.load(out))
    return {"module_vs_reference_max_abs": float((got - ref).abs().max()), "params": sum(p.numel() for p in m.parameters())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="AutoencoderTiny diffusion_pytorch_model.safetensors")
    src.add_argument("--random", action="store_true", help="random weights (shape only)")
    dst = ap.add_mutually_exclusive_group(required=True)
    dst.add_argument("--folder", help="model folder: writes preview_decoder/model.onnx and names it in reward-edit.json")
    dst.add_argument("--out", help="an .onnx file")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--blocks", default=",".join(map(str, BLOCKS)),
                    help="blocks per stage (an upsampling by 2 between stages); 1,1 for a 2x fixture")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--golden", help="write a fixed latent and the module's output to this JSON file")
    ap.add_argument("--config", help="AutoencoderTiny config.json (default: the one beside --weights, if any)")
    dst.add_argument("--save-checkpoint", metavar="DIR", help="write the module as a diffusers AutoencoderTiny folder instead")
    a = ap.parse_args()
    # torch.onnx's tracer warns about shape inference of constants on every graph: noise here
    warnings.filterwarnings("ignore", category=UserWarning)
    channels, blocks = a.channels, tuple(int(x) for x in a.blocks.split(","))
    config = a.config or (os.path.join(os.path.dirname(os.path.abspath(a.weights)), "config.json") if a.weights else None)
    if config and os.path.exists(config):
        try:
            channels, blocks = shape_from_config(json.load(open(config)))
        except ConfigError as e:
            print(f"{config}: {e}", file=sys.stderr)
            return 2
    try:
        m = build(a.weights, channels, a.seed, blocks)
    except RuntimeError as e:
        # load_state_dict names every missing and unexpected key; the first line says which
        print(f"{a.weights}: not a TAESD decoder of this shape ({str(e).splitlines()[0]})", file=sys.stderr)
        return 2
    if a.save_checkpoint:
        save_checkpoint(m, a.save_checkpoint)
        print(json.dumps({"out": a.save_checkpoint}))
        return 0
    out = os.path.join(a.folder, "preview_decoder", "model.onnx") if a.folder else a.out
    report = export(m, out)
    if a.golden:
        golden(m, a.golden)
    if report["module_vs_reference_max_abs"] > 1e-4:
        print(json.dumps(report), file=sys.stderr)
        raise SystemExit("the module and the functional reference disagree")
    if a.folder:
        file = os.path.join(a.folder, "reward-edit.json")
        manifest = json.load(open(file)) if os.path.exists(file) else {}
        manifest["preview_decoder"] = "preview_decoder/model.onnx"
        with open(file, "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
    print(json.dumps({"out": out, "random": bool(a.random), **report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
