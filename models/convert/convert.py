"""Convert a diffusers-format InstructPix2Pix or Multi-Reward checkpoint folder into a model folder
this project serves (DESIGN.md 2 and 8):

  python3 convert.py SRC OUT [--dtype float32|float16|int8]

Checks every tensor name and shape against the configs first and lists all problems at once
(exit 2); then exports text_encoder, vae_encoder (mean), unet, vae_decoder to ONNX, copies the
tokenizer and scheduler and writes reward-edit.json. Prints one JSON line of figures at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))

import checkpoint  # noqa: E402
import deepcache  # noqa: E402
import preview_fit  # noqa: E402
import single_file  # noqa: E402
import unet as unet_mod  # noqa: E402
from vae import VaeDecoderGraph, VaeEncoderGraph  # noqa: E402

OPSET = 14
GRAPHS = ("text_encoder", "vae_encoder", "unet", "unet_shallow", "vae_decoder")
# protobuf cannot hold a graph over 2 GB; leave room for the graph itself (lowered by the tests,
# so the external-data path runs on a small checkpoint)
EXTERNAL_DATA_BYTES = int(os.environ.get("REWARD_EDIT_EXTERNAL_DATA_BYTES", 1_800_000_000))


def save_onnx(path: str, export, dims: dict[str, dict[int, int | str]] | None = None) -> None:
    """Exports through a scratch folder, then writes model.onnx with its weights inline, or, past
    protobuf's limit, in one model.onnx_data file beside it (torch writes one file per tensor).
    `dims` sets declared dims of inputs and outputs (graph_dims.set_dims): torch.onnx leaves every
    output dim symbolic that it cannot prove constant, the weight-fixed widths included."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model
    import graph_dims
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as tmp:
        raw = os.path.join(tmp, "model.onnx")
        export(raw)
        model = onnx.load(raw, load_external_data=False)
        load_external_data_for_model(model, tmp)
        if dims:
            graph_dims.set_dims(model, dims)
        large = sum(t.ByteSize() for t in model.graph.initializer) > EXTERNAL_DATA_BYTES
        for f in ("model.onnx", "model.onnx_data"):
            if os.path.exists(os.path.join(os.path.dirname(path), f)):
                os.remove(os.path.join(os.path.dirname(path), f))
        onnx.save(model, path, save_as_external_data=large, all_tensors_to_one_file=True,
                  location="model.onnx_data" if large else None, size_threshold=1024)


def export_text_encoder(module, out: str) -> None:
    import graph_dims
    ids = torch.zeros(2, 77, dtype=torch.int64)
    axes = {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}, "pooler_output": {0: "batch"}}
    hidden, pooled = module(ids)
    # the widths the UNet's inputs declare, so `models validate` compares them without a run
    dims = graph_dims.fixed_dims({"last_hidden_state": hidden.shape, "pooler_output": pooled.shape}, axes)
    save_onnx(out, lambda p: torch.onnx.export(
        module, (ids,), p, opset_version=OPSET, input_names=["input_ids"],
        output_names=["last_hidden_state", "pooler_output"], dynamic_axes=axes), dims)


def export_vae(vae, out_dir: str) -> None:
    x = torch.zeros(1, 3, 64, 64)
    spatial = {0: "batch", 2: "height", 3: "width"}
    save_onnx(f"{out_dir}/vae_encoder/model.onnx", lambda p: torch.onnx.export(
        VaeEncoderGraph(vae), (x,), p, opset_version=OPSET, input_names=["sample"], output_names=["latent_sample"],
        dynamic_axes={"sample": spatial, "latent_sample": spatial}))
    z = torch.zeros(1, vae.latent_channels, 8, 8)
    save_onnx(f"{out_dir}/vae_decoder/model.onnx", lambda p: torch.onnx.export(
        VaeDecoderGraph(vae), (z,), p, opset_version=OPSET, input_names=["latent_sample"], output_names=["sample"],
        dynamic_axes={"latent_sample": spatial, "sample": spatial}))


# DeepCache (issue 20): the whole UNet also outputs its deep features; unet_shallow takes them back
DEEP_CACHE = deepcache.manifest_entry("input of up_blocks[-1]: conv_in, the reward injection, down_blocks[0] "
                                      "(without its downsampler), up_blocks[-1] and conv_out run on every step")


