"""Names and shapes of the modules this converter builds from a config, without allocating the
weights (meta device): what tests compare with the real code's lists.

  python3 keys.py unet CONFIG [--in-channels 8] [--rewards] | vae CONFIG | text_encoder CONFIG
"""
from __future__ import annotations

import argparse
import json

import checkpoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("component", choices=["unet", "vae", "text_encoder"])
    ap.add_argument("config")
    ap.add_argument("--in-channels", type=int)
    ap.add_argument("--rewards", action="store_true")
    a = ap.parse_args()
    cfg = json.load(open(a.config))
    if a.in_channels:
        cfg["in_channels"] = a.in_channels
    with checkpoint.meta_parameters():
        module = checkpoint.build(a.component, cfg, rewards=a.rewards)
    print(json.dumps(checkpoint.expected_shapes(module)))


if __name__ == "__main__":
    main()
