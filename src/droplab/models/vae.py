"""A variational autoencoder with a Gaussian latent or an Information Dropout latent
(Achille & Soatto 2017, §5 and Table 1; Kingma & Welling 2013).

Encoder ``x → hidden (Softplus) → latent parameters``, decoder ``z → hidden (Softplus) → Bernoulli
logits`` over binary pixels. Two latents:

* ``"gaussian"``: ``z = μ(x) + σ(x) n``, prior N(0, I) (Kingma & Welling);
* ``"information"``: ``z = ε ⊙ f(x)``, ``f = Softplus(·) > 0``, ``ε ~ logN(0, α(x)²)`` with
  α(x) ≤ ``max_alpha``: an Information Dropout layer with the log-normal prior logN(μ, σ²) of
  Proposition 2. With the task ``y = x`` and β = 1, eq. (2) is exactly the negative ELBO (§5).

:meth:`VAE.terms` returns the per-example reconstruction ``−log p(x|z)`` (one z sample) and the
latent's analytic ``KL(q(z|x) ‖ p(z))``; :meth:`VAE.loss` is their mean, the KL weighted by β (``forward`` returns both
stacked, for training loops: :func:`negative_elbo` is the matching loss);
:meth:`VAE.iw_log_likelihood` is the importance-weighted bound ``log (1/K) Σ p(x, z_k)/q(z_k|x)``
(Burda et al. 2016), which tightens toward ``log p(x)`` as K grows. The latent always samples,
whatever the train/eval mode: the ELBO is an expectation over q(z|x).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from droplab._checks import check_choice, check_int, check_positive
from droplab.nn import InformationDropout
from droplab.nn.laws import information_kl

LATENTS = ("gaussian", "information")
_LOG_2PI = math.log(2 * math.pi)


def _normal_logpdf(u: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return -0.5 * ((u - mean) / std) ** 2 - std.log() - 0.5 * _LOG_2PI


class GaussianLatent(nn.Module):
    """q(z|x) = N(μ(x), diag σ(x)²), p(z) = N(0, I): the VAE of Kingma & Welling 2013."""

    def __init__(self, hidden: int, latent: int) -> None:
        super().__init__()
        self.params = nn.Linear(hidden, 2 * latent)

    def posterior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_var = self.params(h).chunk(2, -1)
        return mu, (0.5 * log_var).exp()

    def forward(self, h: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``noise`` (K, N, latent) standard normal → z (K, N, latent), log q − log p (K, N), KL (N,)."""
        mu, std = self.posterior(h)
        z = mu + std * noise
        log_ratio = (_normal_logpdf(z, mu, std) - _normal_logpdf(z, torch.zeros(()), torch.ones(()))).sum(-1)
        kl = 0.5 * (mu**2 + std**2 - 1 - 2 * std.log()).sum(-1)
        return z, log_ratio, kl


