"""Bad input to every loader: one line naming droplab's own argument or the file, never a silent wrong answer."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch

from droplab import data
from droplab.data.dataset import Dataset


def cifar_batch(root, n_images: int, labels: list[int], width: int = 3072, name: str = "test_batch") -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batch = {b"data": np.zeros((n_images, width), np.uint8), b"labels": labels}
    (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


def raw_batch(root, raw: bytes) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_batch").write_bytes(raw)


def idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def mnist_files(root, n_images: int, labels: list[int]) -> None:
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    idx(folder / "t10k-images-idx3-ubyte", np.zeros((n_images, 28, 28)))
    idx(folder / "t10k-labels-idx1-ubyte", np.asarray(labels))


def multi30k_files(root, overrides: dict[str, str]) -> None:
    folder = root / "multi30k"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train.en": "a man .\na dog .\n", "train.de": "ein mann .\nein hund .\n",
             "test_2016_flickr.en": "a man .\n", "test_2016_flickr.de": "ein mann .\n", **overrides}
    for name, text in files.items():
        (folder / name).write_text(text)


def no_files(root) -> None:
    pass


# (id, files written under the data root, load arguments, the one line's pattern)
CASES = [
    # the registry
    ("unknown-name", no_files, {"name": "imagenet"}, "dataset name must be one of"),
    ("unknown-split", no_files, {"name": "digits", "split": "val"}, "split must be one of"),
    ("n-zero", no_files, {"name": "digits", "n": 0}, "n must be a positive integer"),
    ("n-bool", no_files, {"name": "digits", "n": True}, "n must be a positive integer"),
    ("n-float", no_files, {"name": "digits", "n": 2.5}, "n must be a positive integer"),
    ("unknown-option", no_files, {"name": "digits", "download": True},
     "dataset 'digits' takes no option 'download'; its options: flat, test_fraction, seed"),
    # generated and bundled
    ("digits-test-fraction-above-1", no_files, {"name": "digits", "test_fraction": 1.5},
     r"test_fraction must be in \(0, 1\), got 1.5"),
    ("digits-test-fraction-zero", no_files, {"name": "digits", "test_fraction": 0.0}, "test_fraction must be in"),
    ("digits-test-fraction-too-small", no_files, {"name": "digits", "test_fraction": 0.001},
     "test_fraction 0.001 leaves fewer than 10 examples"),
    ("digits-seed", no_files, {"name": "digits", "seed": -1}, "seed must be an integer >= 0"),
    ("teacher-task", no_files, {"name": "teacher", "task": "ranking"}, "task must be one of"),
    ("teacher-no-classes", no_files, {"name": "teacher", "n_classes": 0, "task": "classification"},
     "n_classes must be an integer >= 2, got 0"),
    ("teacher-n-classes-any-task", no_files, {"name": "teacher", "n_classes": 0}, "n_classes must be an integer"),
    ("teacher-n-test", no_files, {"name": "teacher", "n_test": 0}, "n_test must be an integer >= 1"),
    ("teacher-noise", no_files, {"name": "teacher", "noise": -1.0}, "noise must be finite and >= 0"),
    ("mnist1d-samples", no_files, {"name": "mnist1d", "num_samples": 5}, "num_samples must be an integer >= 10"),
    ("mnist1d-seed", no_files, {"name": "mnist1d", "seed": "a"}, "seed must be an integer"),
    ("reversal-n-test", no_files, {"name": "reversal", "n_test": 0}, "n_test must be an integer >= 1"),
    ("reversal-vocab", no_files, {"name": "reversal", "vocab": 1}, "vocab must be an integer >= 2"),
    ("cluttered-canvas", no_files, {"name": "cluttered", "source": "digits", "canvas": 10, "digit_size": 16},
     "canvas must be at least the digit size 16"),
    ("cluttered-source", no_files, {"name": "cluttered", "source": "svhn"}, "source must be one of"),
    ("cluttered-n-images", no_files, {"name": "cluttered", "source": "digits", "n_images": 0},
     "n_images must be an integer >= 1"),
    # files: counts of data and labels must agree, values must lie in the format's range
    ("cifar-10-images-9-labels", lambda r: cifar_batch(r, 10, [1] * 9), {"name": "cifar10", "split": "test"},
     r"corrupt CIFAR batch .*test_batch: 10 images but 9 labels"),
    ("cifar-label-range", lambda r: cifar_batch(r, 2, [0, 10]), {"name": "cifar10", "split": "test"},
     r"test_batch: labels outside 0..9"),
    ("cifar-row-width", lambda r: cifar_batch(r, 2, [0, 1], width=100), {"name": "cifar10", "split": "test"},
     r"data must be uint8 of shape \(N, 3072\)"),
    ("cifar-not-a-dict", lambda r: raw_batch(r, pickle.dumps([1, 2])), {"name": "cifar10", "split": "test"},
     "holds a list, not a dict"),
    ("cifar-no-labels", lambda r: raw_batch(r, pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)})),
     {"name": "cifar10", "split": "test"}, "no labels entry"),
    ("cifar-not-a-pickle", lambda r: raw_batch(r, b"not a pickle"),
     {"name": "cifar10", "split": "test"}, "corrupt CIFAR batch"),
    ("mnist-5-images-4-labels", lambda r: mnist_files(r, 5, [1] * 4), {"name": "mnist", "split": "test"},
     r"corrupt mnist files .*\(5, 28, 28\) images vs \(4,\) labels"),
    ("mnist-label-range", lambda r: mnist_files(r, 2, [1, 12]), {"name": "mnist", "split": "test"},
     "labels outside 0..9"),
    ("multi30k-empty-train", lambda r: multi30k_files(r, {"train.en": ""}), {"name": "multi30k"},
     r"multi30k file .*train.en is empty"),
    ("multi30k-blank-test", lambda r: multi30k_files(r, {"test_2016_flickr.de": "\n\n"}),
     {"name": "multi30k", "split": "test"}, r"test_2016_flickr.de is empty"),
    ("multi30k-test-counts", lambda r: multi30k_files(r, {"test_2016_flickr.de": "ein .\nzwei .\n"}),
     {"name": "multi30k", "split": "test"}, "corrupt multi30k test files .*1 English vs 2 German lines"),
    ("multi30k-train-counts", lambda r: multi30k_files(r, {"train.de": "ein .\n"}), {"name": "multi30k"},
     "corrupt multi30k train files .*2 English vs 1 German lines"),
    ("multi30k-min-freq", no_files, {"name": "multi30k", "min_freq": 0}, "min_freq must be an integer >= 1"),
]


@pytest.mark.parametrize("write,kwargs,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(tmp_path, write, kwargs, match):
    write(tmp_path)
    kwargs = dict(kwargs)
    name, split = kwargs.pop("name"), kwargs.pop("split", "train")
    if name in ("cifar10", "mnist", "multi30k"):
        kwargs["root"] = tmp_path
    with pytest.raises(ValueError, match=match) as info:
        data.load(name, split, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "test_size" not in message


def test_a_dataset_needs_one_target_per_input():
    with pytest.raises(ValueError, match="'t' \\(train\\): 3 inputs but 2 targets"):
        Dataset("t", "train", torch.zeros(3, 2), torch.zeros(2), 2)