def export_unet(unet, cfg: dict, rewards: bool, out_dir: str, text_dim: int) -> None:
    """unet/model.onnx (out_sample and deep_features) and unet_shallow/model.onnx, which holds only the
    outer blocks' weights, so no deep block is stored twice."""
    import graph_dims
    b, c = 3, cfg.get("in_channels", 8)
    args = [torch.zeros(b, c, 8, 8), torch.full((b,), 500.0), torch.zeros(b, 77, cfg.get("cross_attention_dim", text_dim))]
    names = ["sample", "timestep", "encoder_hidden_states"]
    spatial = {0: "batch", 2: "height", 3: "width"}
    axes = {"sample": spatial, "timestep": {0: "batch"}, "encoder_hidden_states": {0: "batch"}, "out_sample": spatial,
            "deep_features": spatial}
    if rewards:
        args += [torch.full((b, 3), 5.0), torch.zeros(b, 768)]
        names += ["reward_scores", "feedback_embeds"]
        axes.update({"reward_scores": {0: "batch"}, "feedback_embeds": {0: "batch"}})
    os.makedirs(f"{out_dir}/unet_shallow", exist_ok=True)
    ms = unet_mod.MS_OPSET if unet_mod.FUSED_ATTENTION else None
    out, deep = unet.forward_cached(*args)
    # the output channels, which torch.onnx declares symbolic ("Addout_sample_dim_1")
    dims = graph_dims.fixed_dims({"out_sample": out.shape, "deep_features": deep.shape}, axes)
    save_onnx(f"{out_dir}/unet/model.onnx", lambda p: torch.onnx.export(
        deepcache.CachedGraph(unet), tuple(args), p, opset_version=OPSET, input_names=names,
        output_names=["out_sample", "deep_features"], dynamic_axes=axes, custom_opsets=ms), dims)
    save_onnx(f"{out_dir}/unet_shallow/model.onnx", lambda p: torch.onnx.export(
        deepcache.ShallowGraph(unet), tuple(args + [deep]), p, opset_version=OPSET, input_names=names + ["deep_features"],
        output_names=["out_sample"], dynamic_axes=axes, custom_opsets=ms), {"out_sample": dims["out_sample"]})


def manifest(ck: checkpoint.Checkpoint, name: str, dtype: str) -> dict:
    vae = ck.configs["vae"]
    down = 2 ** (len(vae["block_out_channels"]) - 1)
    size = int(vae.get("sample_size", 512))
    m = {
        "format": "reward-edit/1",
        "name": name,
        "description": ("Multi-Reward (stage 2) InstructPix2Pix editor" if ck.kind == "multi-reward" else "InstructPix2Pix editor")
        + f", converted from {os.path.basename(os.path.normpath(ck.src))} by models/convert/convert.py ({dtype}).",
        "licence": "see the source checkpoint",
        "resolution": size,
        # sides in multiples of 64 at SD scale (the published evaluation), i.e. 8 latent pixels
        "size_multiple": 8 * down,
        "latent_channels": vae.get("latent_channels", 4),
        "latent_downscale": down,
        "scaling_factor": vae.get("scaling_factor", 0.18215),
        # the published evaluation's settings (DESIGN.md 8)
        "defaults": {"steps": 30, "text_guidance": 7.5, "image_guidance": 1.5, "scheduler": "euler-a"},
        "domain": {
            "kind": "photos",
            "description": f"A diffusers-format {'Multi-Reward' if ck.kind == 'multi-reward' else 'InstructPix2Pix'} checkpoint: "
                           f"edits photos at {size} px on the long side (sides in multiples of {8 * down}).",
            "working_size": size,
            "instructions": [],
            "examples": [],
        },
        "deep_cache": DEEP_CACHE,
        "source": {"kind": ck.kind, "dtype": dtype, "files": {c: [os.path.basename(p) for p in ps] for c, ps in ck.files.items()}},
    }
    if ck.kind == "multi-reward":
        m["rewards"] = {"scores_input": "reward_scores", "feedback_input": "feedback_embeds",
                        "perspectives": ["following", "preserving", "quality"], "range": [0, 5],
                        "default_feedback": "None; None; None"}
    return m


def to_float16(out: str) -> None:
    """float16 weights and arithmetic inside, float32 inputs and outputs (models/train/fp16.py)."""
    import fp16
    for c in GRAPHS:
        path = f"{out}/{c}/model.onnx"
        tmp = f"{out}/{c}/model.f16.onnx"
        # no float16 CPU kernel for the fused attention: it stays float32 between casts
        fp16.convert(path, tmp, {"MultiHeadAttention"})
        for f in os.listdir(f"{out}/{c}"):
            if f in ("model.onnx", "model.onnx_data"):
                os.remove(f"{out}/{c}/{f}")
        os.rename(tmp, path)
        if os.path.exists(tmp + ".data"):
            os.rename(tmp + ".data", f"{out}/{c}/model.onnx.data")
            _relocate(path, "model.onnx.data")


