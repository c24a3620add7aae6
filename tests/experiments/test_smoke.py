"""Every registered experiment runs in its ``smoke`` profile and states well-formed claims."""

from __future__ import annotations

import json

import pytest

from droplab.experiments import CHECK_VERDICTS, VERDICTS, all_experiments, get_experiment, run_experiment

IDS = [e.id for e in all_experiments()]


@pytest.mark.parametrize("exp_id", IDS)
def test_smoke_run(tmp_path, exp_id):
    ctx = run_experiment(exp_id, tmp_path / exp_id, profile="smoke", progress=False)
    assert ctx.complete
    claims = json.loads((tmp_path / exp_id / "claims.json").read_text())
    # a paper that states no result (the SPS poster's OU question) gives measurements only
    assert claims or ctx.metrics, f"{exp_id} states no claim and records no measurement"
    registered = {c.id: c for c in get_experiment(exp_id).claims}
    for c in claims:
        assert c["criterion"] and c["paper"] and c["where"]
        if c["kind"] == "claim":
            assert c["verdict"] in VERDICTS and c["quote"] and c["method"] and c["seeds"] and c["values"]
            assert "met" in c["regime"] and len(c["interval"]) == 2 and c["id"] in registered
            assert c["verdict"] != "inconclusive" or c["reason"], "an inconclusive verdict says why"
        else:
            assert c["kind"] == "check" and c["verdict"] in CHECK_VERDICTS and c["id"] in registered
    for f in ctx.figures:
        assert (tmp_path / exp_id / f["png"]).is_file() and (tmp_path / exp_id / f["pdf"]).is_file()


def test_every_experiment_has_three_profiles_that_build():
    for e in all_experiments():
        for profile in ("smoke", "quick", "paper"):
            e.config.for_profile(profile)
        assert e.paper and e.reproduces


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown experiment id 'nope'; known: .*zzx-flat-minima"):
        get_experiment("nope")
