"""The cluttered-digits generator: the digit is where its box says, determinism, bad input."""

from __future__ import annotations

import pytest
import torch

from droplab import data
from droplab.data.cluttered import ink_boxes, make_cluttered


def _stack(n: int = 6, size: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(n, size, size, generator=g) * (torch.rand(n, size, size, generator=g) > 0.5)
    imgs[:, :2] = 0  # a blank margin, like MNIST's
    return imgs, torch.arange(n) % 10


def test_digit_box_holds_the_digit_exactly_without_clutter():
    imgs, labels = _stack()
    d = make_cluttered(imgs, labels, canvas=30, n_distractors=0, seed=3)
    src = ink_boxes(imgs)
    for i in range(len(d)):
        top, left, bot, right = d.boxes[i].tolist()
        st, sl, sb, sr = src[i].tolist()
        # the canvas inside the box is the source digit's ink crop, and nothing is outside it
        assert torch.equal(d.x[i, 0, top:bot, left:right], imgs[i, st:sb, sl:sr])
        outside = d.x[i, 0].clone()
        outside[top:bot, left:right] = 0
        assert outside.abs().sum() == 0
    assert torch.equal(d.box_masks().sum((1, 2)), (d.boxes[:, 2] - d.boxes[:, 0]) * (d.boxes[:, 3] - d.boxes[:, 1]))


def test_clutter_only_adds_ink_and_is_deterministic():
    imgs, labels = _stack()
    clean = make_cluttered(imgs, labels, canvas=30, n_distractors=0, seed=5)
    noisy = make_cluttered(imgs, labels, canvas=30, n_distractors=12, fragment=4, seed=5)
    assert torch.equal(clean.boxes, noisy.boxes)  # same placement stream, then the fragments
    assert (noisy.x >= clean.x).all() and (noisy.x > clean.x).any()
    again = make_cluttered(imgs, labels, canvas=30, n_distractors=12, fragment=4, seed=5)
    assert torch.equal(noisy.x, again.x)
    other = make_cluttered(imgs, labels, canvas=30, n_distractors=12, fragment=4, seed=6)
    assert not torch.equal(noisy.x, other.x)


def test_registry_loader_from_bundled_digits():
    ds = data.load("cluttered", "test", n=20, canvas=32, n_distractors=4, digit_size=16, source="digits")
    assert ds.x.shape == (20, 1, 32, 32) and ds.meta["source"] == "digits"
    boxes = ds.meta["boxes"][:20]
    assert ((boxes[:, 2] - boxes[:, 0]) <= 16).all() and (boxes[:, 2] <= 32).all()
    assert float(ds.x.max()) <= 1.0 and float(ds.x.min()) >= 0.0


@pytest.mark.parametrize("kwargs, match", [
    ({"canvas": 8}, "canvas must be at least the digit size 10"),
    ({"n_distractors": -1}, "n_distractors"),
    ({"fragment": 11}, "fragment must be at most"),
])
def test_bad_input(kwargs, match):
    imgs, labels = _stack()
    with pytest.raises(ValueError, match=match):
        make_cluttered(imgs, labels, **kwargs)


def test_auto_source_uses_mnist_files_when_present(tmp_path):
    import gzip
    import struct

    import numpy as np

    def write_idx(path, array):
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
        with gzip.open(path, "wb") as fh:
            fh.write(header + array.astype(np.uint8).tobytes())

    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    images = np.zeros((7, 28, 28), dtype=np.uint8)
    images[:, 6:22, 8:20] = rng.integers(1, 256, (7, 16, 12))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(7) % 10)
    ds = data.load("cluttered", "test", canvas=60, n_distractors=3, root=str(tmp_path))
    assert ds.meta["source"] == "mnist" and ds.x.shape == (7, 1, 60, 60)
    boxes = ds.meta["boxes"]
    assert torch.equal(boxes[:, 2] - boxes[:, 0], torch.full((7,), 16))
    assert torch.equal(boxes[:, 3] - boxes[:, 1], torch.full((7,), 12))
    # no MNIST files: the bundled digits, upsampled
    assert data.load("cluttered", "test", n=3, canvas=40, root=str(tmp_path / "none")).meta["source"] == "digits"


def test_paper_profiles_use_the_papers_text_alpha_cap():
    from droplab.experiments.registry import all_experiments

    for exp in all_experiments():
        if exp.id.startswith("as-") and hasattr(exp.config, "max_alpha"):
            assert exp.config.for_profile("paper").max_alpha == 0.5, exp.id
