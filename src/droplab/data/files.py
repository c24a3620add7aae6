"""Real datasets read from local files in their standard formats; downloaded only on request.

* ``mnist`` / ``fashion-mnist``: the four IDX files (optionally ``.gz``) in ``ROOT/mnist`` or
  ``ROOT/fashion-mnist`` (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``).
* ``cifar10`` / ``cifar100``: the pickled python batches in ``ROOT/cifar-10-batches-py``
  (``data_batch_1..5``, ``test_batch``) or ``ROOT/cifar-100-python`` (``train``, ``test``).

``ROOT`` is the ``root`` argument, else ``$DROPLAB_DATA``, else ``~/.droplab/data``.

A CIFAR batch is a pickle, and a pickle can run code when loaded: batches are read with
:class:`CifarUnpickler`, which admits only what the batches hold (dicts, lists, bytes, strings,
numbers, numpy arrays) and refuses any other global before it is imported. Downloads go through
:func:`droplab.data.download.download` (HTTPS, published MD5 checked before use).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from droplab.data.dataset import Dataset
from droplab.data.download import download as fetch
from droplab.data.download import extract_tar, verify_file

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
}
# the published MD5 of each downloaded file (the values torchvision checks)
MNIST_MD5 = {
    "mnist": {"train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
              "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
              "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
              "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c"},
    "fashion-mnist": {"train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                      "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
                      "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
                      "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310"},
}
CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels", 10,
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100,
                 "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
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


def mnist_like(name: str, split: str = "train", *, root: str | Path | None = None, download: bool = False,
               flat: bool = True) -> Dataset:
    """MNIST or Fashion-MNIST from IDX files; pixels scaled to [0, 1]; images (N, 1, 28, 28) unless flat."""
    folder = data_root(root) / name
    stems = MNIST_FILES[split]
    paths = [_find(folder, s) for s in stems]
    if any(p is None for p in paths) and download:
        for s, p in zip(stems, paths):
            if p is None:
                fetch(MNIST_URLS[name] + f"{s}.gz", folder / f"{s}.gz", "md5:" + MNIST_MD5[name][s])
        paths = [_find(folder, s) for s in stems]
    if any(p is None for p in paths):
        raise _missing(name, folder, [s for s, p in zip(stems, paths) if p is None])
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"corrupt {name} files in {folder}: {images.shape} images vs {labels.shape} labels")
    if len(labels) and labels.max() > 9:
        raise ValueError(f"corrupt {name} labels file {paths[1]}: labels outside 0..9 (max {labels.max()})")
    x = torch.tensor(images, dtype=torch.float32) / 255.0
    x = x.reshape(len(x), -1) if flat else x.unsqueeze(1)
    return Dataset(name, split, x, torch.tensor(labels, dtype=torch.long), 10, {"source": str(folder)})


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that a CIFAR batch never holds."""


# numpy's array and scalar reconstructors under the module names old and new pickles use
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_SCALAR = np.int64(0).__reduce__()[0]


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """How Python 3 pickles bytes at protocol 2 (``_codecs.encode(text, "latin1")``), and nothing else."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise RefusedGlobal(f"it calls _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_CIFAR_GLOBALS = {
    ("_codecs", "encode"): _latin1_bytes,
    **{(m, "_reconstruct"): _RECONSTRUCT for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _SCALAR for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class CifarUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR batches: the only globals it resolves are numpy's array, dtype and
    scalar reconstructors and latin-1 ``_codecs.encode`` (bytes at protocol 2); anything else
    (``os.system``, ``builtins.eval``, any class) is refused before it is imported, so loading a
    batch cannot run code from the file."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _CIFAR_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(f"it refers to {module}.{name}") from None


def read_cifar_batch(path: Path, label_key: bytes, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR batch file, checked."""
    try:
        batch = CifarUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except RefusedGlobal as exc:
        raise ValueError(f"refusing CIFAR batch {path}: {exc}; a CIFAR batch holds only dicts, lists, bytes, "
                         "strings, numbers and numpy arrays") from None
    except Exception as exc:  # any other failure of a damaged pickle, in one line
        raise ValueError(f"corrupt CIFAR batch {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"corrupt CIFAR batch {path}: holds a {type(batch).__name__}, not a dict")
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    missing = [k.decode() for k in (b"data", label_key) if k not in batch]
    if missing:
        raise ValueError(f"corrupt CIFAR batch {path}: no {', '.join(missing)} entry")
    data, labels = batch[b"data"], batch[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"corrupt CIFAR batch {path}: data must be uint8 of shape (N, 3072), got {what}")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"corrupt CIFAR batch {path}: labels are not integers ({exc})") from None
    if len(labels) != len(data):
        raise ValueError(f"corrupt CIFAR batch {path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"corrupt CIFAR batch {path}: labels outside 0..{n_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def cifar(name: str, split: str = "train", *, root: str | Path | None = None, download: bool = False,
          flat: bool = False) -> Dataset:
    """CIFAR-10/100 from the pickled python batches; images (N, 3, 32, 32) in [0, 1]."""
    sub, train_files, test_files, label_key, n_classes, url, md5 = CIFAR[name]
    base = data_root(root)
    folder = base / sub
    files = train_files if split == "train" else test_files
    missing = [f for f in files if not (folder / f).is_file()]
    if missing and download:
        archive = base / url.rsplit("/", 1)[1]
        if archive.is_file():  # left by an earlier --download: unpacked only if it is the published file
            verify_file(archive, "md5:" + md5)
        else:
            fetch(url, archive, "md5:" + md5)
        extract_tar(archive, base)
        missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise _missing(name, folder, missing)
    xs, ys = zip(*(read_cifar_batch(folder / f, label_key, n_classes) for f in files))
    x = torch.tensor(np.concatenate(xs), dtype=torch.float32) / 255.0
    x = x.reshape(len(x), -1) if flat else x
    return Dataset(name, split, x, torch.tensor(np.concatenate(ys)), n_classes, {"source": str(folder)})
