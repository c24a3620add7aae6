"""reproduce: shared training computed once and equal to a fresh one; parallel workers equal the sequential run;
longest first by the last (else the reference) durations."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import torch
from torch import nn

from droplab.data import Dataset
from droplab.experiments import Experiment, ExperimentConfig, RunContext, reproduce, run_experiment, runner
from droplab.experiments.common import train_stage
from droplab.training import TrainConfig


@dataclass
class NetCfg(ExperimentConfig):
    steps: int = 30


def _train(cfg: NetCfg, ctx: RunContext) -> None:
    g = torch.Generator().manual_seed(0)
    data = Dataset("toy", "train", torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g), 3)
    torch.manual_seed(cfg.seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    metrics = train_stage(ctx, "train", model, nn.functional.cross_entropy, data, data,
                          TrainConfig(optimizer="sgd", lr=0.1, steps=cfg.steps, seed=cfg.seed))
    ctx.log(train_loss=metrics["train_loss"], weight_sum=float(sum(p.detach().sum() for p in model.parameters())))


A = Experiment("test-train-a", "none", "trains a net", NetCfg, _train)
B = Experiment("test-train-b", "none", "trains the same net", NetCfg, _train)


def test_a_shared_training_runs_once_and_equals_a_fresh_one(tmp_path):
    cache = tmp_path / "cache"
    run_experiment(A, tmp_path / "a", profile="smoke", progress=False, cache=cache)
    run_experiment(B, tmp_path / "b", profile="smoke", progress=False, cache=cache)
    fresh = run_experiment(B, tmp_path / "fresh", profile="smoke", progress=False)  # its own, empty cache
    timing = {p: json.loads((tmp_path / p / "timing.json").read_text())[0]["source"] for p in ("a", "b", "fresh")}
    assert timing == {"a": "computed", "b": "shared cache", "fresh": "computed"}
    metrics = [json.loads((tmp_path / p / "metrics.json").read_text()) for p in ("a", "b", "fresh")]
    assert metrics[0] == metrics[1] == metrics[2] and fresh.metrics["train_loss"] > 0


def test_parallel_workers_equal_the_sequential_run(tmp_path):
    only = ("bs-bounds", "bs-linear-exact")
    lines: list[str] = []
    seq, failed_seq = reproduce(tmp_path / "seq", profile="smoke", only=only, progress=False)
    par, failed_par = reproduce(tmp_path / "par", profile="smoke", only=only, progress=False, workers=2,
                                log=lines.append)
    assert not failed_seq and not failed_par and [p.name for p in seq] == [p.name for p in par]
    for a, b in zip(seq, par):
        for name in ("claims.json", "metrics.json"):
            assert (a / name).read_text() == (b / name).read_text(), f"{a.name}/{name} differs"
    assert sum("started" in line for line in lines) == 2 and sum("complete in" in line for line in lines) == 2
    again: list[str] = []
    reproduce(tmp_path / "par", profile="smoke", only=only, progress=False, workers=2, log=again.append)
    assert all("reused (complete earlier)" in line for line in again) and len(again) == 2


def test_the_training_cache_key_tells_closures_of_one_factory_apart():
    from droplab.experiments.common import describe_callable

    def factory(beta: float):
        def loss(out, y):
            return beta * nn.functional.cross_entropy(out, y)
        return loss

    assert describe_callable(factory(1.0)) != describe_callable(factory(2.0))
    assert describe_callable(factory(1.0)) == describe_callable(factory(1.0))


def test_train_stage_snapshots_are_one_run_and_part_of_the_cache_key(tmp_path):
    """Snapshots at steps 2 and 5 of one training equal the final weights of trainings stopped there (one
    optimizer, no restart); asking for other snapshots is another cache entry, the same ones are shared."""
    g = torch.Generator().manual_seed(0)
    data = Dataset("toy", "train", torch.randn(64, 5, generator=g), torch.randint(0, 3, (64,), generator=g), 3)
    ctx = RunContext(tmp_path / "run", "test-snapshots", "smoke", NetCfg(), progress=False)

    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))

    def cfg(steps: int) -> TrainConfig:
        return TrainConfig(optimizer="adam", lr=0.05, steps=steps, batch_size=16, seed=0)

    metrics = train_stage(ctx, "train", net(), nn.functional.cross_entropy, data, None, cfg(8), snapshots=[5, 2])
    assert metrics["snapshot_steps"].tolist() == [2, 5]
    for k, steps in enumerate((2, 5)):
        short = net()
        train_stage(ctx, f"short{steps}", short, nn.functional.cross_entropy, data, None, cfg(steps))
        assert torch.equal(metrics["snapshot_params"][k], nn.utils.parameters_to_vector(short.parameters()))
    train_stage(ctx, "again", net(), nn.functional.cross_entropy, data, None, cfg(8), snapshots=[2, 5])
    train_stage(ctx, "other", net(), nn.functional.cross_entropy, data, None, cfg(8), snapshots=[3])
    sources = {t["stage"]: t["source"] for t in ctx.timing}
    assert sources["again"] == "shared cache" and sources["other"] == "computed"
    ctx.close()


def _started(lines: list[str]) -> list[str]:
    return [line.split("] ")[1].split(":")[0] for line in lines if ": started" in line]


def test_a_fresh_reproduce_runs_longest_first_by_the_durations_it_deletes(tmp_path, monkeypatch):
    only = ("bs-bounds", "bs-linear-exact")          # registry order
    monkeypatch.setattr(runner, "REFERENCE_DURATIONS", tmp_path / "reference.json")
    (tmp_path / "reference.json").write_text(json.dumps({"smoke": {"bs-bounds": 9.0, "bs-linear-exact": 1.0}}))
    out = tmp_path / "run"
    (out / ".cache").mkdir(parents=True)
    (out / ".cache" / "durations.json").write_text(json.dumps({"smoke": {"bs-bounds": 1.0, "bs-linear-exact": 9.0},
                                                               "quick": {"bs-bounds": 60.0}}))
    lines: list[str] = []
    reproduce(out, profile="smoke", only=only, fresh=True, progress=False, log=lines.append)
    assert _started(lines) == ["bs-linear-exact", "bs-bounds"]     # the last run's durations, read before --fresh
    stored = json.loads((out / ".cache" / "durations.json").read_text())
    assert set(stored["smoke"]) == set(only) and "quick" not in stored  # --fresh deleted the cache: measured only
    shutil.rmtree(out / ".cache")
    lines.clear()
    reproduce(out, profile="smoke", only=only, fresh=True, progress=False, log=lines.append)
    assert _started(lines) == ["bs-bounds", "bs-linear-exact"]     # no last run: the reference machine's


def test_durations_of_other_profiles_are_kept(tmp_path):
    out = tmp_path / "run"
    (out / ".cache").mkdir(parents=True)
    (out / ".cache" / "durations.json").write_text(json.dumps({"quick": {"bs-bounds": 60.0}}))
    reproduce(out, profile="smoke", only=("bs-bounds",), progress=False)
    stored = json.loads((out / ".cache" / "durations.json").read_text())
    assert stored["quick"] == {"bs-bounds": 60.0} and set(stored["smoke"]) == {"bs-bounds"}
