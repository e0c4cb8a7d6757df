"""The safetensors file format, read and written with nothing but the standard library and torch:
8 bytes little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the
raw little-endian tensor bytes. (The safetensors package is not installable here.)
"""
from __future__ import annotations

import json
import struct

import torch

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}


class FormatError(ValueError):
    pass


def read_header(path: str) -> tuple[dict, int]:
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise FormatError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", raw)
        if n > 100_000_000:
            raise FormatError(f"{path}: not a safetensors file (header length {n})")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise FormatError(f"{path}: not a safetensors file ({e})") from None
    header.pop("__metadata__", None)
    return header, 8 + n


def shapes(path: str) -> dict[str, list[int]]:
    """Names and shapes only: cheap for a 3.4 GB file."""
    return {k: v["shape"] for k, v in read_header(path)[0].items()}


def load(path: str) -> dict[str, torch.Tensor]:
    header, base = read_header(path)
    out = {}
    # tensor by tensor, so a 3.4 GB checkpoint costs its own size in memory, not twice that
    with open(path, "rb") as f:
        for name, h in header.items():
            if h["dtype"] not in DTYPES:
                raise FormatError(f"{path}: tensor {name} has unsupported dtype {h['dtype']}")
            a, b = h["data_offsets"]
            f.seek(base + a)
            buf = bytearray(f.read(b - a))
            if len(buf) != b - a:
                raise FormatError(f"{path}: truncated at tensor {name}")
            t = torch.frombuffer(buf, dtype=DTYPES[h["dtype"]]) if b > a else torch.empty(0, dtype=DTYPES[h["dtype"]])
            out[name] = t.reshape(h["shape"])
    return out


def save(tensors: dict[str, torch.Tensor], path: str, metadata: dict | None = None) -> None:
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    parts = []
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        parts.append(raw)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for p in parts:
            f.write(p)
