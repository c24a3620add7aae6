"""Fused S_grad for the dense tail of ZZX's FNN: block Linear → activation → noise layer → Linear → CE.

In Zhang, Zhou & Xu's setting (App. A: FNN 784-50-50-10, dropout after hidden layer 2, block = the
50×50 layer before it) the dropout gradient of the block under mask ξ_s has the closed form

    z = W a + b,   h_s = φ(z) ⊙ ξ_s,   P_s = softmax(h_s Vᵀ + c) − onehot(y),
    δ_s = (P_s V / n) ⊙ ξ_s ⊙ φ'(z),   ∇_[W, b] L_s = δ_sᵀ [a, 1]

(mean cross-entropy over the n examples; V, c the last layer). φ(z) and φ'(z) do not depend on the
noise and are computed once. The S masks of a chunk are processed together in tiles of rows sized to
stay in cache, with buffers reused across tiles and chunks: per draw two elementwise passes, three
matrix products (2n(m·C + C·m + k·m) FLOPs) and the masks are all the work left. The general
``torch.func`` path of :func:`droplab.noise_structure.gradient_samples` gives the same gradients (tested
draw for draw); this one avoids its fresh per-chunk allocations and broadcast backward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from droplab.nn import BernoulliDropout, GaussianDropout

ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.ELU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Identity)
MULTIPLICATIVE = (BernoulliDropout, GaussianDropout)   # sampling forward is x ⊙ ξ with the replayed ξ
TILE_BYTES = 1 << 20   # one (S, rows, m) tile tensor per torch thread: ≈ 1 MiB keeps a tile's working set in cache


def dense_tail_gradients(tail: Sequence[tuple[str, nn.Module]], noise_names: Sequence[str],
                         params: dict[str, Tensor], loss_fn: Callable, a: Tensor, z: Tensor,
                         y: Tensor) -> Callable[[dict[str, Tensor]], Tensor] | None:
    """``noise ↦`` the (S, m, k) block gradients δ_sᵀ a for ``tail`` = [activation,] noise layer, Linear.

    ``a`` (n, k) is the block layer's input (with a column of ones for a bias), ``z`` (n, m) its
    output, ``tail`` the modules after it to the model's output, ``noise_names`` every noise layer
    of the model. None when the tail, the loss or the shapes are of another kind.
    """
    mods = list(tail)
    act = mods.pop(0)[1] if mods and type(mods[0][1]) in ELEMENTWISE else None
    if (len(mods) != 2 or loss_fn is not nn.functional.cross_entropy or z.dim() != 2 or y.dim() != 1
            or y.is_floating_point() or a.dim() != 2):
        return None
    (noise_name, layer), (last_name, last) = mods
    if type(layer) not in MULTIPLICATIVE or type(last) is not nn.Linear or list(noise_names) != [noise_name]:
        return None
    v = params[f"{last_name}.weight"]                                     # (C, m)
    c = params.get(f"{last_name}.bias")
    n, m = z.shape
    k, n_classes = a.shape[1], v.shape[0]
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        r = act(zz) if act is not None else zz
        (d,) = torch.autograd.grad(r.sum(), zz) if act is not None else (None,)  # φ'(z): φ is elementwise
    r = r.detach()
    minus_onehot = torch.zeros(n_classes, n, dtype=z.dtype, device=z.device)   # class-major −onehot(y)
    minus_onehot[y, torch.arange(n, device=z.device)] = -1.0
    bias = torch.zeros(n_classes, 1, dtype=z.dtype, device=z.device) if c is None else c.reshape(n_classes, 1)
    v_mean = v / n                 # the mean over examples, folded into the last product
    a_rows = a.T.contiguous()      # (k, n): a tile's columns are a plain (k, t) operand (stride n), no copy
    buffers: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    def grads(noise: dict[str, Tensor]) -> Tensor:
        xi = noise[noise_name]
        s = xi.shape[0]
        xi = xi.expand(s, n, m)
        rows = max(1, min(n, TILE_BYTES * torch.get_num_threads() // (s * m * z.element_size())))
        if s not in buffers:   # reused by every chunk of s masks: no fresh pages per chunk
            buffers[s] = tuple(torch.empty(size, dtype=z.dtype, device=z.device)
                               for size in (s * rows * m, s * rows * n_classes, s * rows * m))
        buf_h, buf_p, buf_d = buffers[s]
        out = torch.empty(s, k, m, dtype=z.dtype, device=z.device)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            t = hi - lo
            x_t = xi[:, lo:hi]                                             # (S, t, m)
            h = torch.mul(x_t, r[lo:hi], out=buf_h[:s * t * m].view(s, t, m))
            p = torch.baddbmm(bias, v.expand(s, n_classes, m), h.transpose(1, 2),
                              out=buf_p[:s * n_classes * t].view(s, n_classes, t))   # logits, class-major
            torch.softmax(p, 1, out=p)                                     # over the short dim 1
            p.add_(minus_onehot[:, lo:hi])
            delta = torch.matmul(p.transpose(1, 2), v_mean, out=buf_d[:s * t * m].view(s, t, m))
            delta.mul_(x_t)
            if d is not None:
                delta.mul_(d[lo:hi])
            a_t = a_rows[:, lo:hi].expand(s, k, t)
            if lo == 0:
                torch.bmm(a_t, delta, out=out)                              # Σ_i δ_s,i ã_iᵀ over the tile
            else:
                out.baddbmm_(a_t, delta)
        return out.transpose(1, 2)

    return grads

