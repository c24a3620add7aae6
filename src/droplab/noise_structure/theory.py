"""Zhang, Zhou & Xu 2024, §8 and App. B: the Hessian (Theorem 1) and dropout covariance (Theorem 2).

Setting 1–3: an FNN with one noise layer of mean 1 right before the last linear layer (one output),
MSE ℓ = ½(f − y)², piecewise-linear activations. With f^j(x) = W^{[L]}_j f^{[L−1]}_j(x) (unit j's
share of the output) and r = Var(η_j) = (1 − p)/p for keep probability p:

* Theorem 1: H(θ) = E_η ∇²R^drop = (1/n) Σ_i [∇f∇fᵀ + r Σ_j ∇f^j ∇f^jᵀ];
* Theorem 2: Σ^drop = (1/n) Σ_i [a_i ∇f∇fᵀ + b_i r Σ_j ∇f^j ∇f^jᵀ], a_i = 2 E_η ℓ(f_η(x_i), y_i),
  b_i = 2 ℓ(f(x_i), y_i);
* Proposition 1 (the orderings behind it): with c_low = min_i min(a_i, b_i) and
  c_high = max_i max(a_i, b_i), c_low·H ⪯ Σ^drop ⪯ c_high·H (δ² ≤ c_low for outputs in [δ, 1 − δ]
  and binary targets; c_high ≤ (δ + ε)² on the set Ω).

Theorem 1 is exact (a.e.) when f is affine in the block on the current activation pattern — any one
layer's (W, b); for a block spanning several layers it omits the terms in ∇²f. Theorem 2 is an
approximation (App. B drops the mean gradient and the per-example gradients).
:func:`exact_dropout_moments` gives both matrices' definitions exactly, by enumeration of masks, and
:func:`example_gradient_samples` samples the single-example dropout gradients whose covariance is Σ.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import grad, jacfwd, jacrev, vmap

from droplab._checks import check_int
from droplab._params import dense_block, flatten_block, parameter_block, unflatten_block
from droplab.nn import named_noise_layers
from droplab.nn.modes import evaluation, forward_with
from droplab.nn.noise_space import draw_noise
from droplab.regularization import bernoulli_mask_support


def half_mse(out: Tensor, y: Tensor) -> Tensor:
    """Setting 2's risk (1/2n) Σ_i (f(x_i) − y_i)² for one output (``out`` (n, 1) or (n,))."""
    return 0.5 * ((out.reshape(-1) - y.reshape(-1)) ** 2).mean()


def _setting(model: nn.Module) -> tuple[nn.Linear, float]:
    """The last linear layer and r = Var(η); one-line errors outside Setting 1 and 3."""
    layers = list(named_noise_layers(model))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if len(layers) != 1 or not linears:
        raise ValueError(f"theorems 1-2 need exactly one noise layer (before the last linear layer), the model "
                         f"has {len(layers)}")
    last = linears[-1]
    if last.out_features != 1:
        raise ValueError(f"theorems 1-2 need one output (Setting 3), the last linear layer has {last.out_features}")
    mean, var = layers[0][1].noise_moments()
    if abs(float(mean) - 1) > 1e-12:
        raise ValueError(f"theorems 1-2 need noise of mean 1 (inverted scaling), got mean {float(mean)}")
    return last, float(var)


@dataclass(frozen=True)
class TheoryMatrices:
    """Theorem 1's H, Theorem 2's Σ^drop, the weights a_i, b_i and r = (1 − p)/p, on a block."""

    hessian: Tensor
    covariance: Tensor
    a: Tensor
    b: Tensor
    noise_variance: float
    names: tuple[str, ...]