def _relocate(path: str, location: str) -> None:
    import onnx
    m = onnx.load(path, load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save(m, path)


def convert(src: str, out: str, dtype: str = "float32", name: str | None = None, config: str | None = None,
            ema: bool = False) -> dict:
    """SRC is a diffusers folder, or a single original-layout file whose configs, tokenizer and
    scheduler come from the diffusers folder `config`."""
    t0 = time.time()
    single = single_file.is_single_file(src)
    ck = single_file.inspect(src, config, ema) if single else checkpoint.inspect(src)
    small_files = config if single else src
    os.makedirs(out, exist_ok=True)
    for c in ("text_encoder", "vae_encoder", "unet", "vae_decoder"):
        os.makedirs(f"{out}/{c}", exist_ok=True)
    with torch.no_grad():
        text = checkpoint.instantiate(ck, "text_encoder")
        export_text_encoder(text, f"{out}/text_encoder/model.onnx")
        del text
        ck.states.pop("text_encoder")
        vae = checkpoint.instantiate(ck, "vae")
        export_vae(vae, out)
        preview = preview_fit.fit(vae.encode_mean, vae.decode, ck.configs["vae"].get("scaling_factor", 0.18215), 2 ** (len(ck.configs["vae"]["block_out_channels"]) - 1))
        del vae
        ck.states.pop("vae")
        unet = checkpoint.instantiate(ck, "unet")
        ck.states.pop("unet")
        export_unet(unet, ck.configs["unet"], ck.kind == "multi-reward", out, ck.configs["text_encoder"]["hidden_size"])
        del unet
    quantized = None
    if dtype == "float16":
        to_float16(out)
    elif dtype == "int8":
        import quantize
        quantized = quantize.record(quantize.quantize_graphs(out, out))
    for d in ("tokenizer", "scheduler"):
        # copyfile: the source may be read-only, the folder we write must not be
        shutil.copytree(os.path.join(small_files, d), os.path.join(out, d), dirs_exist_ok=True, copy_function=shutil.copyfile)
    shutil.copyfile(os.path.join(small_files, "model_index.json"), os.path.join(out, "model_index.json"))
    m = manifest(ck, name or os.path.basename(os.path.normpath(out)), dtype) | {"preview": preview}
    if quantized:
        # weight-only int8 (quantize.py): float32 arithmetic; `--compute int8` is qdq.py's, run after this
        m["source"].update({"compute": "float32", "quantized": quantized})
    if single:
        m["source"].update({"layout": "single-file", "file": os.path.basename(src),
                            "config": os.path.basename(os.path.normpath(config)), "ema": ema})
    json.dump(m, open(os.path.join(out, "reward-edit.json"), "w"), indent=2)
    sizes = {c: sum(os.path.getsize(os.path.join(out, c, f)) for f in os.listdir(os.path.join(out, c))) for c in GRAPHS}
    return {"kind": ck.kind, "dtype": dtype, "out": out, "seconds": round(time.time() - t0, 1), "bytes": sizes,
            "total_bytes": sum(sizes.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="SRC may also be one original-layout (CompVis/LDM) file, FILE.safetensors or FILE.ckpt, "
                                        "with --config naming a diffusers folder of the same model (single_file.py).")
    ap.add_argument("src", help="diffusers checkpoint folder, or a single .safetensors/.ckpt file with --config")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["float32", "float16", "int8"], default="float32",
                    help="int8: the UNets' and text encoder's weights in int8 per channel, float32 arithmetic (quantize.py)")
    ap.add_argument("--name")
    ap.add_argument("--check", action="store_true", help="only check names and shapes; write nothing")
    ap.add_argument("--unfused-attention", action="store_true",
                    help="export attention as MatMul/Softmax/MatMul instead of ONNX Runtime's MultiHeadAttention")
    ap.add_argument("--config", help="single file only: diffusers folder with model_index.json, the component "
                                     "config.json files, tokenizer/ and scheduler/ (its weights are not read)")
    ap.add_argument("--ema", action="store_true", help="single file only: take the UNet's EMA weights (model_ema.*)")
    a = ap.parse_args()
    unet_mod.FUSED_ATTENTION = not a.unfused_attention
    # torch.onnx's tracer warns about constant folding and shape inference on every graph: noise here
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    # torch 1.13 calls its own custom-op helper deprecated, for the fused attention's g.op
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*_graph_op.*")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    single = single_file.is_single_file(a.src)
    if os.path.isdir(a.src) and (a.config or a.ema):
        print(f"{a.src}: --config and --ema are for single-file checkpoints; a folder carries its own configs", file=sys.stderr)
        return 2
    try:
        if a.check:
            ck = (single_file.inspect(a.src, a.config, a.ema, load_weights=False) if single
                  else checkpoint.inspect(a.src, load_weights=False))
            print(json.dumps({"kind": ck.kind, "ok": True}))
            return 0
        print(json.dumps(convert(a.src, a.out, a.dtype, a.name, a.config, a.ema)))
        return 0
    except single_file.Refused as e:
        print(f"{e.problems[0]}", file=sys.stderr)
        return 2
    except checkpoint.CheckpointError as e:
        n = len(e.problems)
        print(f"{a.src}: cannot convert ({n} problem{'s' if n != 1 else ''}):", file=sys.stderr)
        for p in e.problems:
            print(f"  - {p}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
