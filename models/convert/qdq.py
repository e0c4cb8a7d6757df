"""int8 arithmetic for an exported ONNX graph (issue 42): static QDQ quantisation from measured ranges.

  qdq.py targets GRAPH                       the Conv and MatMul nodes that could run in int8, as JSON
  qdq.py augment GRAPH OUT_DIR               GRAPH with every target's activations as extra outputs
  qdq.py folder SRC OUT --ranges FILE [...]  a copy of a converted folder whose graphs compute in int8
  qdq.py graph GRAPH OUT --ranges FILE       one graph with every measured layer in int8
  qdq.py kernels OPTIMISED_GRAPH             which kernels ONNX Runtime's optimised graph runs

ONNX Runtime's CPU provider computes in int8 only where its optimiser finds the QDQ pattern around an
operator and fuses it: DequantizeLinear on the activation and on the weight, the Conv, QuantizeLinear on
its output (-> QLinearConv); DequantizeLinear on the activation and the weight of a MatMul with no
QuantizeLinear after it (-> MatMulIntegerToFloat). So every quantised Conv gets a QuantizeLinear/
DequantizeLinear pair on its input and on its output, a DequantizeLinear on its int8 weight and one on its
int32 bias; a quantised MatMul gets the pair on its input and the weight. Activations are uint8 with one
scale and zero point per tensor (from the ranges the TypeScript calibration measured on the folder's own
edits); weights are int8, symmetric, one scale per output channel; a Conv's bias is int32 at the scale
input x weight, as the fused kernel adds it.

`--matmul dynamic` writes com.microsoft DynamicQuantizeMatMul instead (the activation's scale found per
call), `--matmul float` leaves MatMuls alone. Nodes named in `--keep` stay float32, and so does every
node whose tensors have no measured range. Large float32 weights left after that become weight-only int8
(quantize.py), so the memory stays that of the int8-weights folder.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quantize import load, quantize_array, quantize_weights, save  # noqa: E402

GRAPHS = ("text_encoder", "vae_encoder", "unet", "unet_shallow", "vae_decoder")
DEFAULT_GRAPHS = ("unet", "unet_shallow", "vae_decoder")
SCHEME = ("int8 arithmetic: static QDQ, uint8 activations (one scale per tensor, calibrated), "
          "int8 weights (symmetric, one scale per output channel), int32 Conv biases")


def node_id(n: onnx.NodeProto) -> str:
    return n.name or f"{n.op_type}:{n.output[0]}"


def targets(model: onnx.ModelProto) -> list[dict]:
    """The Conv and MatMul nodes with a constant float32 weight: what can run on int8 kernels."""
    inits = {t.name: t for t in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type == "Conv" and len(n.input) >= 2 and n.input[1] in inits and n.input[0] not in inits:
            w = inits[n.input[1]]
            if w.data_type != TensorProto.FLOAT:
                continue
            bias = n.input[2] if len(n.input) > 2 and n.input[2] else None
            if bias is not None and bias not in inits:
                continue
            out.append({"node": node_id(n), "op": "Conv", "input": n.input[0], "output": n.output[0],
                        "weight": n.input[1], "bias": bias, "shape": list(w.dims)})
        elif n.op_type == "MatMul" and n.input[1] in inits and n.input[0] not in inits:
            w = inits[n.input[1]]
            if w.data_type != TensorProto.FLOAT or len(w.dims) != 2:
                continue
            out.append({"node": node_id(n), "op": "MatMul", "input": n.input[0], "output": n.output[0],
                        "weight": n.input[1], "bias": None, "shape": list(w.dims)})
    return out


def range_tensors(ts: list[dict]) -> list[str]:
    """The activations calibration measures: each target's input, and each Conv's output."""
    names: list[str] = []
    for t in ts:
        for name in (t["input"], t["output"] if t["op"] == "Conv" else None):
            if name and name not in names:
                names.append(name)
    return names


def augment(src: str, out_dir: str, tensors: list[str] | None = None) -> dict:
    """Writes OUT_DIR/model.onnx: SRC with the measured activations (or the named TENSORS) as graph
    outputs. The weights are not copied where a hard link to SRC's file can be made."""
    model = onnx.load(src, load_external_data=False)
    ts = targets(model)
    produced = {o for n in model.graph.node for o in n.output}
    names = [t for t in tensors if t in produced] if tensors is not None else range_tensors(ts)
    have = {o.name for o in model.graph.output}
    for name in names:
        if name not in have:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    os.makedirs(out_dir, exist_ok=True)
    data = os.path.join(os.path.dirname(os.path.abspath(src)), "model.onnx_data")
    if os.path.exists(data):
        # ONNX Runtime refuses external data outside the graph's folder, a symbolic link included:
        # a hard link costs nothing where the file system allows one, a copy otherwise
        link = os.path.join(out_dir, "model.onnx_data")
        if not os.path.exists(link):
            try:
                os.link(data, link)
            except OSError:
                shutil.copyfile(data, link)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))
    return {"tensors": names, "targets": len(ts)}


