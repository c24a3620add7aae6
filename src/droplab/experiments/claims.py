"""Claims and checks: registered before the run, decided from intervals by one rule.

A **check** tests an identity, a closed form or a property of the implementation: it can fail
only through a bug, proves the code rather than the paper, and never enters the reproduction
tally (its verdict is ``passed`` / ``failed``). A **claim** is a statement of a paper that a
measurement could contradict. Each claim is a :class:`ClaimSpec` declared at module level and
registered with its experiment (``@experiment(..., claims=[...])``). The specs are data: each
paper package keeps them in its ``claims.toml`` (one table per claim id, read by
:func:`load_claims`), so ``droplab claims`` lists every criterion without running, or even
importing, any experiment. A claim's :class:`Criterion` is the paper's own prediction
on a measured quantity; the run supplies per-seed values (or a Monte Carlo estimate and its
standard error), :func:`interval` turns them into a 95% interval with ``scipy.stats``, and
:func:`decide` applies the one decision rule:

* **reproduced** — the interval lies wholly on the paper's side of the criterion's threshold
  (for a band: wholly inside it);
* **not reproduced** — wholly on the other side (for a band: wholly outside it);
* **inconclusive** — it straddles; or fewer seeds than the profile needs; or a seed did not
  reach the regime the claim needs (the reason is recorded in words).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

KINDS = ("claim", "check")
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
CHECK_VERDICTS = ("passed", "failed")
OPS = (">", "<", "within")
METHODS = {
    "t": "95% t-interval over seeds (scipy.stats.t.interval)",
    "paired-t": "95% t-interval over seeds of the paired difference (same seed, same initialization)",
    "bootstrap": "95% BCa bootstrap interval over seeds (scipy.stats.bootstrap, 9,999 resamples)",
    "mc-se": "estimate ± z_0.975 · Monte Carlo standard error (scipy.stats.norm)",
}
PROFILE_NAMES = ("smoke", "quick", "paper")
# Independent seeds a seed-based claim needs per profile (Monte Carlo claims need a standard error).
SEEDS_NEEDED = {"smoke": 2, "quick": 3, "paper": 5}
CLAIMS_FILE = "claims.toml"
CONFIDENCE = 0.95


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _check_types(obj: Any, name: str) -> None:
    """Every field of a spec dataclass holds its declared type (text, or a finite real number)."""
    for f in fields(obj):
        v = getattr(obj, f.name)
        if f.type == "str" and not isinstance(v, str):
            raise TypeError(f"{name}: {f.name} must be text, got {v!r}")
        if f.type == "float" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise TypeError(f"{name}: {f.name} must be a finite number, got {v!r}")


@dataclass(frozen=True)
class Criterion:
    """The paper's prediction on one measured quantity: ``quantity > threshold``, ``< threshold``, or
    ``within`` ``threshold ± tolerance``. ``reading`` says how the paper's words ("≈", "slightly",
    "well within") were turned into these numbers, and why."""

    quantity: str
    op: str
    threshold: float
    tolerance: float = 0.0
    reading: str = ""

    def __post_init__(self) -> None:
        _check_types(self, "criterion")
        if self.op not in OPS:
            raise ValueError(f"Criterion.op must be one of {OPS}, got {self.op!r}")
        if self.tolerance < 0:
            raise ValueError(f"Criterion.tolerance must be >= 0, got {self.tolerance!r}")
        if self.op == "within" and not self.tolerance > 0:
            raise ValueError(f"a 'within' criterion needs tolerance > 0, got {self.tolerance!r}")

    def text(self) -> str:
        """The criterion in words: what the decision rule compares."""
        if self.op == "within":
            lo, hi = self.threshold - self.tolerance, self.threshold + self.tolerance
            rule = (f"reproduced iff the 95% interval of {self.quantity} lies inside [{_fmt(lo)}, {_fmt(hi)}] "
                    f"({_fmt(self.threshold)} ± {_fmt(self.tolerance)}); not reproduced iff it lies wholly outside")
        else:
            other = "<" if self.op == ">" else ">"
            rule = (f"reproduced iff the 95% interval of {self.quantity} lies wholly {self.op} {_fmt(self.threshold)}; "
                    f"not reproduced iff wholly {other}= {_fmt(self.threshold)}")
        return rule + "; inconclusive otherwise." + (f" Reading: {self.reading}" if self.reading else "")


def decide(criterion: Criterion, lo: float, hi: float) -> str:
    """The one decision rule: where the interval ``[lo, hi]`` lies relative to the criterion."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        return "inconclusive"
    t = criterion.threshold
    if criterion.op == ">":
        return "reproduced" if lo > t else "not reproduced" if hi <= t else "inconclusive"
    if criterion.op == "<":
        return "reproduced" if hi < t else "not reproduced" if lo >= t else "inconclusive"
    a, b = t - criterion.tolerance, t + criterion.tolerance
    if a <= lo and hi <= b:
        return "reproduced"
    return "not reproduced" if hi < a or lo > b else "inconclusive"


