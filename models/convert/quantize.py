"""Weight-only int8 for an exported ONNX graph (issue 33: a full-size editor in a 4 GB pod).

  quantize.py FOLDER OUT [--graphs unet,unet_shallow,text_encoder]   a converted model folder
  quantize.py --in unet/model.onnx --out unet-int8/model.onnx          one graph

Every large float32 weight of a Conv, MatMul, Gemm or Gather becomes int8 with one float32 scale
per output channel (symmetric: scale = max|w| / 127, zero point 0) and a DequantizeLinear node that
yields the float32 weight again. Activations stay float32, so inputs, outputs and arithmetic are
unchanged; only the stored weights round.

Why DequantizeLinear and not a Cast and a Mul: ONNX Runtime's constant folding would fold a Cast
and a Mul of initializers back into a float32 weight when the session is optimised (which is what
the float16 folder measured: 4.73 GB resident), whereas it leaves DequantizeLinear of an initializer
in place on purpose (it is how QDQ models keep their weights quantised). The float32 weight then
exists only while its node runs, in the session's arena.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_model

# the input slot that carries the weight, per op type
WEIGHT_SLOT = {"Conv": 1, "ConvTranspose": 1, "MatMul": 1, "Gemm": 1, "Gather": 0}
# graphs past protobuf's 2 GB keep their weights in one file beside the graph (as convert.py writes)
EXTERNAL_DATA_BYTES = int(os.environ.get("REWARD_EDIT_EXTERNAL_DATA_BYTES", 1_800_000_000))


def channel_axis(node: onnx.NodeProto, shape: tuple[int, ...]) -> int | None:
    """The axis of the weight's output channels, along which each scale applies."""
    op = node.op_type
    if op == "Conv":
        return 0  # [out, in/groups, kh, kw]
    if op == "ConvTranspose":
        return 1  # [in, out/groups, kh, kw]
    if op == "Gather":
        return 0  # one scale per row (token) of an embedding table
    if op == "MatMul":
        return len(shape) - 1 if len(shape) == 2 else None  # x @ W with W [in, out]
    if op == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return None