def activation_params(lo: float, hi: float) -> tuple[np.float32, np.uint8]:
    """uint8, asymmetric: the range widened to hold 0 exactly (zero padding must stay exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = max((hi - lo) / 255.0, 1e-8)
    zero = int(np.clip(np.rint(-lo / scale), 0, 255))
    return np.float32(scale), np.uint8(zero)


def apply_qdq(model: onnx.ModelProto, ranges: dict[str, list[float]], keep: set[str], matmul: str) -> dict:
    """Rewrites MODEL in place; returns what it did."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    graph_outputs = {o.name for o in g.output}
    chosen, kept_float = [], []
    for t in targets(model):
        if t["node"] in keep or (t["op"] == "MatMul" and matmul == "float"):
            kept_float.append(t["node"])
            continue
        need = [t["input"]] if not (t["op"] == "MatMul" and matmul == "dynamic") else []
        if t["op"] == "Conv":
            # a graph output cannot carry the QuantizeLinear the fused kernel needs
            if t["output"] in graph_outputs:
                kept_float.append(t["node"])
                continue
            need.append(t["output"])
        if any(n not in ranges for n in need):
            kept_float.append(t["node"])
            continue
        chosen.append(t)

    by_id = {node_id(n): n for n in g.node}
    new_inits: list[onnx.TensorProto] = []
    weight_nodes: list[onnx.NodeProto] = []
    # tensor -> None (every consumer reads the dequantised copy) or the set of nodes that do
    pairs: dict[str, set[str] | None] = {}
    replaced: dict[str, onnx.NodeProto] = {}
    for t in chosen:
        n = by_id[t["node"]]
        w = numpy_helper.to_array(inits[t["weight"]])
        axis = 0 if t["op"] == "Conv" else 1
        q, scale = quantize_array(w, axis)
        base = t["node"].strip("/").replace("/", "_").replace(":", "_")
        wq, ws, wz = f"{base}__w_int8", f"{base}__w_scale", f"{base}__w_zero"
        new_inits += [numpy_helper.from_array(q, wq), numpy_helper.from_array(scale, ws),
                      numpy_helper.from_array(np.zeros(scale.shape, np.int8), wz)]
        if t["op"] == "MatMul" and matmul == "dynamic":
            replaced[t["node"]] = helper.make_node("DynamicQuantizeMatMul", [n.input[0], wq, ws, wz], list(n.output),
                                                   name=n.name, domain="com.microsoft")
            continue
        weight_nodes.append(helper.make_node("DequantizeLinear", [wq, ws, wz], [f"{base}__w"], name=f"{base}__w_dq", axis=axis))
        n.input[1] = f"{base}__w"
        if t["bias"]:
            x_scale, _ = activation_params(*ranges[t["input"]])
            b = numpy_helper.to_array(inits[t["bias"]]).astype(np.float64)
            b_scale = (np.float64(x_scale) * scale.astype(np.float64)).astype(np.float32)
            bq = np.clip(np.rint(b / b_scale), -(2**31), 2**31 - 1).astype(np.int32)
            new_inits += [numpy_helper.from_array(bq, f"{base}__b_int32"), numpy_helper.from_array(b_scale, f"{base}__b_scale"),
                          numpy_helper.from_array(np.zeros(bq.shape, np.int32), f"{base}__b_zero")]
            weight_nodes.append(helper.make_node("DequantizeLinear", [f"{base}__b_int32", f"{base}__b_scale", f"{base}__b_zero"],
                                                 [f"{base}__b"], name=f"{base}__b_dq", axis=0))
            n.input[2] = f"{base}__b"
        inp = t["input"]
        if pairs.get(inp, set()) is not None:
            pairs.setdefault(inp, set()).add(t["node"])
        if t["op"] == "Conv":
            pairs[t["output"]] = None

    # one QuantizeLinear/DequantizeLinear pair per tensor, placed right after what produces it
    qdq_after: dict[str, list[onnx.NodeProto]] = {}
    renamed: dict[str, str] = {}
    for tensor, readers in pairs.items():
        s, z = activation_params(*ranges[tensor])
        key = f"{tensor.strip('/').replace('/', '_').replace(':', '_')}"
        new_inits += [numpy_helper.from_array(np.array(s, np.float32), f"{key}__scale"),
                      numpy_helper.from_array(np.array(z, np.uint8), f"{key}__zero")]
        qdq_after[tensor] = [
            helper.make_node("QuantizeLinear", [tensor, f"{key}__scale", f"{key}__zero"], [f"{key}__q"], name=f"{key}__quant"),
            helper.make_node("DequantizeLinear", [f"{key}__q", f"{key}__scale", f"{key}__zero"], [f"{key}__dq"], name=f"{key}__dequant"),
        ]
        renamed[tensor] = f"{key}__dq"
    for n in g.node:
        for i, name in enumerate(n.input):
            if name in pairs and (pairs[name] is None or node_id(n) in pairs[name]):
                n.input[i] = renamed[name]
    nodes = []
    graph_inputs = {i.name for i in g.input}
    for tensor in pairs:
        if tensor in graph_inputs:
            nodes += qdq_after[tensor]
    nodes += weight_nodes
    for n in g.node:
        nodes.append(replaced.get(node_id(n), n))
        for o in n.output:
            nodes += qdq_after.get(o, [])
    used = {i for n in nodes for i in n.input}
    keep_inits = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep_inits + new_inits)
    del g.node[:]
    g.node.extend(nodes)
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < 13:
            o.version = 13
    if matmul == "dynamic" and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return {"int8_nodes": len(chosen), "conv": sum(t["op"] == "Conv" for t in chosen),
            "matmul": sum(t["op"] == "MatMul" for t in chosen), "kept_float": sorted(kept_float),
            "activation_pairs": len(pairs)}