def theorem_matrices(model: nn.Module, data: tuple[Tensor, Tensor], params: Sequence[str | Tensor] | None = None,
                     *, chunk: int = 256) -> TheoryMatrices:
    """Theorems 1 and 2 evaluated at the model's θ on ``data`` (targets (n,) or (n, 1))."""
    last, r = _setting(model)
    names, dim = dense_block(model, params)
    x, y = data
    y = y.reshape(-1).to(x.dtype)
    n = len(x)
    base = {k: v.detach() for k, v in model.named_parameters()}
    theta = flatten_block(model, names)

    def parts(flat: Tensor, xb: Tensor) -> tuple[Tensor, Tensor]:
        """(f (b,), f^j (b, m)): the output and each unit's share W^{[L]}_j f^{[L−1]}_j."""
        params = {**base, **unflatten_block(model, names, flat)}
        seen: list[Tensor] = []
        hook = last.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
        try:
            out = forward_with(model, params, xb, None).reshape(-1)
        finally:
            hook.remove()
        weight = params[next(k for k, v in model.named_parameters() if v is last.weight)]
        return out, seen[0] * weight[0]

    h1, h2, s1, s2 = (torch.zeros(dim, dim, dtype=x.dtype, device=x.device) for _ in range(4))
    a_all, b_all = [], []
    for lo in range(0, n, chunk):
        xb, yb = x[lo:lo + chunk], y[lo:lo + chunk]
        with torch.no_grad():
            f, fj = parts(theta, xb)
        with warnings.catch_warnings():  # torch's forward-mode rules call the deprecated torch.jit.script once
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
            jf, jfj = jacfwd(lambda t, xb=xb: parts(t, xb))(theta)  # (b, D), (b, m, D): D ≪ b·m outputs
        b_i = (f - yb) ** 2                      # 2ℓ(f(x_i), y_i)
        a_i = b_i + r * (fj ** 2).sum(1)         # 2 E_η ℓ(f_η(x_i), y_i), exact for f_η = f + Σ_j η_j f^j
        h1 += jf.T @ jf
        s1 += jf.T @ (a_i.unsqueeze(1) * jf)
        for j in range(jfj.shape[1]):  # Σ_i ∇f^j_i ∇f^j_iᵀ on the support of ∇f^j: the rest is zero
            cols = jfj[:, j].ne(0).any(0).nonzero().squeeze(1)  # one row of W (and b) for a hidden-to-hidden block
            g = jfj[:, j, cols]
            h2[cols.unsqueeze(1), cols] += g.T @ g
            s2[cols.unsqueeze(1), cols] += g.T @ (b_i.unsqueeze(1) * g)
        a_all.append(a_i)
        b_all.append(b_i)
    return TheoryMatrices((h1 + r * h2) / n, (s1 + r * s2) / n, torch.cat(a_all), torch.cat(b_all), r, tuple(names))


@dataclass(frozen=True)
class Orderings:
    """Proposition 1's orderings: smallest eigenvalues of Σ − c_low·H and c_high·H − Σ (≥ 0 means it holds)."""

    c_low: float
    c_high: float
    min_eig_lower: float
    min_eig_upper: float
    scale: float

    def holds(self, rtol: float = 1e-8) -> bool:
        """Both orderings hold up to ``rtol`` × the largest eigenvalue of c_high·H."""
        return min(self.min_eig_lower, self.min_eig_upper) >= -rtol * self.scale


def proposition1(hessian: Tensor, covariance: Tensor, a: Tensor, b: Tensor) -> Orderings:
    """Check c_low·H ⪯ Σ ⪯ c_high·H with c_low = min(a_i, b_i), c_high = max(a_i, b_i) (Proposition 1)."""
    c_low = float(torch.minimum(a, b).min())
    c_high = float(torch.maximum(a, b).max())
    lower = torch.linalg.eigvalsh(covariance - c_low * hessian)[0]
    upper = torch.linalg.eigvalsh(c_high * hessian - covariance)[0]
    scale = float(torch.linalg.eigvalsh(c_high * hessian)[-1].abs())
    return Orderings(c_low, c_high, float(lower), float(upper), scale)


@dataclass(frozen=True)
class ExactMoments:
    """By enumeration over masks: E_η ∇²R^drop and Theorem 2's covariance (data and dropout randomness)."""

    hessian: Tensor
    covariance: Tensor
    mean_gradient: Tensor


