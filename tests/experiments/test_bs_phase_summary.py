"""bs-phases-sparsity's per-layer summary on hand-built unit statistics (known medians)."""

from __future__ import annotations

import math

import torch

from droplab.experiments.bs.phases_sparsity import phase_summary


def test_phase_summary_reads_active_inactive_and_towards_one_pairs():
    # one layer, 6 records, 1 probe input, 4 units: final means 0.9, 0.6 (active, towards 1), 0.3 (active,
    # towards 0), 0.05 (inactive, towards 0); stds rise linearly from 0.01 to the final values below.
    steps = [0, 1, 2, 3, 4, 5]
    final_mean = torch.tensor([0.9, 0.6, 0.3, 0.05])
    mean = final_mean.expand(6, 1, 4).clone()
    end = torch.tensor([0.2, 0.1, 0.05, 0.02])
    std = torch.stack([0.01 + (end - 0.01) * t / 5 for t in steps]).unsqueeze(1)
    out = phase_summary(steps, [mean], [std], active=0.1)
    assert out["n_active"] == [3.0] and out["n_up"] == [2.0] and out["n_down"] == [2.0]
    assert math.isclose(out["active_start"][0], 0.01, rel_tol=1e-6)
    assert math.isclose(out["active_end"][0], 0.1, rel_tol=1e-6)  # median of 0.2, 0.1, 0.05
    assert math.isclose(out["active_80pct"][0], 0.01 + 0.09 * 4 / 5, rel_tol=1e-6)  # record int(0.8·5) = 4
    assert math.isclose(out["inactive_end"][0], 0.02, rel_tol=1e-6)
    # rises: towards 1 {0.19, 0.09}, towards 0 {0.04, 0.01}; torch's median of an even count is the lower middle
    assert math.isclose(out["rise_up_minus_down"][0], 0.09 - 0.01, rel_tol=1e-5)
