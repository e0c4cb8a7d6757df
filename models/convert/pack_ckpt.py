"""Test and debugging utility: packs the tensors of a .safetensors file into a .ckpt, a torch pickle
nested as PyTorch Lightning writes the original Stable Diffusion checkpoints ({"state_dict": ...,
"global_step": ..., "epoch": ...}), to exercise single_file.py's weights_only reading.

  python3 pack_ckpt.py IN.safetensors OUT.ckpt [--namespace-hparams]

--namespace-hparams also stores hyper_parameters as an argparse.Namespace, as older Lightning
versions did: a global that weights_only unpickling refuses, which is the case the converter must
turn down in one line.
"""
from __future__ import annotations

import argparse

import torch

import safetensors_io


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--namespace-hparams", action="store_true")
    a = ap.parse_args()
    ck = {"state_dict": safetensors_io.load(a.src), "global_step": 22000, "epoch": 0}
    if a.namespace_hparams:
        ck["hyper_parameters"] = argparse.Namespace(base_learning_rate=1e-4)
    torch.save(ck, a.out)


if __name__ == "__main__":
    main()
