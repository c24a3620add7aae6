"""The evidence framework: one decision rule on intervals, regime gates, seeds, the registry."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from droplab.experiments import ClaimSpec, Criterion, claim_listing, decide, interval
from droplab.experiments.claims import evaluate
from droplab.reports import registry_markdown

ABOVE = Criterion(quantity="x", op=">", threshold=0.0)
BELOW = Criterion(quantity="x", op="<", threshold=1.0)
BAND = Criterion(quantity="x", op="within", threshold=0.2, tolerance=0.05)


@pytest.mark.parametrize("criterion, lo, hi, verdict", [
    (ABOVE, 0.1, 0.5, "reproduced"),          # wholly above
    (ABOVE, -0.5, -0.1, "not reproduced"),    # wholly below
    (ABOVE, -0.1, 0.1, "inconclusive"),       # straddles
    (ABOVE, -0.3, 0.0, "not reproduced"),     # touching the threshold from below is not the paper's side
    (ABOVE, 0.0, 0.3, "inconclusive"),
    (BELOW, 0.2, 0.9, "reproduced"),
    (BELOW, 1.0, 2.0, "not reproduced"),
    (BELOW, 0.5, 1.5, "inconclusive"),
    (BAND, 0.16, 0.24, "reproduced"),          # inside the band
    (BAND, 0.3, 0.4, "not reproduced"),        # wholly outside
    (BAND, 0.0, 0.1, "not reproduced"),
    (BAND, 0.1, 0.2, "inconclusive"),          # overlaps the band's edge
    (ABOVE, float("nan"), float("nan"), "inconclusive"),
], ids=lambda v: str(v) if not isinstance(v, Criterion) else v.op)
def test_the_one_decision_rule(criterion, lo, hi, verdict):
    assert decide(criterion, lo, hi) == verdict


def test_t_interval_is_scipys():
    v = [0.3, 0.1, 0.25, 0.4]
    est, (lo, hi) = interval("paired-t", v)
    ref = stats.t.interval(0.95, df=3, loc=np.mean(v), scale=stats.sem(v))
    assert est == pytest.approx(np.mean(v)) and (lo, hi) == pytest.approx(ref)


def test_bootstrap_interval_contains_the_mean_and_is_seeded():
    v = [1.0, 2.0, 2.5, 3.0, 4.0]
    a, b = interval("bootstrap", v), interval("bootstrap", v)
    assert a == b and a[1][0] < 2.5 < a[1][1]


def test_monte_carlo_interval_uses_the_standard_error():
    est, (lo, hi) = interval("mc-se", [0.2], se=0.01)
    assert est == 0.2 and hi - lo == pytest.approx(2 * stats.norm.ppf(0.975) * 0.01)


def test_one_value_gives_no_interval():
    est, (lo, hi) = interval("t", [0.4])
    assert est == 0.4 and math.isnan(lo) and math.isnan(hi)


SPEC = ClaimSpec(id="c", kind="claim", where="eq. 1", statement="x is positive", quote="x > 0",
                 criterion=ABOVE, regime="trained")


def _eval(values, profile="quick", **kw):
    return evaluate(SPEC, experiment="e", paper="P", profile=profile, values=values,
                    seeds=list(range(len(values))), **kw)


def test_reproduced_not_reproduced_and_straddling_from_seed_values():
    assert _eval([0.5, 0.6, 0.55]).verdict == "reproduced"
    assert _eval([-0.5, -0.6, -0.55]).verdict == "not reproduced"
    rec = _eval([0.5, -0.6, 0.1])
    assert rec.verdict == "inconclusive" and "straddles" in rec.reason


def test_a_seed_outside_the_regime_makes_the_claim_inconclusive_with_the_reason():
    rec = _eval([0.5, 0.6, 0.55], regime_met=[True, False, True], regime_reason="ResNet-20 reached 50% test accuracy")
    assert rec.verdict == "inconclusive" and rec.regime["met"] is False
    assert rec.reason == "ResNet-20 reached 50% test accuracy [seeds [1]]"


def test_fewer_seeds_than_the_profile_needs_is_inconclusive():
    rec = _eval([0.5, 0.6])
    assert rec.verdict == "inconclusive" and "needs ≥ 3" in rec.reason
    assert _eval([0.5, 0.52], profile="smoke").verdict == "reproduced"


def test_a_claim_without_quote_criterion_or_regime_cannot_be_registered():
    with pytest.raises(ValueError, match="lacks quote, regime"):
        ClaimSpec(id="c", kind="claim", where="", statement="", criterion=ABOVE)
    with pytest.raises(ValueError, match="kind must be one of"):
        ClaimSpec(id="c", kind="identity", where="", statement="", check="x")
    with pytest.raises(ValueError, match="within' criterion needs tolerance"):
        Criterion(quantity="x", op="within", threshold=1.0)


def test_every_registered_record_has_its_fields():
    listing = claim_listing()
    assert listing and len({r["id"] for r in listing}) == len(listing)
    for r in listing:
        assert r["kind"] in ("claim", "check") and r["criterion"] and r["paper"] and r["where"]
        if r["kind"] == "claim":
            assert r["quote"] and r["regime"] and r["decision"]["method"]


def test_unknown_claim_id_is_one_line():
    with pytest.raises(ValueError, match="unknown claim or experiment id 'nope'"):
        claim_listing(["nope"])


def test_docs_claims_md_is_the_registry():
    """docs/claims.md is generated; regenerate with `droplab claims --markdown > docs/claims.md`."""
    committed = (Path(__file__).parents[2] / "docs" / "claims.md").read_text()
    assert committed == registry_markdown(claim_listing()), "docs/claims.md is stale: regenerate it"


def test_claims_cli_lists_json_without_running():
    out = subprocess.run([sys.executable, "-m", "droplab.cli", "claims", "--json"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert {r["id"] for r in json.loads(out.stdout)} == {r["id"] for r in claim_listing()}
