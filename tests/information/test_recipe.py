"""§6's recipe: steps and milestones from epochs; batch-norm statistics recomputed with the noise off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.information import InformationDropoutRecipe, ib_loss_fn, recompute_batchnorm
from droplab.nn import BernoulliDropout, InformationDropout


def test_recipe_converts_epochs_to_steps():
    tc = InformationDropoutRecipe().train_config(1000, seed=3)
    assert (tc.optimizer, tc.lr, tc.steps, tc.milestones, tc.gamma, tc.batch_size) == \
        ("adam", 0.01, 800, (300, 600), 0.1, 100)
    with pytest.raises(ValueError, match="beta must be finite and >= 0"):
        InformationDropoutRecipe(beta=-1.0).train_config(10)
    with pytest.raises(ValueError, match="max_alpha must be finite and > 0"):
        InformationDropoutRecipe(max_alpha=0.0).train_config(10)


def test_recompute_batchnorm_gives_noise_free_dataset_statistics_and_restores_modes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), BernoulliDropout(0.5), nn.Linear(7, 3), nn.BatchNorm1d(3))
    model.train()
    x = torch.randn(64, 5)
    model(x)  # running stats now hold a noisy batch
    recompute_batchnorm(model, x, batch_size=64)  # one batch: the exact dataset statistics
    with torch.no_grad():
        h = model[2](model[0](x))  # the noise off is the identity for inverted dropout
    bn = model[3]
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-6)
    assert torch.allclose(bn.running_var, h.var(0, unbiased=True), atol=1e-5)
    assert model.training and model[1].training and bn.training and bn.momentum == 0.1


def test_ib_loss_fn_names_its_beta_and_n_so_cached_trainings_tell_them_apart():
    """train_stage keys a training by its loss's name: two β (or two N) must not share a cached net."""
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), InformationDropout(4))
    names = {ib_loss_fn(net, b, n).__qualname__ for b, n in ((0.1, 100), (1.0, 100), (1.0, 60_000))}
    assert len(names) == 3
    logits, target = net(torch.randn(5, 3)), torch.zeros(5, dtype=torch.long)
    assert torch.isfinite(ib_loss_fn(net, 0.1, 100)(logits, target))
