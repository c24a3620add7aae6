"""Each dataset loader, on bundled, generated and real-format files written by the test."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from droplab import data
from droplab.experiments.common import load_task


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)


@pytest.fixture
def mnist_root(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split, n, gz in (("train", 12, True), ("t10k", 5, False)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), gz)
    return tmp_path


def test_digits_split_is_deterministic_and_disjoint():
    a, b = data.load("digits", "train"), data.load("digits", "train")
    test = data.load("digits", "test")
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert len(a) + len(test) == 1797 and a.x.shape[1] == 64 and a.n_classes == 10
    assert 0.0 <= a.x.min() and a.x.max() <= 1.0
    rows = {tuple(r) for r in a.x.tolist()}
    assert sum(tuple(r) in rows for r in test.x.tolist()) < 5  # only exact duplicate images may coincide


def test_digits_images_and_subset():
    ds = data.load("digits", "train", n=10, flat=False)
    assert ds.x.shape == (10, 1, 8, 8)
    assert torch.equal(ds.x.reshape(10, -1), data.load("digits", "train").x[:10])


def test_pooled_averages_each_block_and_flattens_after():
    images = data.load("digits", "train", n=5, flat=False)
    pooled = images.pooled(2)
    assert pooled.x.shape == (5, 1, 4, 4) and pooled.meta["pooled"] == 2 and torch.equal(pooled.y, images.y)
    assert torch.allclose(pooled.x[:, :, 1, 2], images.x[:, :, 2:4, 4:6].mean((2, 3)))
    assert images.pooled(1) is images
    flat, _ = load_task("digits", 5, 5, pool=2)
    assert torch.equal(flat.x, pooled.x.reshape(5, 16))


def test_pooled_refuses_bad_factor_and_flat_inputs():
    images = data.load("digits", "train", n=5, flat=False)
    with pytest.raises(ValueError, match="pool must be a positive integer"):
        images.pooled(0)
    with pytest.raises(ValueError, match=r"pool needs images \(N, C, H, W\)"):
        images.flat().pooled(2)


def test_mnist1d_is_generated_locally():
    ds = data.load("mnist1d", "train", num_samples=100)
    assert ds.x.shape == (80, 40) and ds.n_classes == 10
    assert torch.equal(ds.x, data.load("mnist1d", "train", num_samples=100).x)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_teacher_sets(task):
    tr = data.load("teacher", "train", n_train=7, dim=3, task=task, seed=1)
    te = data.load("teacher", "test", n_train=7, dim=3, task=task, seed=1, n_test=11)
    assert tr.x.shape == (7, 3) and te.x.shape == (11, 3)
    assert not torch.equal(tr.x[:7], te.x[:7])
    assert (tr.n_classes is None) == (task == "regression")


def test_mnist_idx_files_plain_and_gzip(mnist_root):
    tr = data.load("mnist", "train", root=mnist_root)
    te = data.load("mnist", "test", root=mnist_root, flat=False)
    assert tr.x.shape == (12, 784) and te.x.shape == (5, 1, 28, 28)
    assert tr.y.dtype == torch.long and 0 <= tr.x.min() and tr.x.max() <= 1


def test_missing_files_name_them_and_the_flag(tmp_path):
    with pytest.raises(ValueError, match=r"missing .*train-images-idx3-ubyte.*--download"):
        data.load("fashion-mnist", "train", root=tmp_path)


def test_corrupt_idx_is_one_line_error(mnist_root):
    (mnist_root / "mnist" / "t10k-images-idx3-ubyte").write_bytes(b"\x01\x02garbage")
    with pytest.raises(ValueError, match="corrupt IDX file"):
        data.load("mnist", "test", root=mnist_root)


def test_cifar_pickled_batches(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 4))}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    tr = data.load("cifar10", "train", root=tmp_path, n=15)
    assert tr.x.shape == (15, 3, 32, 32) and tr.n_classes == 10
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="corrupt CIFAR batch"):
        data.load("cifar10", "test", root=tmp_path)


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    with open(folder / "test", "wb") as fh:
        pickle.dump({b"data": np.zeros((3, 3072), np.uint8), b"fine_labels": [1, 2, 99]}, fh)
    ds = data.load("cifar100", "test", root=tmp_path)
    assert ds.y.tolist() == [1, 2, 99] and ds.n_classes == 100


def test_env_var_sets_the_root(mnist_root, monkeypatch):
    monkeypatch.setenv("DROPLAB_DATA", str(mnist_root))
    assert len(data.load("mnist", "test")) == 5


def test_multi30k_text_files_plain_and_gzip(tmp_path):
    folder = tmp_path / "multi30k"
    folder.mkdir()
    (folder / "train.en").write_text("A man runs .\nA dog runs .\n")
    with gzip.open(folder / "train.de.gz", "wt", encoding="utf-8") as fh:
        fh.write("Ein Mann läuft .\nEin Hund läuft .\n")
    (folder / "val.en").write_text("a cat runs .\n")
    (folder / "val.de").write_text("eine katze läuft .\n")
    tr = data.load("multi30k", "train", root=tmp_path, max_len=6, min_freq=2)
    te = data.load("multi30k", "test", root=tmp_path, max_len=6, min_freq=2)
    # vocabularies from training words seen twice: en {a, runs, .}, de {ein, läuft, .}, after 4 specials
    assert tr.meta["src_vocab"] == 7 and tr.meta["tgt_vocab"] == 7 and tr.n_classes == 7
    assert tr.x.shape == (2, 2, 6) and te.x.shape == (1, 2, 6)
    en = {w: i + 4 for i, w in enumerate(sorted([".", "a", "runs"]))}
    de = {w: i + 4 for i, w in enumerate(sorted([".", "ein", "läuft"]))}
    unk, eos, bos = 3, 2, 1
    assert te.x[0, 0].tolist() == [en["a"], unk, en["runs"], en["."], eos, 0]
    assert tr.x[0, 1].tolist() == [bos, de["ein"], unk, de["läuft"], de["."], 0]
    assert tr.y[0].tolist() == [de["ein"], unk, de["läuft"], de["."], eos, 0]
