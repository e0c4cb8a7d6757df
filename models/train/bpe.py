"""A CLIP-format byte-level BPE vocabulary learnt from the scene grammar, and its encoder.

The files written (vocab.json, merges.txt, tokenizer_config.json) have exactly the layout of
CLIP's, so the TypeScript tokenizer reads this vocabulary and the real CLIP one the same way.
The encoder here only needs the grammar's ASCII text (training and the parity test).
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77
_WORD = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def words(text: str) -> list[str]:
    return _WORD.findall(" ".join(text.lower().split()))


def learn(corpus: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    b2u = bytes_to_unicode()
    base = list(b2u.values())
    vocab = base + [c + "</w>" for c in base]
    freq = Counter(w for line in corpus for w in words(line))
    segs = {w: tuple(b2u[b] for b in w.encode()[:-1]) + (b2u[w.encode()[-1]] + "</w>",) for w in freq}
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter = Counter()
        for w, s in segs.items():
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += freq[w]
        if not pairs:
            break
        # ties broken by the pair itself so the vocabulary is reproducible
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        vocab.append(best[0] + best[1])
        for w, s in segs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            segs[w] = tuple(out)
    vocab += [BOS, EOS]
    return {t: i for i, t in enumerate(vocab)}, merges


def save(folder: str, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(f"{folder}/vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(f"{folder}/merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    with open(f"{folder}/tokenizer_config.json", "w") as f:
        json.dump({"tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_LENGTH, "do_lower_case": True,
                   "bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}, f, indent=2)


class Tokenizer:
    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.b2u = bytes_to_unicode()

    def _bpe(self, word: str) -> list[str]:
        enc = word.encode()
        s = [self.b2u[b] for b in enc[:-1]] + [self.b2u[enc[-1]] + "</w>"]
        while len(s) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(s, s[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            s = s[:i] + [s[i] + s[i + 1]] + s[i + 2:]
        return s

    def __call__(self, text: str) -> list[int]:
        ids = [self.vocab[t] for w in words(text) for t in self._bpe(w)]
        ids = [self.vocab[BOS]] + ids[: MAX_LENGTH - 2] + [self.vocab[EOS]]
        return ids + [self.vocab[EOS]] * (MAX_LENGTH - len(ids))
