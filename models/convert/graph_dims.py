"""Declared dims of an ONNX graph's inputs and outputs, set after export.

torch.onnx names every output dim it cannot prove constant ("Addlast_hidden_state_dim_2"), even
the widths fixed by the weights; the editor checks that components fit from these declarations
(editor/model/folder.ts), so the converter writes the widths it knows (`set_dims`). The command
line does the reverse for the tests, to make a folder like the ones older converters wrote:

  python3 graph_dims.py MODEL.onnx NAME:AXIS=VALUE ...   (VALUE: a size, or a name for a symbolic dim)

It rewrites MODEL.onnx in place; weights stored beside it (model.onnx_data) are left as they are.
"""
from __future__ import annotations

import sys


def set_dims(model, dims: dict[str, dict[int, int | str]]) -> None:
    """Sets the given axes of the named graph inputs, outputs and value_info entries: an int makes
    the dim fixed, a str symbolic. Raises KeyError for a name the graph does not declare."""
    g = model.graph
    found = set()
    for v in list(g.input) + list(g.output) + list(g.value_info):
        if v.name not in dims:
            continue
        found.add(v.name)
        shape = v.type.tensor_type.shape.dim
        for axis, value in dims[v.name].items():
            d = shape[axis]
            if isinstance(value, str):
                d.dim_param = value
            else:
                d.dim_value = int(value)
    missing = set(dims) - found
    if missing:
        raise KeyError(f"not declared by the graph: {', '.join(sorted(missing))}")


def fixed_dims(shapes: dict[str, tuple[int, ...]], dynamic_axes: dict[str, dict[int, str]]) -> dict[str, dict[int, int]]:
    """Every axis of the traced outputs' shapes that the export did not declare dynamic."""
    return {name: {i: n for i, n in enumerate(shape) if i not in dynamic_axes.get(name, {})} for name, shape in shapes.items()}


def _parse(spec: str) -> tuple[str, int, int | str]:
    name, _, rest = spec.rpartition(":")
    axis, _, value = rest.partition("=")
    if not name or not axis or not value:
        raise ValueError(f"expected NAME:AXIS=VALUE, got {spec!r}")
    return name, int(axis), int(value) if value.lstrip("-").isdigit() else value


def main(argv: list[str]) -> int:
    import onnx
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, specs = argv[0], argv[1:]
    dims: dict[str, dict[int, int | str]] = {}
    for s in specs:
        name, axis, value = _parse(s)
        dims.setdefault(name, {})[axis] = value
    model = onnx.load(path, load_external_data=False)
    set_dims(model, dims)
    onnx.save(model, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
