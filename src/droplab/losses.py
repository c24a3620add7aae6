"""Losses that read the noise layers of a model: the Information Bottleneck objective.

Achille & Soatto 2017, eq. (2) and (5): cross-entropy plus β times the KL the noise layers
stored in their last forward pass, divided by the number of training samples (§6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as TF
from torch import Tensor, nn

from droplab._checks import check_int, check_positive
from droplab.nn.modes import noise_layers


def information_bottleneck(logits: Tensor, target: Tensor, model: nn.Module, beta: float, n_train: int) -> Tensor:
    """``CE(logits, target) + β · (Σ_layers KL) / n_train`` (Achille & Soatto 2017, eq. 5 and §6).

    The KL sum runs over the model's noise layers with a KL term (``NoiseLayer.has_kl``), each
    read through ``kl_divergence()``: :class:`~droplab.nn.InformationDropout` (the per-sample KL
    of the last forward pass, averaged over the batch, the same average as the cross-entropy) and
    :class:`~droplab.nn.VariationalDropout` / :class:`~droplab.nn.VariationalDropoutLinear` (their
    weight-level KL). Dividing
    by ``n_train`` is the paper's scaling, "so that for β = 1 the scaling of the KL-divergence
    term is similar to the one used by Variational Dropout" (for which β = 1 is the per-sample ELBO).
    Call it right after the forward pass that produced ``logits``.

    >>> from droplab.nn import InformationDropout
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), InformationDropout(3), nn.Linear(3, 2))
    >>> x, y = torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 1])
    >>> bool(information_bottleneck(model(x), y, model, beta=1.0, n_train=100) > 0)
    True
    """
    check_positive("beta", beta, allow_zero=True)
    check_int("n_train", n_train, minimum=1)
    terms = [layer.kl_divergence() for layer in noise_layers(model) if layer.has_kl]
    if not terms:
        raise ValueError("model has no information or variational dropout layers (droplab.nn.InformationDropout, "
                         "VariationalDropout, VariationalDropoutLinear); use plain cross-entropy")
    kl = torch.stack([t.to(logits.dtype) for t in terms]).sum()
    return TF.cross_entropy(logits, target) + beta * kl / n_train