def quantize_graph(src: str, dst: str, ranges: dict, keep: set[str], matmul: str, weights_rest: bool) -> dict:
    model = load(src)
    figures = apply_qdq(model, ranges, keep, matmul)
    if weights_rest:
        figures["weight_only"] = quantize_weights(model)["weights"]
    save(model, dst)
    return figures


def quantize_folder(src: str, out: str, ranges: dict, graphs: tuple[str, ...], keep: set[str], matmul: str,
                    weights_rest: tuple[str, ...], calibration: dict | None) -> dict:
    t0 = time.time()
    if os.path.abspath(src) == os.path.abspath(out):
        raise SystemExit(f"{out}: write the int8 folder beside its float32 source, not over it")
    def skip(d: str, names: list[str]) -> list[str]:
        top = os.path.abspath(d) == os.path.abspath(src)
        return [n for n in names if (top and n in ("reference", "quantization-report.json", "quantization-report.md"))
                or (os.path.basename(d) in graphs + weights_rest and n.startswith("model.onnx"))]
    shutil.copytree(src, out, dirs_exist_ok=True, copy_function=shutil.copyfile, ignore=skip)
    figures = {}
    for g in graphs + tuple(w for w in weights_rest if w not in graphs):
        path = os.path.join(src, g, "model.onnx")
        if not os.path.exists(path):
            continue
        with tempfile.TemporaryDirectory(dir=os.path.join(out, g)) as tmp:
            if g in graphs:
                figures[g] = quantize_graph(path, os.path.join(tmp, "model.onnx"), ranges.get(g, {}), keep, matmul, g in weights_rest)
            else:
                model = load(path)
                figures[g] = {"weight_only": quantize_weights(model)["weights"]}
                save(model, os.path.join(tmp, "model.onnx"))
            for f in os.listdir(tmp):
                os.replace(os.path.join(tmp, f), os.path.join(out, g, f))
    manifest_path = os.path.join(out, "reward-edit.json")
    m = json.load(open(manifest_path))
    source = m.setdefault("source", {})
    source["dtype"] = "int8"
    source["compute"] = "int8"
    source["quantized"] = {
        "graphs": sorted(figures), "scheme": SCHEME, "tool": "models/convert/qdq.py", "matmul": matmul,
        "int8_graphs": list(graphs), "weight_only_graphs": list(weights_rest),
        "nodes": {g: {k: v for k, v in f.items() if k != "kept_float"} for g, f in figures.items()},
        "kept_float": {g: f.get("kept_float", []) for g, f in figures.items() if f.get("kept_float")},
        **({"calibration": calibration} if calibration else {}),
    }
    m["description"] = m.get("description", "").replace("(float32)", "(int8 arithmetic)")
    json.dump(m, open(manifest_path, "w"), indent=2)
    return {"graphs": figures, "seconds": round(time.time() - t0, 1)}


