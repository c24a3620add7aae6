"""Datasets that ship with a dependency or are generated: ``digits``, ``mnist1d``, ``teacher``."""

from __future__ import annotations

import numpy as np
import torch

from droplab._checks import check_choice, check_int, check_positive, check_probability
from droplab.data.dataset import Dataset


def _split_index(n: int, test_fraction: float, seed: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    check_probability("test_fraction", test_fraction, low_open=True)
    check_int("seed", seed)
    idx = np.arange(n)
    try:
        tr, te = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=labels)
    except ValueError:  # too few test or training examples for one of each class
        k = len(np.unique(labels)) if labels is not None else 1
        raise ValueError(f"test_fraction {test_fraction} leaves fewer than {k} examples (one per class) in the "
                         f"train or test split of {n}") from None
    return np.sort(tr), np.sort(te)


def digits(split: str = "train", *, flat: bool = True, test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes), pixels in [0, 1].

    The train/test split is stratified and fixed by ``seed`` (deterministic: 1,347 / 450 by default).
    ``flat=False`` returns images shaped (N, 1, 8, 8).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data / 16.0, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.long)
    tr, te = _split_index(len(y), test_fraction, seed, bunch.target)
    idx = tr if split == "train" else te
    x = x[idx] if flat else x[idx].reshape(-1, 1, 8, 8)
    return Dataset("digits", split, x, y[idx], 10, {"source": "sklearn.datasets.load_digits", "seed": seed})


def mnist1d(split: str = "train", *, num_samples: int = 5000, seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020), generated procedurally by the ``mnist1d`` package: 40-dim, 10 classes.

    ``num_samples`` is split 80/20 into train/test by the generator itself.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    check_int("num_samples", num_samples, minimum=10)
    check_int("seed", seed)
    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    data = make_dataset(args)
    key_x, key_y = ("x", "y") if split == "train" else ("x_test", "y_test")
    x = torch.tensor(np.asarray(data[key_x]), dtype=torch.float32)
    y = torch.tensor(np.asarray(data[key_y]), dtype=torch.long)
    return Dataset("mnist1d", split, x, y, 10, {"source": "mnist1d.make_dataset", "seed": seed})


def teacher(split: str = "train", *, n_train: int = 20, dim: int = 5, hidden: int = 8, noise: float = 0.0,
            task: str = "regression", n_classes: int = 2, n_test: int = 500, seed: int = 0) -> Dataset:
    """A synthetic teacher–student set: inputs N(0, I_dim), targets from a random teacher ReLU net.

    The teacher is ``dim → hidden → 1`` (regression: y = teacher(x) + noise·N(0,1)) or
    ``dim → hidden → n_classes`` (classification: y = argmax of logits + noise·Gumbel). ``n_train`` is the
    number of training points (few points and a wide student make the zero-loss set a manifold);
    the test split has ``n_test`` fresh points from the same teacher.
    """
    check_choice("task", task, ("regression", "classification"))
    check_int("n_classes", n_classes, minimum=2)
    check_int("n_train", n_train, minimum=1)
    check_int("n_test", n_test, minimum=1)
    check_int("dim", dim, minimum=1)
    check_int("hidden", hidden, minimum=1)
    check_positive("noise", noise, allow_zero=True)
    g = torch.Generator().manual_seed(seed)
    out = 1 if task == "regression" else n_classes
    w1 = torch.randn(hidden, dim, generator=g) / dim**0.5
    w2 = torch.randn(out, hidden, generator=g) / hidden**0.5
    total = n_train + n_test
    x = torch.randn(total, dim, generator=g)
    f = torch.relu(x @ w1.T) @ w2.T
    if task == "regression":
        y = f + noise * torch.randn(total, 1, generator=g)
    else:
        gumbel = -torch.log(-torch.log(torch.rand(total, out, generator=g).clamp_min(1e-12)))
        y = (f + noise * gumbel).argmax(1)
    sl = slice(0, n_train) if split == "train" else slice(n_train, total)
    return Dataset("teacher", split, x[sl], y[sl], None if task == "regression" else n_classes,
                   {"task": task, "seed": seed, "dim": dim, "hidden": hidden, "noise": noise})