def interval(method: str, values: Sequence[float], se: float | None = None) -> tuple[float, tuple[float, float]]:
    """Estimate and 95% interval of ``values`` by ``method`` (see :data:`METHODS`).

    ``t`` / ``paired-t``: mean ± t_{n−1} · s/√n; ``bootstrap``: BCa on the mean, seeded; ``mc-se``:
    one estimate ``values[0]`` ± z · ``se``. Fewer than two values (or no ``se``) give ``(nan, nan)``.

    >>> est, (lo, hi) = interval("t", [1.0, 2.0, 3.0])
    >>> est, round(lo, 3), round(hi, 3)
    (2.0, -0.484, 4.484)
    """
    from scipy import stats  # imported on first use: listing claims needs no scipy.stats

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return float("nan"), (float("nan"), float("nan"))
    if method == "mc-se":
        est = float(v[0])
        if se is None or not math.isfinite(se) or se < 0:
            return est, (float("nan"), float("nan"))
        z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
        return est, (est - z * se, est + z * se)
    est = float(v.mean())
    if v.size < 2:
        return est, (float("nan"), float("nan"))
    if np.all(v == v[0]):
        return est, (est, est)
    if method == "bootstrap":
        res = stats.bootstrap((v,), np.mean, confidence_level=CONFIDENCE, n_resamples=9999, method="BCa",
                              random_state=np.random.default_rng(0))
        return est, (float(res.confidence_interval.low), float(res.confidence_interval.high))
    lo, hi = stats.t.interval(CONFIDENCE, df=v.size - 1, loc=est, scale=stats.sem(v))
    return est, (float(lo), float(hi))


@dataclass(frozen=True)
class ClaimSpec:
    """A claim or check of a paper, declared before the run (what ``droplab claims`` lists).

    For ``kind="claim"``: ``quote`` (the paper's words, short), ``criterion``, ``regime`` (what the
    setup must reach for the statement to be testable, in words) and ``method`` are required;
    ``paper_value`` is the paper's own number or reading where it gives one. For ``kind="check"``:
    ``check`` says what must hold exactly (or to a stated tolerance).
    """

    id: str
    kind: str
    where: str
    statement: str
    quote: str = ""
    paper_value: str = ""
    criterion: Criterion | None = None
    method: str = "paired-t"
    regime: str = ""
    check: str = ""
    substitute: str = ""

    def __post_init__(self) -> None:
        _check_types(self, self.id if isinstance(self.id, str) else "claim")
        if not self.id:
            raise ValueError("a claim needs a non-empty id")
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "claim":
            missing = [n for n in ("quote", "criterion", "regime") if not getattr(self, n)]
            if missing:
                raise ValueError(f"claim {self.id} lacks {', '.join(missing)}")
            if self.method not in METHODS:
                raise ValueError(f"claim {self.id}: method must be one of {', '.join(METHODS)}, got {self.method!r}")
        elif not self.check:
            raise ValueError(f"check {self.id} lacks its 'check' text")
        if self.criterion is not None and not isinstance(self.criterion, Criterion):
            raise TypeError(f"{self.id}: criterion must be a Criterion, got {self.criterion!r}")

    def criterion_text(self) -> str:
        return self.criterion.text() if self.criterion is not None else self.check

    def listing(self, experiment: str, paper: str) -> dict[str, Any]:
        """The registered form: everything decided before the run."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "experiment": experiment, "paper": paper,
                               "where": self.where, "statement": self.statement}
        if self.kind == "claim":
            assert self.criterion is not None
            out.update(quote=self.quote, paper_value=self.paper_value, criterion=self.criterion_text(),
                       decision={"quantity": self.criterion.quantity, "op": self.criterion.op,
                                 "threshold": self.criterion.threshold, "tolerance": self.criterion.tolerance,
                                 "method": self.method, "confidence": CONFIDENCE, "seeds_needed": SEEDS_NEEDED},
                       regime=self.regime)
            if self.substitute:
                out["substitute"] = self.substitute
        else:
            out["criterion"] = self.check
        return out


@dataclass
class Record:
    """One evaluated claim or check as written to ``claims.json``."""

    id: str
    kind: str
    experiment: str
    paper: str
    where: str
    statement: str
    criterion: str
    verdict: str
    quote: str = ""
    paper_value: str = ""
    method: str = ""
    seeds: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    estimate: float | None = None
    interval: list[float | None] = field(default_factory=list)
    regime: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    substitute: str = ""
    measured: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def evaluate(spec: ClaimSpec, *, experiment: str, paper: str, profile: str, values: Sequence[float],
             seeds: Sequence[int], regime_met: bool | Sequence[bool] = True,
             regime_values: dict[str, Any] | None = None, regime_reason: str = "", se: float | None = None,
             measured: dict[str, Any] | None = None) -> Record:
    """Evaluate a registered claim: interval by its method, then the decision rule, gated on the regime
    and on the number of seeds. ``values`` are per seed (or one Monte Carlo estimate with ``se``)."""
    assert spec.kind == "claim" and spec.criterion is not None
    values = [float(v) for v in values]
    seeds = [int(s) for s in seeds]
    met_list = [bool(regime_met)] if isinstance(regime_met, bool) else [bool(m) for m in regime_met]
    met = all(met_list) and bool(met_list)
    est, (lo, hi) = interval(spec.method, values, se)
    reason = ""
    if not met:
        failing = [s for s, m in zip(seeds, met_list) if not m] if len(met_list) == len(seeds) else []
        reason = (regime_reason or f"the setup did not reach the regime the claim needs ({spec.regime})") + (
            f" [seeds {failing}]" if failing else "")
        verdict = "inconclusive"
    elif spec.method != "mc-se" and len(seeds) < SEEDS_NEEDED.get(profile, 3):
        reason = f"{len(seeds)} seed(s); the claim needs ≥ {SEEDS_NEEDED.get(profile, 3)} at profile {profile}"
        verdict = "inconclusive"
    else:
        verdict = decide(spec.criterion, lo, hi)
        if verdict == "inconclusive":
            reason = ("no interval (fewer than two finite values)" if not math.isfinite(lo)
                      else "the interval straddles the criterion's threshold")
    return Record(id=spec.id, kind="claim", experiment=experiment, paper=paper, where=spec.where,
                  statement=spec.statement, criterion=spec.criterion_text(), verdict=verdict, quote=spec.quote,
                  paper_value=spec.paper_value, method=spec.method, seeds=seeds, values=values,
                  estimate=_num(est), interval=[_num(lo), _num(hi)],
                  regime={"required": spec.regime, "met": met, "values": regime_values or {}}, reason=reason,
                  substitute=spec.substitute, measured=measured or {})


def check_record(spec: ClaimSpec, *, experiment: str, paper: str, passed: bool,
                 measured: dict[str, Any] | None = None) -> Record:
    """A registered check's record: ``passed`` or ``failed``, never counted among claims."""
    assert spec.kind == "check"
    return Record(id=spec.id, kind="check", experiment=experiment, paper=paper, where=spec.where,
                  statement=spec.statement, criterion=spec.check, verdict="passed" if passed else "failed",
                  measured=measured or {})


