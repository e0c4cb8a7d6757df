"""A float16 variant of an exported ONNX model that keeps float32 inputs and outputs, so it drops
into a model folder unchanged (issue 7: "a float16 variant where it is faster").

  fp16.py --in unet/model.onnx --out unet-fp16/model.onnx [--keep-fp32 Softmax,Resize]

Weights and activations become float16, with Casts at the graph's edges. Kept in float32:
  - the timestep's path up to the first MatMul/Gemm (sinusoidal embeddings of t ~ 1000 lose
    whole radians in float16, as diffusers also notes when it computes them in float32);
  - the scales/roi inputs of Resize, which must be float32;
  - every node whose op type is named by --keep-fp32 (ops without a float16 CPU kernel: the
    benchmark adds those ONNX Runtime names when a session refuses the model).
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import load_external_data_for_model

FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
FP32_INPUT_SLOTS = {"Resize": {1, 2}, "Upsample": {1}}
LINEAR_OPS = {"MatMul", "Gemm"}


def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    g = model.graph
    types = {}
    for v in list(g.input) + list(g.output) + list(g.value_info):
        types[v.name] = v.type.tensor_type.elem_type
    for t in g.initializer:
        types[t.name] = t.data_type
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    types[n.output[0]] = a.t.data_type
    return types


def timestep_path(model: onnx.ModelProto, types: dict[str, int]) -> set[str]:
    """Nodes fed (transitively) by the timestep input, stopping at the first linear layer."""
    derived = {i.name for i in model.graph.input if i.name == "timestep"}
    nodes: set[str] = set()
    for n in model.graph.node:  # ONNX graphs are topologically sorted
        if n.op_type in LINEAR_OPS or not any(i in derived for i in n.input):
            continue
        nodes.add(n.name)
        derived.update(n.output)
    return nodes


def convert(src: str, dst: str, keep_ops: set[str]) -> dict:
    # types are inferred before the weights are read: a full-scale UNet is over protobuf's 2 GB
    model = onnx.shape_inference.infer_shapes(onnx.load(src, load_external_data=False))
    load_external_data_for_model(model, os.path.dirname(os.path.abspath(src)))
    g = model.graph
    types = tensor_types(model)
    for i, n in enumerate(g.node):
        if not n.name:
            n.name = f"node_{i}"
    fp32_nodes = timestep_path(model, types) | {n.name for n in g.node if n.op_type in keep_ops}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for n in g.node:
        for k, i in enumerate(n.input):
            consumers.setdefault(i, []).append((n, k))

    def wants_half(n: onnx.NodeProto, slot: int) -> bool:
        return n.name not in fp32_nodes and slot not in FP32_INPUT_SLOTS.get(n.op_type, set())

    # 1. constants: float16 when every consumer wants float16, else kept (a Cast follows below)
    half_consts: set[str] = set()
    for t in g.initializer:
        users = consumers.get(t.name, [])
        if t.data_type == FLOAT and users and all(wants_half(n, k) for n, k in users):
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
            half_consts.add(t.name)
    for n in g.node:
        if n.op_type != "Constant":
            continue
        users = consumers.get(n.output[0], [])
        for a in n.attribute:
            if a.name == "value" and a.t.data_type == FLOAT and users and all(wants_half(u, k) for u, k in users):
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
                half_consts.add(n.output[0])
                fp32_nodes.discard(n.name)

    # 2. each node's float outputs take the node's precision; Casts and ConstantOfShape follow it
    produced_half: set[str] = set(half_consts)
    for n in g.node:
        if n.op_type == "Constant":
            continue
        half = n.name not in fp32_nodes
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to" and a.i == FLOAT and half:
                a.i = HALF
            if n.op_type == "ConstantOfShape" and a.name == "value" and a.t.data_type == FLOAT and half:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16)))
        for o in n.output:
            if types.get(o) == FLOAT and half:
                produced_half.add(o)
            elif n.op_type == "Cast" and half and any(a.name == "to" and a.i == HALF for a in n.attribute):
                produced_half.add(o)

    # 3. Casts where a float tensor meets a node of the other precision; graph inputs start float32
    new_nodes: list[onnx.NodeProto] = []
    casts: dict[tuple[str, int], str] = {}

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            casts[key] = f"{name}__as_{'f16' if to == HALF else 'f32'}"
            new_nodes.append(helper.make_node("Cast", [name], [casts[key]], to=to, name=f"cast_{len(casts)}"))
        return casts[key]

    float_tensors = {k for k, v in types.items() if v == FLOAT} | produced_half
    out_nodes = []
    for n in g.node:
        for k, i in enumerate(n.input):
            if i not in float_tensors or (n.op_type == "Cast"):
                continue
            is_half = i in produced_half
            want = wants_half(n, k)
            if is_half != want:
                n.input[k] = cast(i, HALF if want else FLOAT)
        out_nodes.extend(new_nodes)
        new_nodes.clear()
        out_nodes.append(n)
    # graph outputs keep their names and float32
    for o in g.output:
        if o.name in produced_half:
            inner = f"{o.name}__f16"
            for n in out_nodes:
                for k, x in enumerate(n.output):
                    if x == o.name:
                        n.output[k] = inner
                for k, x in enumerate(n.input):
                    if x == o.name:
                        n.input[k] = inner
            out_nodes.append(helper.make_node("Cast", [inner], [o.name], to=FLOAT, name=f"cast_out_{o.name}"))
    del g.node[:]
    g.node.extend(out_nodes)
    del g.value_info[:]
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    large = sum(t.ByteSize() for t in g.initializer) > 1.8e9
    onnx.save(model, dst, save_as_external_data=large, location=os.path.basename(dst) + ".data" if large else None)
    return {"fp32_nodes": len(fp32_nodes), "nodes": len(out_nodes), "casts": len(casts)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep-fp32", default="", help="comma-separated op types to keep in float32")
    a = ap.parse_args()
    info = convert(a.src, a.out, {o for o in a.keep_fp32.split(",") if o})
    print(info)


if __name__ == "__main__":
    main()
