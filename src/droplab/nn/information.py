"""Information Dropout (Achille & Soatto 2017, §4, Propositions 1–2): noise chosen per sample by the net.

The learned head and the KL are plain tensor code: the layer works with ``torch.compile`` and, in
evaluation mode or with a replayed ε, with ``torch.func`` transforms (not tested).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_choice, check_floating, check_int, check_positive
from droplab.nn import functional as F
from droplab.nn import laws
from droplab.nn.base import NoiseLayer


class InformationDropout(NoiseLayer):
    """``z = ε ⊙ f(x)``, ε ~ logN(0, α(x)²), α(x) from a small learned head (Achille & Soatto 2017, §4).

    The input is the activation f(x) of shape (N, ``features``) (or (N, …, ``features``)), or with
    ``conv=True`` (N, ``features``, *spatial) of any number of spatial dims. The head is a linear
    map of the features at each position (a 1×1 convolution when ``conv``) followed by
    ``α = min_alpha + (max_alpha − min_alpha)·sigmoid(·)``, so α(x) < ``max_alpha`` (the paper's
    0.5, §6) per sample, per unit and per spatial position.

    The prior follows the activation (§4): ``"log-uniform"`` for ReLU (Proposition 1, eq. 3:
    KL = −log α(x) + const, const = log ``max_alpha``; units with f(x) = 0 cost the constant −log q,
    counted as 0) or ``"log-normal"`` for Softplus (Proposition 2, eq. 4, KL between N(log f(x), α²)
    and N(μ, σ²) in log space; μ, σ learned when ``learn_prior`` else fixed buffers; see
    :func:`droplab.nn.laws.information_kl`).

    After every forward pass (any mode) the layer holds ``kl``: the per-sample KL summed over
    units and positions, shape (N,), with its graph (for :func:`droplab.losses.information_bottleneck`),
    and ``kl_map``: per spatial position summed over channels, (N, *spatial), when ``conv``
    (the maps of the paper's Fig. 2), else per unit (N, ``features``). The recorded and replayed
    noise is the standard-normal z of ε = exp(α(x)·z) (reparametrization, §4), so a replayed pass
    also reproduces the gradient through α(x). :meth:`noise_moments`
    returns the moments of the last forward's noise, tensors shaped like its input:
    (e^{α²/2}, (e^{α²} − 1)e^{α²}). Evaluation multiplies by e^{α(x)²/2}. NaN in x gives NaN.

    >>> layer = InformationDropout(3, generator=torch.Generator().manual_seed(0))
    >>> _ = layer(torch.rand(4, 3)); layer.kl.shape
    torch.Size([4])
    """

    has_kl = True

    def __init__(self, features: int, *, max_alpha: float = 0.5, prior: str = "log-uniform", conv: bool = False,
                 mu: float = 0.0, sigma: float = 1.0, learn_prior: bool = True, min_alpha: float = 1e-3,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_int("features", features, minimum=1)
        check_positive("max_alpha", max_alpha)
        check_positive("min_alpha", min_alpha)
        if min_alpha >= max_alpha:
            raise ValueError(f"min_alpha must be < max_alpha={max_alpha}, got {min_alpha}")
        check_choice("prior", prior, laws.PRIORS)
        check_positive("sigma", sigma)
        self.features, self.max_alpha, self.min_alpha = features, float(max_alpha), float(min_alpha)
        self.prior, self.conv = prior, conv
        self.head = nn.Linear(features, features)
        if prior == "log-normal":
            mu_t, log_sigma = torch.tensor(float(mu)), torch.tensor(math.log(sigma))
            if learn_prior:
                self.prior_mu, self.prior_log_sigma = nn.Parameter(mu_t), nn.Parameter(log_sigma)
            else:
                self.register_buffer("prior_mu", mu_t)
                self.register_buffer("prior_log_sigma", log_sigma)
        self.kl: Tensor | None = None
        self.kl_map: Tensor | None = None
        self.last_alpha: Tensor | None = None

    def alpha(self, x: Tensor) -> Tensor:
        """α(x), shaped like ``x``."""
        check_floating("input", x)
        dim = 1 if self.conv else -1
        if x.dim() < (3 if self.conv else 1) or x.shape[dim] != self.features:
            where = "(N, features, *spatial)" if self.conv else "(..., features)"
            raise ValueError(f"input must be {where} with features={self.features}, got shape {tuple(x.shape)}")
        h = self.head(x.movedim(1, -1)).movedim(-1, 1) if self.conv else self.head(x)
        return self.min_alpha + (self.max_alpha - self.min_alpha) * torch.sigmoid(h)

    def _prior(self) -> dict[str, Any]:
        if self.prior == "log-normal":
            return {"mu": self.prior_mu, "sigma": self.prior_log_sigma.exp()}
        return {}

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        if self.last_alpha is None:
            raise RuntimeError("InformationDropout.noise_moments() depends on the input: run a forward pass first")
        return laws.lognormal_moments(self.last_alpha)

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.information_dropout(x, self.alpha(x), training, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.alpha(x)
        kl = laws.information_kl(alpha, x, self.prior, max_alpha=self.max_alpha, **self._prior())
        self.kl = kl.reshape(kl.shape[0], -1).sum(1) if kl.dim() > 1 else kl.sum().reshape(1)
        self.kl_map = kl.sum(1) if self.conv else kl
        self.last_alpha = alpha.detach()
        return self.call_twin(lambda x, training, **kwargs: F.information_dropout(x, alpha, training, **kwargs), x)

    def kl_divergence(self) -> Tensor:
        """The last forward's per-example KL averaged over the batch (eq. 3 or 4 summed over units)."""
        if self.kl is None:
            raise ValueError("InformationDropout layers hold no KL yet: run the forward pass first")
        return self.kl.mean()

    def __getstate__(self) -> dict[str, Any]:
        # the last forward's KL holds a graph, which deepcopy/pickle cannot take: drop it
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        state = dict(state)
        state["kl"] = state["kl_map"] = None
        return state

    def extra_repr(self) -> str:
        return (f"features={self.features}, max_alpha={self.max_alpha}, prior={self.prior!r}"
                + (", conv=True" if self.conv else ""))