def exact_dropout_moments(model: nn.Module, data: tuple[Tensor, Tensor],
                          params: Sequence[str | Tensor] | None = None) -> ExactMoments:
    """Exact E_η ∇²R^drop and Σ = (1/n) Σ_i E_η[∇ℓ_i ∇ℓ_iᵀ] − ∇E R ∇E Rᵀ (App. B.2's definition).

    Every joint Bernoulli mask of the (few) noise units is enumerated with its probability
    (:func:`droplab.regularization.bernoulli_mask_support`); ℓ_i = ½(f_η(x_i) − y_i)².
    """
    _setting(model)
    names, dim = dense_block(model, params)
    x, y = data
    y = y.reshape(-1).to(x.dtype)
    base = {k: v.detach() for k, v in model.named_parameters()}
    theta = {k: base[k] for k in names}
    with evaluation(model):
        masks, probs = bernoulli_mask_support(model, x)

    ell = _example_loss(model, base)

    def flat(g: dict[str, Tensor], lead: int) -> Tensor:
        return torch.cat([g[k].reshape(lead, -1) for k in names], 1)

    hess = torch.zeros(dim, dim, dtype=x.dtype, device=x.device)
    second = torch.zeros(dim, dim, dtype=x.dtype, device=x.device)
    mean = torch.zeros(dim, dtype=x.dtype, device=x.device)
    for s, prob in enumerate(probs):
        mask = {k: v[s] for k, v in masks.items()}
        per = flat(vmap(grad(ell), in_dims=(None, 0, 0, None))(theta, x, y, mask), len(x))  # (n, D)
        second += prob * per.T @ per / len(x)
        mean += prob * per.mean(0)
        risk = lambda t, mask=mask: vmap(ell, in_dims=(None, 0, 0, None))(  # noqa: E731
            unflatten_block(model, names, t), x, y, mask).mean()
        hess += prob * jacrev(grad(risk))(flatten_block(model, names))
    return ExactMoments(0.5 * (hess + hess.T), second - torch.outer(mean, mean), mean)


def _example_loss(model: nn.Module, base: dict[str, Tensor]):
    """(block params, x_i, y_i, mask_i) ↦ ℓ_i = ½(f_η(x_i) − y_i)² for one example (Setting 2)."""
    def ell(th: dict[str, Tensor], xi: Tensor, yi: Tensor, mask: dict[str, Tensor]) -> Tensor:
        out = forward_with(model, {**base, **th}, xi.unsqueeze(0), mask).reshape(())
        return 0.5 * (out - yi) ** 2

    return ell


def example_gradient_samples(model: nn.Module, data: tuple[Tensor, Tensor], n_samples: int,
                             params: Sequence[str | Tensor] | None = None, *,
                             generator: torch.Generator | None = None, chunk: int = 1024) -> Tensor:
    """N single-example dropout gradients ∇ℓ(f_η(x_i), y_i), i uniform on the data, a fresh mask η each.

    Their covariance is App. B.2's Σ^drop = (1/n) Σ_i E_η ∇ℓ_i ∇ℓ_iᵀ − ∇E R ∇E Rᵀ (randomness of
    both the data and the dropout), the matrix Theorem 2 approximates. Vectorized over samples.
    """
    _setting(model)
    check_int("n_samples", n_samples, minimum=2)
    check_int("chunk", chunk, minimum=1)
    names = parameter_block(model, params)
    x, y = data
    y = y.reshape(-1).to(x.dtype)
    base = {k: v.detach() for k, v in model.named_parameters()}
    theta = {k: base[k] for k in names}
    ell = _example_loss(model, base)
    out = []
    for lo in range(0, n_samples, chunk):
        m = min(chunk, n_samples - lo)
        idx = torch.randint(len(x), (m,), generator=generator, device=x.device)
        masks = {k: v[0].unsqueeze(1) for k, v in draw_noise(model, x[idx], 1, generator).items()}  # (m, 1, ...)
        g = vmap(grad(ell), in_dims=(None, 0, 0, 0))(theta, x[idx], y[idx], masks)
        out.append(torch.cat([g[k].reshape(m, -1) for k in names], 1))
    return torch.cat(out)


def matrix_agreement(a: Tensor, b: Tensor) -> dict[str, float]:
    """Relative Frobenius error ‖a − b‖/‖b‖, cosine of the matrices, |cosine| of their top eigenvectors."""
    rel = float((a - b).norm() / b.norm())
    cos = float((a * b).sum() / (a.norm() * b.norm()))
    va = torch.linalg.eigh(a).eigenvectors[:, -1]
    vb = torch.linalg.eigh(b).eigenvectors[:, -1]
    return {"relative_error": rel, "cosine": cos, "top_eigenvector_cosine": float((va @ vb).abs())}