def registry_hash(listing: list[dict[str, Any]]) -> str:
    """SHA-256 of the canonical JSON of every registered claim and check."""
    return hashlib.sha256(json.dumps(listing, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@functools.cache
def _registered(package: str) -> tuple[tuple[str, str, ClaimSpec], ...]:
    """``(experiment, paper, spec)`` for each table of ``package``'s ``claims.toml``, in file order.

    The file holds an optional top-level ``paper`` (the default of its entries) and one table per claim id
    with ``experiment`` (the id of the experiment that evaluates it), the :class:`ClaimSpec` fields and a
    ``criterion`` sub-table (the :class:`Criterion` fields). Cached: every caller gets the same objects.
    """
    path = importlib.resources.files(package) / CLAIMS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (package {package} registers no claims)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    paper = data.pop("paper", None)
    out = []
    for cid, entry in data.items():
        try:
            if not isinstance(entry, dict):
                raise TypeError(f"must be a table, got {entry!r}")
            entry = dict(entry)
            experiment, paper_of = entry.pop("experiment", None), entry.pop("paper", paper)
            for key, value in (("experiment", experiment), ("paper", paper_of)):
                if not isinstance(value, str) or not value:
                    raise TypeError(f"needs '{key}' (text), got {value!r}")
            criterion = entry.pop("criterion", None)
            if criterion is not None:
                if not isinstance(criterion, dict):
                    raise TypeError(f"criterion must be a table, got {criterion!r}")
                criterion = Criterion(**criterion)
            spec = ClaimSpec(id=cid, criterion=criterion, **entry)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: claim {cid!r}: {exc}") from None
        out.append((experiment, paper_of, spec))
    return tuple(out)


def load_claims(package: str) -> dict[str, ClaimSpec]:
    """The claims and checks registered in ``package``'s ``claims.toml`` (``__package__`` of an experiment
    module), by id; a one-line error naming the file and the claim for a malformed entry."""
    return {spec.id: spec for _, _, spec in _registered(package)}


def file_listing(package: str) -> list[dict[str, Any]]:
    """The registered form (:meth:`ClaimSpec.listing`) of every entry of ``package``'s ``claims.toml``,
    read without importing any experiment."""
    return [spec.listing(experiment, paper) for experiment, paper, spec in _registered(package)]