def quantize_array(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8: the largest magnitude of each channel maps to 127."""
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    peak = np.abs(w).max(axis=reduce).astype(np.float64)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def load(src: str) -> onnx.ModelProto:
    model = onnx.load(src, load_external_data=False)
    load_external_data_for_model(model, os.path.dirname(os.path.abspath(src)))
    return model


def save(model: onnx.ModelProto, dst: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    large = sum(t.ByteSize() for t in model.graph.initializer) > EXTERNAL_DATA_BYTES
    onnx.save(model, dst, save_as_external_data=large, all_tensors_to_one_file=True,
              location="model.onnx_data" if large else None, size_threshold=1024)


def quantize(src: str, dst: str, min_elements: int = 4096, conv_min_channels: int = 0) -> dict:
    model = load(src)
    stats = quantize_weights(model, min_elements, conv_min_channels)
    save(model, dst)
    return stats


def quantize_weights(model: onnx.ModelProto, min_elements: int = 4096, conv_min_channels: int = 0) -> dict:
    """Rewrites MODEL in place: its large float32 weights become int8 read through DequantizeLinear."""
    g = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    dq_nodes: list[onnx.NodeProto] = []
    kept, stats = [], {"weights": 0, "float32_bytes": 0, "int8_bytes": 0, "max_rel_error": 0.0}
    for t in list(g.initializer):
        users = consumers.get(t.name, [])
        shape = tuple(t.dims)
        if t.data_type != TensorProto.FLOAT or int(np.prod(shape, dtype=np.int64)) < min_elements or not users:
            kept.append(t)
            continue
        # every consumer must read it as its weight, along the same channel axis
        axes = {channel_axis(n, shape) if list(n.input).index(t.name) == WEIGHT_SLOT.get(n.op_type, -1) else None
                for n in users}
        if len(axes) != 1 or None in axes:
            kept.append(t)
            continue
        axis = axes.pop()
        # a DequantizeLinear-fed Conv loses ONNX Runtime's NCHWc kernels (which reorder constant
        # weights once): the narrow, high-resolution convolutions hold little memory and much of
        # the time, so they may stay float32
        if any(n.op_type == "Conv" for n in users) and shape[0] < conv_min_channels:
            kept.append(t)
            continue
        w = numpy_helper.to_array(t)
        q, scale = quantize_array(w, axis)
        back = q.astype(np.float32) * scale.reshape([-1 if i == axis else 1 for i in range(w.ndim)])
        denom = float(np.abs(w).max()) or 1.0
        stats["max_rel_error"] = max(stats["max_rel_error"], float(np.abs(back - w).max()) / denom)
        kept += [numpy_helper.from_array(q, f"{t.name}__int8"),
                 numpy_helper.from_array(scale, f"{t.name}__scale"),
                 numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{t.name}__zero")]
        # the DequantizeLinear takes the weight's own name, so every consumer reads it unchanged
        dq_nodes.append(helper.make_node("DequantizeLinear", [f"{t.name}__int8", f"{t.name}__scale", f"{t.name}__zero"],
                                         [t.name], name=f"dq_{len(dq_nodes)}", axis=axis))
        stats["weights"] += 1
        stats["float32_bytes"] += w.nbytes
        stats["int8_bytes"] += q.nbytes + scale.nbytes + scale.size  # int8 values, float32 scales, int8 zero points
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = list(g.node)
    del g.node[:]
    # first, so each weight exists before any node reads it (graphs are topologically sorted)
    g.node.extend(dq_nodes + nodes)
    # per-axis DequantizeLinear is opset 13
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < 13:
            o.version = 13
    stats["max_rel_error"] = round(stats["max_rel_error"], 6)
    return stats


# The VAE stays float32 by default: its rounding lands in the pixels directly, and at 0.33 GB it is
# not what keeps a full-size editor out of a 4 GB pod (the UNet's 3.46 GB is).
DEFAULT_GRAPHS = ("unet", "unet_shallow", "text_encoder")
SCHEME = "int8 weights, symmetric, one scale per output channel (DequantizeLinear); float32 activations"


def quantize_graphs(src: str, out: str, graphs: tuple[str, ...] = DEFAULT_GRAPHS, conv_min_channels: int = 0) -> dict:
    """Quantises SRC/<graph>/model.onnx into OUT/<graph>/ for each named graph SRC has."""
    figures = {}
    for g in graphs:
        path = os.path.join(src, g, "model.onnx")
        if not os.path.exists(path):
            continue
        os.makedirs(os.path.join(out, g), exist_ok=True)
        # written aside and moved in whole, so a folder never pairs a new graph with old weights
        with tempfile.TemporaryDirectory(dir=os.path.join(out, g)) as tmp:
            figures[g] = quantize(path, os.path.join(tmp, "model.onnx"), conv_min_channels=conv_min_channels)
            for f in ("model.onnx", "model.onnx_data"):
                if os.path.exists(os.path.join(out, g, f)):
                    os.remove(os.path.join(out, g, f))
            for f in os.listdir(tmp):
                os.rename(os.path.join(tmp, f), os.path.join(out, g, f))
    return figures


def record(figures: dict) -> dict:
    """The manifest's source.quantized."""
    return {"graphs": sorted(figures), "scheme": SCHEME, "tool": "models/convert/quantize.py",
            "bytes": {g: f["int8_bytes"] for g, f in figures.items()}}


def quantize_folder(src: str, out: str, graphs: tuple[str, ...] = DEFAULT_GRAPHS, conv_min_channels: int = 0) -> dict:
    """Writes OUT as a copy of the model folder SRC with the named graphs' weights in int8 (OUT may
    be SRC itself); the manifest records it."""
    t0 = time.time()
    same = os.path.abspath(src) == os.path.abspath(out)
    if not same:
        # the small files and the graphs left float32, as they are; not reference/ (the bundled
        # editor's PyTorch weights, which the int8 graphs no longer equal)
        def skip(d: str, names: list[str]) -> list[str]:
            top = os.path.abspath(d) == os.path.abspath(src)
            return [n for n in names if (top and n == "reference")
                    or (os.path.basename(d) in graphs and n.startswith("model.onnx"))]
        shutil.copytree(src, out, dirs_exist_ok=True, copy_function=shutil.copyfile, ignore=skip)
    figures = quantize_graphs(src, out, graphs, conv_min_channels)
    manifest_path = os.path.join(out, "reward-edit.json")
    m = json.load(open(manifest_path))
    source = m.setdefault("source", {})
    source["dtype"] = "int8"
    # int8 weights read through DequantizeLinear: the arithmetic stays float32 (qdq.py writes "int8")
    source["compute"] = "float32"
    source["quantized"] = record(figures)
    m["description"] = m.get("description", "").replace("(float32)", "(int8)")
    json.dump(m, open(manifest_path, "w"), indent=2)
    return {"graphs": figures, "seconds": round(time.time() - t0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", help="a converted model folder (reward-edit.json, unet/, ...)")
    ap.add_argument("out", nargs="?", help="the folder to write (may be FOLDER itself)")
    ap.add_argument("--graphs", default=",".join(DEFAULT_GRAPHS), help="which graphs of the folder to quantise")
    ap.add_argument("--in", dest="src", help="one graph instead of a folder")
    ap.add_argument("--out", dest="graph_out")
    ap.add_argument("--min-elements", type=int, default=4096, help="smaller weights (norms, biases) stay float32")
    ap.add_argument("--conv-min-channels", type=int, default=0,
                    help="convolutions with fewer output channels stay float32 (faster kernels, more memory)")
    a = ap.parse_args()
    if a.src:
        print(json.dumps(quantize(a.src, a.graph_out, a.min_elements)))
        return 0
    if not a.folder or not a.out:
        ap.error("FOLDER and OUT, or --in and --out")
    if not os.path.exists(os.path.join(a.folder, "reward-edit.json")):
        print(f"{a.folder}: not a converted model folder (no reward-edit.json)", file=sys.stderr)
        return 2
    dtype = json.load(open(os.path.join(a.folder, "reward-edit.json"))).get("source", {}).get("dtype", "float32")
    if dtype != "float32":
        print(f"{a.folder}: its weights are {dtype}; quantise a float32 folder", file=sys.stderr)
        return 2
    graphs = tuple(g for g in a.graphs.split(",") if g)
    unknown = [g for g in graphs if g not in ("text_encoder", "vae_encoder", "unet", "unet_shallow", "vae_decoder")]
    if unknown:
        print(f"--graphs: unknown graph {unknown[0]} (text_encoder, vae_encoder, unet, unet_shallow, vae_decoder)", file=sys.stderr)
        return 2
    print(json.dumps(quantize_folder(a.folder, a.out, graphs, a.conv_min_channels)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
