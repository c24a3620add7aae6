"""Monte Carlo over sub-networks against exact enumeration, with tolerances from the standard error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.ensemble import approximations as A
from droplab.ensemble.linear import enumerate_subnetworks
from droplab.ensemble.montecarlo import ensemble_activations, sample_ensemble, subnetwork_outputs
from droplab.models import FNN
from droplab.nn import BernoulliDropout

F64 = torch.float64
K = 20_000
Z = 5.0  # a 5-standard-error band: a false failure has probability < 1e-6 per checked number


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = FNN([3, 4, 2], "logistic", dropout={0: 0.3, 1: 0.5}).to(F64)
    model.net.append(nn.Sigmoid())  # outputs in (0, 1) as well: module "net.5"
    x = torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    return model, x


class _LogPair(nn.Module):
    def forward(self, o):
        return torch.cat([torch.log(o), torch.log1p(-o)], -1)


def test_mean_variance_and_nwgm_match_enumeration(net):
    model, x = net
    res = sample_ensemble(model, x, ["net.5"], K, generator=torch.Generator().manual_seed(2))
    u = res.units["net.5"]
    exact = enumerate_subnetworks(model, x)
    # mean: SE = sqrt(Var/K)
    assert ((u.mean - exact.mean).abs() <= Z * (exact.variance / K).sqrt() + 1e-12).all()
    # variance: SE of the sample variance is sqrt((μ4 − σ⁴)/K) ≤ sqrt(μ4/K) ≤ sqrt(σ²/K), since O ∈ [0, 1]
    # gives (O − μ)⁴ ≤ (O − μ)².
    assert ((u.variance - exact.variance).abs() <= Z * (exact.variance / K).sqrt()).all()
    # NWGM: log G and log G′ are means of log O and log(1 − O), whose exact mean and variance come from
    # enumerating the same net followed by O ↦ (log O, log(1 − O)); NWGM = sigmoid(log G − log G′) moves by
    # at most 1/4 of the change in its argument.
    logs = enumerate_subnetworks(nn.Sequential(model, _LogPair()), x)
    exact_nwgm = torch.sigmoid(logs.mean[:, :2] - logs.mean[:, 2:])
    se = (logs.variance[:, :2] / K).sqrt() + (logs.variance[:, 2:] / K).sqrt()
    assert ((u.nwgm - exact_nwgm).abs() <= Z * se / 4).all()
    # W is the evaluation-mode output
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(u.ensemble, model(x))
        model.train()


def test_pair_covariances_match_enumeration(net):
    model, x = net
    pairs = [("net.5", 0, "net.5", 1), ("net.5", 1, "net.5", 0)]
    res = sample_ensemble(model, x, ["net.5"], K, generator=torch.Generator().manual_seed(3), pairs=pairs)
    exact = enumerate_subnetworks(model, x)
    # SE of a sample covariance ≤ sqrt(E[(X−μx)²(Y−μy)²]/K) ≤ σx/√K because |Y − μy| ≤ 1 for O ∈ [0, 1].
    bound = Z * (exact.variance[:, 0] / K).sqrt()
    assert ((res.pairs.covariance[:, 0] - exact.cov[:, 0, 1]).abs() <= bound).all()
    torch.testing.assert_close(res.pairs.covariance[:, 0], res.pairs.covariance[:, 1])
    second = exact.cov[:, 0, 1] + exact.mean[:, 0] * exact.mean[:, 1]
    assert ((res.pairs.product_mean[:, 0] - second).abs() <= Z * (1 / K) ** 0.5).all()  # |O_a O_b| ≤ 1


def test_seeded_reproducible_and_state_restored(net):
    model, x = net
    model.train()
    own = torch.Generator().manual_seed(99)
    model.net[0].generator = own
    a = sample_ensemble(model, x, ["net.2"], 50, generator=torch.Generator().manual_seed(5), chunk_size=7)
    b = sample_ensemble(model, x, ["net.2"], 50, generator=torch.Generator().manual_seed(5), chunk_size=7)
    torch.testing.assert_close(a.units["net.2"].mean, b.units["net.2"].mean, rtol=0, atol=0)
    assert model.training and model.net[0].generator is own and not model.net[0].mc
    model.net[0].generator = None


def test_values_outside_unit_interval_have_no_nwgm(net):
    model, x = net
    res = sample_ensemble(model, x, ["net.4"], 10, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="nwgm needs activities in \\[0, 1\\]"):
        _ = res.units["net.4"].nwgm


def test_connected_pair_estimate_removes_the_unit_exactly(net):
    model, x = net
    pairs = torch.tensor([[0, 1], [3, 0]])
    est = A.connected_product_estimate(model, x, "net.2", "net.4", "net.5", pairs)
    w = ensemble_activations(model, x, ["net.2", "net.5"])
    # Reference: zero the weight from j to i and propagate the ensemble network again.
    for p, (j, i) in enumerate(pairs.tolist()):
        with torch.no_grad():
            saved = model.net[4].weight[i, j].item()
            model.net[4].weight[i, j] = 0.0
            w_ij = ensemble_activations(model, x, ["net.5"])["net.5"][:, i]
            model.net[4].weight[i, j] = saved
        torch.testing.assert_close(est["corrected"][:, p], w_ij * w["net.2"][:, j])
        torch.testing.assert_close(est["independent"][:, p], w["net.5"][:, i] * w["net.2"][:, j])
    torch.testing.assert_close(A.variance_estimate_upper(torch.tensor([0.5, 0.9])), torch.tensor([0.25, 0.09]))


def test_bad_input(net):
    model, x = net
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2"):
        sample_ensemble(model, x, ["net.2"], 1, generator=g)
    with pytest.raises(ValueError, match="no droplab noise layer"):
        sample_ensemble(nn.Sequential(nn.Linear(3, 2)), torch.randn(2, 3), ["0"], 10, generator=g)
    with pytest.raises(ValueError, match="unknown \\['net.9'\\]"):
        sample_ensemble(model, x, ["net.9"], 10, generator=g)
    with pytest.raises(ValueError, match="shares its noise along the batch dim 0"):
        sample_ensemble(nn.Sequential(BernoulliDropout(0.5, shared_dims=(0,)), nn.Linear(3, 2)), torch.randn(2, 3),
                        ["1"], 10, generator=g)
    with pytest.raises(ValueError, match="pairs: unit 7 is out of range"):
        sample_ensemble(model, x, ["net.2"], 10, generator=g, pairs=[("net.2", 7, "net.2", 0)])


def test_float32_logistic_nwgm_from_float64_logits():
    """Logits of ±170 saturate float32 σ (σ(z) = 1 for z ≳ 16.7, 0 for z ≲ −104), so log(1 − O) from O
    is −∞ and the NWGM 1 or NaN. Reference: the 8 input masks enumerated in float64 by hand (inverted
    dropout, keep 0.5 ⇒ kept inputs × 2): log G − log G′ is the sample mean of the logit z, so it must
    match E z within 5 Monte Carlo standard errors std(z)/√K."""
    model = FNN([3, 1], "linear", dropout={0: 0.5})
    model.net.append(nn.Sigmoid())  # module "net.2", in float32
    with torch.no_grad():
        model.net[1].weight.copy_(torch.tensor([[60.0, -40.0, -45.0]]))
        model.net[1].bias.zero_()
    x = torch.ones(1, 3)
    masks = torch.tensor([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=F64)
    z = (2 * masks) @ torch.tensor([60.0, -40.0, -45.0], dtype=F64)  # all 8 equally likely
    assert z.max() >= 17 and z.min() <= -105  # float32 σ would give exactly 1 and 0
    k = 4000
    u = sample_ensemble(model, x, ["net.2"], k, generator=torch.Generator().manual_seed(3)).units["net.2"]
    gap = u.log_geometric_mean - u.log_complement_geometric_mean
    assert torch.isfinite(gap).all() and gap.dtype == F64
    assert (gap - z.mean()).abs().item() <= Z * z.std(unbiased=False).item() / k ** 0.5
    nw = u.nwgm
    assert torch.isfinite(nw).all() and 0 < nw.item() < 1e-6  # σ(E z) = σ(−25) ≈ 1.4e-11


def test_subnetwork_outputs_are_the_samples_sample_ensemble_summarizes(net):
    model, x = net
    was = model.training
    kept = subnetwork_outputs(model, x, ["net.5"], 300, generator=torch.Generator().manual_seed(3))["net.5"]
    summary = sample_ensemble(model, x, ["net.5"], 300, generator=torch.Generator().manual_seed(3)).units["net.5"]
    assert kept.shape == (300, 4, 2) and model.training == was
    torch.testing.assert_close(kept.mean(0), summary.mean)
    torch.testing.assert_close(kept.var(0), summary.variance)
    with pytest.raises(ValueError, match="no droplab noise layer"):
        subnetwork_outputs(nn.Sequential(nn.Linear(3, 2)), x.float(), ["0"], 5, generator=torch.Generator())
