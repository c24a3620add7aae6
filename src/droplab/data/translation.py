"""Translation data for the transformer of Zhang, Zhou & Xu 2024 (App. A).

Both loaders return a :class:`Dataset` with ``x`` (N, 2, L) token ids — source, and decoder
input (BOS + target) — and ``y`` (N, L) the decoder targets (target + EOS); id 0 is padding,
1 BOS, 2 EOS, 3 unknown. ``n_classes`` is the target vocabulary size and ``meta`` holds both
vocabulary sizes and the special ids.

* ``multi30k``: the English→German Multi30k (task 1) text files ``train.en``, ``train.de``,
  ``test_2016_flickr.en``/``.de`` (or ``val.*`` for the test split) in ``DATA/multi30k``
  (plain or ``.gz``), read locally; ``download=True`` fetches them. Vocabularies come from the
  training split (``min_freq``), tokens are lower-cased words and punctuation.
* ``reversal``: a generated task — random "sentences" over ``vocab`` words, the target is the
  source reversed and passed through a fixed random word map — so the transformer experiment
  runs offline.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import torch
from torch import Tensor

from droplab._checks import check_int
from droplab.data.dataset import Dataset
from droplab.data.download import download as fetch
from droplab.data.files import _missing, data_root

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = 4
MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
# the published MD5 of each downloaded .gz file (the values torchtext checks)
MULTI30K_MD5 = {"train.en": "0065d13af80720a55ca8153d126e6627", "train.de": "81ff90b99829c0cd4b1b587d394afd39",
                "test_2016_flickr.en": "ff2c0fcb4893a13bd73414306bc250ae",
                "test_2016_flickr.de": "efd67d314d98489b716b145475101932"}
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(line: str) -> list[str]:
    return _TOKEN.findall(line.lower())


def encode_pairs(src: list[list[int]], tgt: list[list[int]], max_len: int) -> tuple[Tensor, Tensor]:
    """Pad id sequences into x = (N, 2, max_len) [source+EOS, BOS+target] and y = (N, max_len) [target+EOS]."""
    n = len(src)
    x = torch.full((n, 2, max_len), PAD, dtype=torch.long)
    y = torch.full((n, max_len), PAD, dtype=torch.long)
    for i, (s, t) in enumerate(zip(src, tgt)):
        s = (s + [EOS])[:max_len]
        t_in = ([BOS] + t)[:max_len]
        t_out = (t + [EOS])[:max_len]
        x[i, 0, : len(s)] = torch.tensor(s)
        x[i, 1, : len(t_in)] = torch.tensor(t_in)
        y[i, : len(t_out)] = torch.tensor(t_out)
    return x, y


def _read_lines(folder: Path, stem: str) -> list[str] | None:
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            opener = gzip.open if path.suffix == ".gz" else open
            try:
                with opener(path, "rt", encoding="utf-8") as fh:
                    lines = [line.rstrip("\n") for line in fh]
            except (OSError, UnicodeDecodeError, EOFError) as exc:
                raise ValueError(f"cannot read {path}: {exc}") from None
            if not any(line.strip() for line in lines):
                raise ValueError(f"multi30k file {path} is empty: it must hold one sentence a line")
            return lines
    return None


def _tokenized_pair(folder: Path, split: str, en: list[str], de: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Tokenized English and German sentences of a split, one pair a line (the counts must agree)."""
    if len(en) != len(de):
        raise ValueError(f"corrupt multi30k {split} files in {folder}: {len(en)} English vs {len(de)} German lines")
    return [tokenize(s) for s in en], [tokenize(s) for s in de]


def _vocab(sentences: list[list[str]], min_freq: int) -> dict[str, int]:
    counts = Counter(tok for s in sentences for tok in s)
    words = sorted(w for w, c in counts.items() if c >= min_freq)
    return {w: i + SPECIALS for i, w in enumerate(words)}


def multi30k(split: str = "train", *, root: str | Path | None = None, download: bool = False, max_len: int = 32,
             min_freq: int = 2) -> Dataset:
    """Multi30k English→German from local text files (see the module docstring)."""
    check_int("max_len", max_len, minimum=2)
    check_int("min_freq", min_freq, minimum=1)
    folder = data_root(root) / "multi30k"
    test_stems = ["test_2016_flickr", "val"]
    needed = ["train.en", "train.de"]
    lines = {s: _read_lines(folder, s) for s in needed}
    if any(v is None for v in lines.values()) and download:
        for s in needed + [f"{test_stems[0]}.en", f"{test_stems[0]}.de"]:
            if _read_lines(folder, s) is None:
                fetch(MULTI30K_URL + f"{s}.gz", folder / f"{s}.gz", "md5:" + MULTI30K_MD5[s])
        lines = {s: _read_lines(folder, s) for s in needed}
    if any(v is None for v in lines.values()):
        raise _missing("multi30k", folder, [s for s, v in lines.items() if v is None])
    train_en, train_de = _tokenized_pair(folder, "train", lines["train.en"], lines["train.de"])
    v_en, v_de = _vocab(train_en, min_freq), _vocab(train_de, min_freq)
    if split == "train":
        en, de = train_en, train_de
    else:
        pair = next(((a, b) for stem in test_stems
                     if (a := _read_lines(folder, f"{stem}.en")) is not None
                     and (b := _read_lines(folder, f"{stem}.de")) is not None), None)
        if pair is None:
            raise _missing("multi30k", folder, [f"{test_stems[0]}.en", f"{test_stems[0]}.de"])
        en, de = _tokenized_pair(folder, "test", *pair)
    x, y = encode_pairs([[v_en.get(t, UNK) for t in s] for s in en], [[v_de.get(t, UNK) for t in s] for s in de],
                        max_len)
    meta = {"source": str(folder), "src_vocab": len(v_en) + SPECIALS, "tgt_vocab": len(v_de) + SPECIALS,
            "pad": PAD, "bos": BOS, "eos": EOS}
    return Dataset("multi30k", split, x, y, meta["tgt_vocab"], meta)


def reversal(split: str = "train", *, n_train: int = 512, n_test: int = 256, vocab: int = 20, min_len: int = 3,
             max_len: int = 10, seed: int = 0) -> Dataset:
    """A generated translation task: target = word-mapped reversal of the source (see the module docstring)."""
    check_int("n_train", n_train, minimum=1)
    check_int("n_test", n_test, minimum=1)
    check_int("vocab", vocab, minimum=2)
    check_int("min_len", min_len, minimum=1)
    check_int("max_len", max_len, minimum=min_len + 1)
    g = torch.Generator().manual_seed(seed)
    mapping = torch.randperm(vocab, generator=g) + SPECIALS
    total = n_train + n_test
    lengths = torch.randint(min_len, max_len, (total,), generator=g)
    words = torch.randint(0, vocab, (total, max_len), generator=g)
    src = [(words[i, : lengths[i]] + SPECIALS).tolist() for i in range(total)]
    tgt = [mapping[words[i, : lengths[i]].flip(0)].tolist() for i in range(total)]
    x, y = encode_pairs(src, tgt, max_len + 1)
    sl = slice(0, n_train) if split == "train" else slice(n_train, total)
    size = vocab + SPECIALS
    meta = {"seed": seed, "src_vocab": size, "tgt_vocab": size, "pad": PAD, "bos": BOS, "eos": EOS}
    return Dataset("reversal", split, x[sl], y[sl], size, meta)