def kernels(path: str) -> dict:
    """What an optimised graph runs: op counts; Conv/MatMul nodes whose activation still comes from
    a DequantizeLinear (a QDQ pattern ONNX Runtime did not fuse: float32 arithmetic on dequantised
    tensors); and those whose weight alone does (weight-only int8, float32 arithmetic, on purpose)."""
    model = onnx.load(path, load_external_data=False)
    producer = {o: n for n in model.graph.node for o in n.output}
    ops: dict[str, int] = {}
    unfused = weight_only = 0
    for n in model.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
        if n.op_type not in ("Conv", "FusedConv", "MatMul", "FusedMatMul", "Gemm") or len(n.input) < 2:
            continue
        dq = [i in producer and producer[i].op_type == "DequantizeLinear" for i in n.input[:2]]
        if dq[0]:
            unfused += 1
        elif dq[1]:
            weight_only += 1
    return {"ops": dict(sorted(ops.items())), "unfused_dequantized": unfused, "weight_only": weight_only}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("targets")
    t.add_argument("graph")
    a = sub.add_parser("augment")
    a.add_argument("graph")
    a.add_argument("out_dir")
    a.add_argument("--tensors", help="a file with the tensors to expose, one per line (default: what calibration measures)")
    f = sub.add_parser("folder")
    f.add_argument("src")
    f.add_argument("out")
    f.add_argument("--ranges", required=True, help="JSON {graph: {tensor: [min, max]}} from the calibration")
    f.add_argument("--graphs", default=",".join(DEFAULT_GRAPHS))
    f.add_argument("--keep", default="", help="a file with one node name per line, or names separated by commas: they stay float32")
    f.add_argument("--matmul", choices=("static", "dynamic", "float"), default="static")
    f.add_argument("--weights-rest", default="unet,unet_shallow,text_encoder",
                   help="graphs whose remaining large float32 weights become weight-only int8")
    f.add_argument("--calibration", help="JSON describing the calibration, recorded in the manifest")
    gq = sub.add_parser("graph", help="one graph, every measured layer quantised (the sensitivity sweep's subject)")
    gq.add_argument("src")
    gq.add_argument("out")
    gq.add_argument("--ranges", required=True, help="JSON {tensor: [min, max]} of this graph")
    gq.add_argument("--matmul", choices=("static", "dynamic", "float"), default="static")
    k = sub.add_parser("kernels")
    k.add_argument("graph")
    o = ap.parse_args()
    if o.cmd == "kernels":
        print(json.dumps(kernels(o.graph)))
        return 0
    if o.cmd == "graph":
        print(json.dumps(quantize_graph(o.src, o.out, json.load(open(o.ranges)), set(), o.matmul, False)))
        return 0
    if o.cmd == "targets":
        model = onnx.load(o.graph, load_external_data=False)
        ts = targets(model)
        print(json.dumps({"targets": ts, "tensors": range_tensors(ts)}))
        return 0
    if o.cmd == "augment":
        names = open(o.tensors).read().split() if o.tensors else None
        print(json.dumps(augment(o.graph, o.out_dir, names)))
        return 0
    graphs = tuple(g for g in o.graphs.split(",") if g)
    rest = tuple(g for g in o.weights_rest.split(",") if g)
    for g in graphs + rest:
        if g not in GRAPHS:
            print(f"--graphs: unknown graph {g} ({', '.join(GRAPHS)})", file=sys.stderr)
            return 2
    keep: set[str] = set()
    if o.keep:
        keep = set(open(o.keep).read().split()) if os.path.isfile(o.keep) else {k for k in o.keep.split(",") if k}
    ranges = json.load(open(o.ranges))
    calibration = json.loads(o.calibration) if o.calibration else None
    print(json.dumps(quantize_folder(o.src, o.out, ranges, graphs, keep, o.matmul, rest, calibration)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
