"""Closed-form dropout regularizers: Shalova–Peletier–Schlichting's ReLU/L2 formula and Baldi–Sadowski §11.

* :func:`relu_l2_laplacian` — SPS poster, "Example": Δ_η L̂(w, 0) for ReLU nets with L2 loss and
  dropout filters ``z^{k+1} = W^{k+1}(y^k ⊙ (1 + η^k)) + b^{k+1}``, computed by explicit Jacobian
  products (no autograd), the independent check of :func:`droplab.regularization.noise_laplacian`.
* :func:`linear_dropout_regularizer`, :func:`linear_expected_gradient` — B&S eqs. 147–148.
* :func:`deep_linear_decomposition` — B&S eq. 155, exact by enumeration over masks.
* :func:`sigmoid_expected_gradient` — B&S eqs. 164–165 (NWGM + first-order Taylor approximation).
* :func:`top_layer_expected_gradient` — B&S eqs. 179–182 for the top layer of a logistic net.

Baldi & Sadowski write p for the **keep** probability; these functions take ``keep`` explicitly
(droplab's layers take the drop probability ``1 − keep``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from droplab._checks import check_positive, check_probability
from droplab.nn import BernoulliDropout, NoiseLayer, mc_mode, named_noise_layers, replay_masks
from droplab.nn.noise_space import noise_space
from droplab.regularization.expected_gradient import bernoulli_mask_support
from droplab.regularization.laplacian import model_params


def _layers(model: nn.Module) -> list[nn.Module]:
    seq = model.net if hasattr(model, "net") and isinstance(model.net, nn.Sequential) else model
    if not isinstance(seq, nn.Sequential):
        raise ValueError(f"model must be an nn.Sequential (or droplab FNN) of Linear, ReLU and droplab noise "
                         f"layers, got {type(model).__name__}")
    allowed = (nn.Linear, nn.ReLU, nn.Identity, nn.Flatten, NoiseLayer)
    for i, m in enumerate(seq):
        if not isinstance(m, allowed):
            raise ValueError(f"model layer {i} is {type(m).__name__}; the ReLU closed form allows Linear, "
                             "ReLU, Identity, Flatten and droplab noise layers")
    return list(seq)


def relu_l2_laplacian(model: nn.Module, inputs: Tensor) -> Tensor:
    """SPS closed form of Δ_η L̂(w, 0) for a ReLU net under ``mse_loss`` (mean over examples and outputs).

    .. math::

        \\Delta_\\eta \\hat L(w, 0) = \\frac{2}{N m} \\sum_{i=1}^N \\sum_k
        \\Big\\| \\frac{\\partial y^n}{\\partial z^{k+1}} W^{k+1} \\operatorname{diag}(y^k(x_i)) \\Big\\|_F^2

    (Frobenius norm, k over the noise layers, ``m`` the output width). Derivation: with
    ``L̂ = (1/(Nm)) Σ_i ‖f(x_i; η) − t_i‖²``,
    ``∂²L̂/∂η_j² = (2/(Nm)) Σ_i [‖∂f_i/∂η_j‖² + (f_i − t_i)·∂²f_i/∂η_j²]``. A ReLU net is piecewise
    linear in each single η_j, so ∂²f_i/∂η_j² = 0 almost everywhere and only the Gauss–Newton term
    remains (on Γ it would vanish anyway, f_i = t_i); ``∂f_i/∂η^k_j = (∂y^n/∂z^{k+1}) W^{k+1}_{:,j}
    y^k_j``, whose squared norm summed over j is the Frobenius norm above. The poster writes the
    constant 1/N, i.e. the loss ``(1/(2N)) Σ‖·‖²`` with one output; ``mse_loss`` carries 2/(Nm). A noise
    layer whose mean m_k ≠ 1 (``scale="none"``) multiplies by ``m_k + η``; its y^k is the unscaled input.
    """
    layers = _layers(model)
    if not any(isinstance(m, NoiseLayer) for m in layers):
        raise ValueError("model has no droplab noise layer; the SPS regularizer sums over dropout filters")
    h = inputs.flatten(1)
    cache: list[tuple[nn.Module, Tensor]] = []  # (module, its input)
    for m in layers:
        cache.append((m, h))
        if isinstance(m, nn.Linear):
            h = h @ m.weight.T + (m.bias if m.bias is not None else 0)
        elif isinstance(m, nn.ReLU):
            h = h.clamp_min(0)
        elif isinstance(m, NoiseLayer):
            h = h * torch.as_tensor(m.noise_moments()[0], dtype=h.dtype)
    n, out = h.shape
    back = torch.eye(out, dtype=h.dtype, device=h.device).expand(n, out, out)  # ∂y^n/∂(current tensor): (N, m, width)
    total = h.new_zeros(())
    for m, x in reversed(cache):
        if isinstance(m, nn.Linear):
            back = back @ m.weight
        elif isinstance(m, nn.ReLU):
            back = back * (x > 0).to(x.dtype).unsqueeze(1)
        elif isinstance(m, NoiseLayer):
            total = total + (back * x.unsqueeze(1)).pow(2).sum()  # ‖∂y^n/∂u · diag(y^k)‖_F² per example
            back = back * torch.as_tensor(m.noise_moments()[0], dtype=x.dtype)
    return (2.0 / (n * out) * total).detach()


def _check_keep(keep: float | Tensor) -> None:
    check_probability("keep", keep, low_open=True, high_open=False)


def linear_dropout_regularizer(weight: Tensor, inputs: Tensor, keep: float | Tensor) -> Tensor:
    """B&S eq. 148: ``½ Σ_I Σ_i w_i² I_i² Var δ_i`` with Var δ_i = p_i(1 − p_i), p_i = ``keep``.

    ``weight`` is (m, n) for a layer of m linear units (the same result holds unit by unit) and
    ``inputs`` is (N, n); summed over examples and units (error ½Σ(t − O)², no 1/N).
    """
    _check_keep(keep)
    keep = torch.as_tensor(keep, dtype=inputs.dtype)
    var = keep * (1 - keep)
    return 0.5 * (weight.pow(2) * (inputs.pow(2) * var).sum(0)).sum()


def linear_expected_gradient(weight: Tensor, inputs: Tensor, targets: Tensor,
                             keep: float | Tensor) -> tuple[Tensor, Tensor]:
    """B&S eqs. 144 and 147: (∂E_ENS/∂w, w ⊙ Σ_I I² Var δ) for linear units O = Σ δ_i w_i I_i.

    Their sum is the exact expected dropout gradient E[∂E_D/∂w] (error ½Σ_I ‖t − O‖²).
    """
    _check_keep(keep)
    keep = torch.as_tensor(keep, dtype=inputs.dtype)
    ens_in = inputs * keep  # (N, n)
    residual = ens_in @ weight.T - targets  # O_ENS − t: (N, m)
    ensemble = residual.T @ ens_in  # eq. 144 summed over examples
    decay = weight * (inputs.pow(2) * keep * (1 - keep)).sum(0)
    return ensemble, decay


@dataclass(frozen=True)
class DeepLinearDecomposition:
    """B&S eq. 155 per parameter: E[∂E_D/∂w] = ∂E_ENS/∂w + w Var(α) + Cov(α, β), all exact."""

    expected: dict[str, Tensor]
    ensemble: dict[str, Tensor]
    weight_decay: dict[str, Tensor]
    covariance: dict[str, Tensor]


def deep_linear_decomposition(model: nn.Module, inputs: Tensor, targets: Tensor) -> DeepLinearDecomposition:
    """B&S eqs. 151–155 for a deep linear dropout net with one output, exact by enumerating masks.

    For each weight w the output is ``S = α w + β`` (eq. 151: α the paths through w, β the others);
    with error ``½ Σ_I (t − S)²`` the expected dropout gradient is ``E[(S − t) α]`` (eq. 154), the
    ensemble gradient ``(E S − t) E α`` (eq. 153). α = ∂S/∂w and β = S − α w are computed for every
    mask (Bernoulli layers, ≤ 20 units), and the moments are probability-weighted sums.
    """
    noise, probs = bernoulli_mask_support(model, inputs)
    params = model_params(model)
    names = [k for k, p in model.named_parameters() if p.requires_grad]

    def output(p: dict[str, Tensor], nz: dict[str, Tensor]) -> Tensor:
        with mc_mode(model), replay_masks(model, nz):
            out = functional_call(model, {**params, **p}, (inputs,))
        if out.dim() != 2 or out.shape[1] != 1:
            raise ValueError(f"model must have one output unit (eq. 151), got shape {tuple(out.shape)}")
        return out[:, 0]

    free = {k: params[k] for k in names}
    s = vmap(lambda nz: output(free, nz))(noise)  # (K, N)
    alpha = vmap(lambda nz: jacrev(output)(free, nz))(noise)  # name -> (K, N, *shape)
    t = targets.reshape(-1)
    res = {"expected": {}, "ensemble": {}, "weight_decay": {}, "covariance": {}}
    for k in names:
        a = alpha[k].detach()
        w = params[k]
        extra = (1,) * w.dim()
        beta = s.detach().reshape(*s.shape, *extra) - a * w
        e = lambda z: torch.tensordot(probs, z, dims=1)  # noqa: E731  expectation over masks, per example
        ea, eb = e(a), e(beta)
        es = e(s.detach())
        r = (s.detach() - t).reshape(*s.shape, *extra)
        res["expected"][k] = e(r * a).sum(0)
        res["ensemble"][k] = ((es - t).reshape(-1, *extra) * ea).sum(0)
        res["weight_decay"][k] = w * (e(a * a) - ea * ea).sum(0)
        res["covariance"][k] = (e(a * beta) - ea * eb).sum(0)
    return DeepLinearDecomposition(**res)


def sigmoid_expected_gradient(weight: Tensor, inputs: Tensor, targets: Tensor, keep: float | Tensor,
                              lam: float = 1.0) -> tuple[Tensor, Tensor]:
    """B&S eqs. 159 and 164: (∂E_ENS/∂w, λ σ'(U) w ⊙ I² Var δ) for one logistic unit, summed over examples.

    O = σ(λ Σ δ_i w_i I_i) with relative-entropy error (eq. 156) and U = Σ p_i w_i I_i the ensemble
    input; their sum approximates E[∂E_D/∂w] (NWGM, then first-order Taylor: eqs. 162–164), the
    gradient of the regularized error of eq. 165. ``weight`` is (n,), ``inputs`` (N, n), ``targets`` (N,).
    """
    _check_keep(keep)
    check_positive("lam", lam)
    keep = torch.as_tensor(keep, dtype=inputs.dtype)
    u = inputs @ (weight * keep)
    sig = torch.sigmoid(lam * u)
    ensemble = (-lam * (targets - sig)).unsqueeze(1) * keep * inputs  # eq. 159 per example
    decay = lam * (sig * (1 - sig)).unsqueeze(1) * weight * inputs.pow(2) * keep * (1 - keep)  # eq. 164
    return ensemble.sum(0), decay.sum(0)


def sigmoid_regularizer(weight: Tensor, inputs: Tensor, keep: float | Tensor, lam: float = 1.0) -> Tensor:
    """B&S eq. 165's regularizer ``½ λ Σ_I σ'(U) Σ_i w_i² I_i² Var δ_i`` (σ' at the ensemble input U)."""
    _check_keep(keep)
    keep = torch.as_tensor(keep, dtype=inputs.dtype)
    sig = torch.sigmoid(lam * (inputs @ (weight * keep)))
    return 0.5 * lam * (sig * (1 - sig) * (weight.pow(2) * inputs.pow(2) * keep * (1 - keep)).sum(1)).sum()


def top_layer_expected_gradient(model: nn.Module, inputs: Tensor, targets: Tensor,
                                lam: float = 1.0) -> tuple[Tensor, Tensor]:
    """B&S eq. 181 for the top-layer weights of a logistic net: (∂E_ENS/∂w^T, w^T ⊙ λσ'(U^T) Var(δ_j O_j)).

    The model is a droplab ``FNN``/``nn.Sequential`` whose last two modules are a
    :class:`~droplab.nn.BernoulliDropout` (``scale="none"``, B&S's convention: keep p) and the output
    ``nn.Linear``; the outputs are logits of sigmoid units trained with relative entropy
    (``binary_cross_entropy_with_logits``, sum over examples and units). With no dropout below the
    top layer, O_j^l is deterministic per input so Var(δ_j O_j) = p(1 − p) O_j² and W_j = O_j (eq. 181
    is then eq. 179 with E σ'(S_ij) ≈ σ'(U)). Summed over examples; the sum approximates E[∂E_D/∂W^T].
    """
    check_positive("lam", lam)
    seq = model.net if hasattr(model, "net") else model
    layers = list(seq)
    top, drop = layers[-1], layers[-2] if len(layers) > 1 else None
    if not (isinstance(top, nn.Linear) and isinstance(drop, BernoulliDropout) and drop.scale == "none"):
        raise ValueError("model must end with BernoulliDropout(p, scale='none') then nn.Linear for eq. 181")
    if len(list(named_noise_layers(model))) != 1:
        raise ValueError("eq. 181 here needs dropout only before the top layer (one noise layer)")
    noise_space(model, inputs)  # validates the forward path
    with torch.no_grad():
        o = nn.Sequential(*layers[:-2])(inputs)  # (N, n) top hidden activity, deterministic
        keep = 1 - torch.as_tensor(drop.p, dtype=o.dtype)
        u = (o * keep) @ top.weight.T + (top.bias if top.bias is not None else 0)  # ensemble U^T
        w_t = torch.sigmoid(lam * u)
        ensemble = (-lam * (targets - w_t)).T @ (o * keep)  # eq. 168–171 at the top layer
        var = keep * (1 - keep) * o.pow(2)  # Var(δ_j O_j)
        decay = top.weight * (lam * (w_t * (1 - w_t)).T @ var)
    return ensemble, decay