class InformationLatent(nn.Module):
    """``z = ε ⊙ f(x)``, ``f = Softplus(W h + b)``, ε ~ logN(0, α(x)²): an :class:`droplab.nn.InformationDropout`
    layer with the log-normal prior logN(μ, σ²) (learned μ, σ; Proposition 2). Its KL (eq. 4 with
    log f(x), :func:`droplab.nn.laws.information_kl`) is the exact KL(q(z|x) ‖ p(z)).

    The VAE needs K noise draws per example whatever the train/eval mode, so this module reuses the
    layer's α head, prior and KL and draws ε = exp(α n) from the given standard normal ``n``.
    """

    def __init__(self, hidden: int, latent: int, max_alpha: float) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(hidden, latent), nn.Softplus())
        self.dropout = InformationDropout(latent, max_alpha=max_alpha, prior="log-normal")

    def posterior(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """``(f(x), α(x))``: q(z|x) = logN(log f(x), α(x)²) per unit."""
        f = self.f(h)
        return f, self.dropout.alpha(f)

    def prior(self) -> tuple[Tensor, Tensor]:
        """``(μ, σ)`` of the prior p(z) = logN(μ, σ²) per unit."""
        return self.dropout.prior_mu, self.dropout.prior_log_sigma.exp()

    def forward(self, h: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``noise`` (K, N, latent) standard normal → z (K, N, latent), log q − log p (K, N), KL (N,)."""
        f, alpha = self.posterior(h)
        mu, sigma = self.prior()
        log_z = f.log() + alpha * noise  # log z ~ N(log f, α²); the Jacobian 1/z cancels in q/p
        log_ratio = (_normal_logpdf(log_z, f.log(), alpha) - _normal_logpdf(log_z, mu, sigma)).sum(-1)
        kl = information_kl(alpha, f, "log-normal", mu=mu, sigma=sigma).sum(-1)
        return log_z.exp(), log_ratio, kl


class VAE(nn.Module):
    """A one-hidden-layer VAE for ``in_features`` binary pixels (Table 1: hidden 512k, latent 256k).

    >>> vae = VAE(64, hidden=32, latent=8, latent_kind="gaussian")
    >>> rec, kl = vae.terms((torch.rand(5, 64) > 0.5).float(), torch.Generator().manual_seed(0))
    >>> rec.shape, kl.shape, bool((kl >= 0).all())
    (torch.Size([5]), torch.Size([5]), True)
    """

    def __init__(self, in_features: int, hidden: int = 512, latent: int = 256, *, latent_kind: str = "gaussian",
                 max_alpha: float = 0.5) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("hidden", hidden), ("latent", latent)):
            check_int(name, v, minimum=1)
        check_choice("latent_kind", latent_kind, LATENTS)
        check_positive("max_alpha", max_alpha)
        self.latent_kind = latent_kind
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.Softplus())
        self.latent = GaussianLatent(hidden, latent) if latent_kind == "gaussian" else \
            InformationLatent(hidden, latent, max_alpha)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Softplus(), nn.Linear(hidden, in_features))
        self.n_latent = latent

    def sample_terms(self, x: Tensor, k: int = 1,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """For K draws z_k ~ q(z|x): ``−log p(x|z_k)`` (K, N), ``log q(z_k|x) − log p(z_k)`` (K, N) and the
        analytic KL (N,), all in nats."""
        check_int("k", k, minimum=1)
        x = x.flatten(1)
        noise = torch.randn(k, x.shape[0], self.n_latent, generator=generator, dtype=x.dtype).to(x.device)
        z, log_ratio, kl = self.latent(self.encoder(x), noise)
        logits = self.decoder(z)
        rec = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
        return rec, log_ratio, kl

    def terms(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Per-example ``−log p(x|z)`` at one sample z ~ q(z|x) and the analytic KL (nats)."""
        rec, _, kl = self.sample_terms(x, 1, generator)
        return rec[0], kl

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 2)``: per example ``[−log p(x|z), KL]`` at one z ~ q(z|x) (what a fit loop's loss takes)."""
        return torch.stack(self.terms(x), -1)

    def loss(self, x: Tensor, beta: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """``mean(−log p(x|z) + β KL)``: eq. (2) with y = x; with β = 1 the negative ELBO (nats per example)."""
        check_positive("beta", beta, allow_zero=True)
        return negative_elbo(torch.stack(self.terms(x, generator), -1), beta=beta)

    def iw_log_likelihood(self, x: Tensor, k: int = 100, generator: torch.Generator | None = None) -> Tensor:
        """Importance-weighted lower bound on ``log p(x)`` with ``k`` samples, per example (N,)."""
        rec, log_ratio, _ = self.sample_terms(x, k, generator)
        return torch.logsumexp(-rec - log_ratio, 0) - math.log(k)


def negative_elbo(terms: Tensor, target: Tensor | None = None, beta: float = 1.0) -> Tensor:
    """``mean(−log p(x|z) + β KL)`` from :meth:`VAE.forward`'s ``(N, 2)`` output (``target`` is unused:
    the task is the input itself, y = x, §5)."""
    return (terms[:, 0] + beta * terms[:, 1]).mean()
