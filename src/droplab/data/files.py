"""Real datasets read from local files in their standard formats; downloaded only on request.

* ``mnist`` / ``fashion-mnist``: the four IDX files (optionally ``.gz``) in ``ROOT/mnist`` or
  ``ROOT/fashion-mnist`` (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``).
* ``cifar10`` / ``cifar100``: the pickled python batches in ``ROOT/cifar-10-batches-py``
  (``data_batch_1..5``, ``test_batch``) or ``ROOT/cifar-100-python`` (``train``, ``test``).

``ROOT`` is the ``root`` argument, else ``$DROPLAB_DATA``, else ``~/.droplab/data``.
"""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from droplab.data.dataset import Dataset

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10,
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100,
                 "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}


def data_root(root: str | Path | None = None) -> Path:
    """The data folder: ``root``, else ``$DROPLAB_DATA``, else ``~/.droplab/data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("DROPLAB_DATA", Path.home() / ".droplab" / "data"))


def _missing(name: str, folder: Path, files: list[str]) -> ValueError:
    return ValueError(f"dataset {name!r}: missing {', '.join(files)} in {folder}; put the files there "
                      "(--data-dir / DROPLAB_DATA) or pass --download to fetch them")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or gzip): unsigned-byte data with the dims of its header."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"corrupt IDX file {path}: bad magic number (expected unsigned-byte IDX)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise ValueError(f"corrupt IDX file {path}: header says {dims} but holds {len(raw) - offset} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for cand in (folder / stem, folder / f"{stem}.gz"):
        if cand.is_file():
            return cand
    return None


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    urllib.request.urlretrieve(url, tmp)  # noqa: S310 — only on the user's explicit --download
    os.replace(tmp, dest)


def mnist_like(name: str, split: str = "train", *, root: str | Path | None = None, download: bool = False,
               flat: bool = True) -> Dataset:
    """MNIST or Fashion-MNIST from IDX files; pixels scaled to [0, 1]; images (N, 1, 28, 28) unless flat."""
    folder = data_root(root) / name
    stems = MNIST_FILES[split]
    paths = [_find(folder, s) for s in stems]
    if any(p is None for p in paths) and download:
        for s, p in zip(stems, paths):
            if p is None:
                _download(MNIST_URLS[name] + f"{s}.gz", folder / f"{s}.gz")
        paths = [_find(folder, s) for s in stems]
    if any(p is None for p in paths):
        raise _missing(name, folder, [s for s, p in zip(stems, paths) if p is None])
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"corrupt {name} files in {folder}: {images.shape} images vs {labels.shape} labels")
    x = torch.tensor(images, dtype=torch.float32) / 255.0
    x = x.reshape(len(x), -1) if flat else x.unsqueeze(1)
    return Dataset(name, split, x, torch.tensor(labels, dtype=torch.long), 10, {"source": str(folder)})


def cifar(name: str, split: str = "train", *, root: str | Path | None = None, download: bool = False,
          flat: bool = False) -> Dataset:
    """CIFAR-10/100 from the pickled python batches; images (N, 3, 32, 32) in [0, 1]."""
    sub, train_files, test_files, label_key, n_classes, url = CIFAR[name]
    base = data_root(root)
    folder = base / sub
    files = train_files if split == "train" else test_files
    missing = [f for f in files if not (folder / f).is_file()]
    if missing and download:
        archive = base / url.rsplit("/", 1)[1]
        _download(url, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(base, filter="data")
        missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise _missing(name, folder, missing)
    xs, ys = [], []
    for f in files:
        try:
            with open(folder / f, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[label_key], dtype=np.int64))
        except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as exc:
            raise ValueError(f"corrupt CIFAR batch {folder / f}: {type(exc).__name__}: {exc}") from None
    x = torch.tensor(np.concatenate(xs), dtype=torch.float32) / 255.0
    x = x.reshape(len(x), -1) if flat else x
    return Dataset(name, split, x, torch.tensor(np.concatenate(ys)), n_classes, {"source": str(folder)})
