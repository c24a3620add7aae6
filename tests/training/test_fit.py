"""Training: bit-identical determinism, exact resume after an interruption, stopping, bad input."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

from droplab import data
from droplab.models import FNN
from droplab.training import RecordParameters, TrainConfig, accuracy, fit

DS = data.load("digits", "train", n=200)
LOSS = nn.functional.cross_entropy


def make_model(seed: int = 0) -> FNN:
    torch.manual_seed(seed)
    return FNN([64, 32, 10], dropout={0: 0.2, 1: 0.5})


def params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize("cfg", [
    TrainConfig(optimizer="gd", lr=0.5, steps=30),
    TrainConfig(optimizer="sgd", lr=0.1, steps=30, batch_size=64, momentum=0.9, nesterov=True),
    TrainConfig(optimizer="adam", lr=1e-2, steps=30, batch_size=50, milestones=(10, 20)),
], ids=["gd", "sgd-nesterov", "adam-schedule"])
def test_same_seed_gives_bit_identical_parameters(cfg):
    a, b = make_model(), make_model()
    ra = fit(a, LOSS, DS.x, DS.y, cfg)
    rb = fit(b, LOSS, DS.x, DS.y, cfg)
    assert torch.equal(params(a), params(b))
    assert ra.losses == rb.losses and ra.losses[-1] < ra.losses[0]


class Interrupt:
    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, step, model, info):
        if step == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("optimizer,batch", [("sgd", 64), ("adam", None)])
def test_resume_after_interruption_is_exact(tmp_path, optimizer, batch):
    cfg = TrainConfig(optimizer=optimizer, lr=0.05, steps=40, batch_size=batch, checkpoint_every=7,
                      milestones=(25,))
    ref, rec_ref = make_model(), RecordParameters(every=5)
    fit(ref, LOSS, DS.x, DS.y, cfg, callbacks=[rec_ref])

    ckpt = tmp_path / "ckpt.pt"
    model, rec = make_model(), RecordParameters(every=5)
    with pytest.raises(KeyboardInterrupt):
        fit(model, LOSS, DS.x, DS.y, cfg, callbacks=[rec, Interrupt(at=23)], checkpoint=ckpt)
    torch.manual_seed(1234)  # unrelated RNG use between the two attempts must not matter
    resumed, rec2 = make_model(seed=99), RecordParameters(every=5)
    result = fit(resumed, LOSS, DS.x, DS.y, cfg, callbacks=[rec2], checkpoint=ckpt)
    assert result.steps == 40
    assert torch.equal(params(resumed), params(ref))
    assert torch.equal(rec2.trajectory(), rec_ref.trajectory())


def test_record_parameters_at_listed_steps_is_one_run_stopped_there():
    """Snapshots at log-spaced steps of one Adam run equal the parameters of the same run trained only
    that far (same seed, one optimizer state throughout: no reset between snapshots)."""
    cfg = TrainConfig(optimizer="adam", lr=1e-2, steps=20, batch_size=50)
    model, rec = make_model(), RecordParameters(at=[1, 4, 20])
    fit(model, LOSS, DS.x, DS.y, cfg, callbacks=[rec])
    assert rec.steps == [1, 4, 20]
    for step, flat in zip(rec.steps, rec.values):
        short = make_model()
        fit(short, LOSS, DS.x, DS.y, TrainConfig(optimizer="adam", lr=1e-2, steps=step, batch_size=50))
        assert torch.equal(flat, params(short))
    with pytest.raises(ValueError, match="at must list steps"):
        RecordParameters(at=[0, 3])


class SigintLoss:
    """The loss, sending this process a real SIGINT (``times`` of them) during its ``at``-th call:
    mid-step, after the forward pass drew its masks and before the update."""

    def __init__(self, at: int, times: int = 1) -> None:
        self.at, self.times, self.calls = at, times, 0

    def __call__(self, out, y):
        self.calls += 1
        if self.calls == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)
        return LOSS(out, y)


@pytest.mark.parametrize("at,times,saved_at", [
    (1, 1, 1), (12, 1, 12), (14, 1, 14), (40, 1, 40),  # first step, mid-way, at a periodic save, last step
    (23, 2, 21),  # a second Ctrl-C interrupts at once: the periodic checkpoint of step 21 stands
], ids=["first", "mid", "periodic", "last", "twice"])
def test_sigint_at_any_step_resumes_exactly(tmp_path, at, times, saved_at):
    cfg = TrainConfig(optimizer="sgd", lr=0.05, steps=40, batch_size=64, momentum=0.9, checkpoint_every=7)
    ref, rec_ref = make_model(), RecordParameters(every=3)
    fit(ref, LOSS, DS.x, DS.y, cfg, callbacks=[rec_ref])

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), SigintLoss(at, times), DS.x, DS.y, cfg, callbacks=[RecordParameters(every=3)],
            checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=True)["steps"] == saved_at  # the step Ctrl-C arrived in is kept
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed, rec = make_model(seed=5), RecordParameters(every=3)
    result = fit(resumed, LOSS, DS.x, DS.y, cfg, callbacks=[rec], checkpoint=ckpt)
    assert result.steps == 40 and torch.equal(params(resumed), params(ref))
    assert torch.equal(rec.trajectory(), rec_ref.trajectory())


def test_early_stop_is_part_of_the_checkpoint(tmp_path):
    """A kill after the stop but before the caller caches the result: the resume stops there too."""
    cfg = TrainConfig(optimizer="adam", lr=1e-2, steps=2000, stop_loss=0.3, eval_every=10, checkpoint_every=7)
    ckpt = tmp_path / "ckpt.pt"
    model = make_model()
    first = fit(model, LOSS, DS.x, DS.y, cfg, checkpoint=ckpt)
    assert first.stopped == "stop_loss" and first.steps < 2000
    resumed = make_model(seed=3)
    again = fit(resumed, LOSS, DS.x, DS.y, cfg, checkpoint=ckpt)
    assert (again.steps, again.stopped, again.losses) == (first.steps, "stop_loss", first.losses)
    assert torch.equal(params(resumed), params(model))


class Bar:
    """A progress bar stand-in: iterates and has a ``total``, like tqdm."""

    def __init__(self, steps: range) -> None:
        self.steps, self.total = steps, len(steps)

    def __iter__(self):
        return iter(self.steps)


def test_progress_total_follows_an_early_stop():
    bars = []
    res = fit(make_model(), LOSS, DS.x, DS.y, TrainConfig(optimizer="adam", lr=1e-2, steps=2000, stop_loss=0.3,
                                                          eval_every=10),
              progress=lambda steps: bars.append(Bar(steps)) or bars[-1])
    assert res.stopped == "stop_loss" and bars[0].total == res.steps < 2000


def test_stop_loss_stops_on_the_evaluation_loss():
    model = make_model()
    res = fit(model, LOSS, DS.x, DS.y, TrainConfig(optimizer="adam", lr=1e-2, steps=2000, stop_loss=0.05,
                                                   eval_every=10))
    assert res.stopped == "stop_loss" and res.steps < 2000 and res.final_eval_loss <= 0.05
    assert accuracy(model, DS.x, DS.y) > 0.95


def test_fit_restores_the_callers_mode():
    model = make_model().eval()
    fit(model, LOSS, DS.x, DS.y, TrainConfig(steps=2))
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize("kwargs,match", [
    ({"optimizer": "lbfgs"}, "optimizer must be one of"),
    ({"lr": -1.0}, "lr must be finite and > 0"),
    ({"steps": -3}, "steps must be an integer >= 0"),
    ({"optimizer": "gd", "batch_size": 10}, "batch_size must be None for optimizer 'gd'"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(make_model(), LOSS, DS.x, DS.y, TrainConfig(**kwargs))


def test_corrupt_checkpoint_is_one_line_error(tmp_path):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        fit(make_model(), LOSS, DS.x, DS.y, TrainConfig(steps=2), checkpoint=ckpt)


def test_chunked_gradient_equals_the_full_batch_gradient():
    cfg_full = TrainConfig(optimizer="gd", lr=0.5, steps=5)
    cfg_chunk = TrainConfig(optimizer="gd", lr=0.5, steps=5, chunk=64)
    torch.manual_seed(0)
    a = FNN([64, 32, 10])  # no noise: the chunks draw masks in another order than one full batch would
    b = FNN([64, 32, 10])
    b.load_state_dict(a.state_dict())
    fit(a, LOSS, DS.x, DS.y, cfg_full)
    fit(b, LOSS, DS.x, DS.y, cfg_chunk)
    assert torch.allclose(params(a), params(b), atol=1e-6)  # the same sum in another order


def test_amp_trains():
    model = make_model()
    res = fit(model, LOSS, DS.x, DS.y, TrainConfig(optimizer="adam", lr=1e-2, steps=30, amp=True))
    assert res.losses[-1] < res.losses[0]
