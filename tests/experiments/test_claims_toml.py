"""Claims as data: each paper package's claims.toml, its loader, and its agreement with the registered experiments."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
import textwrap

import pytest

from droplab.experiments import ClaimSpec, Criterion, all_experiments, claim_listing, load_claims
from droplab.experiments.claims import CLAIMS_FILE, _registered, file_listing
from droplab.experiments.registry import paper_packages

CONVERTED = [p for p in paper_packages() if (importlib.resources.files(p) / CLAIMS_FILE).is_file()]

GOOD = """
paper = "Someone 2020"

[x-claim]
experiment = "x-exp"
kind = "claim"
where = "eq. 3"
statement = "x grows"
quote = \"\"\"\\
    x grows with \\
    "n\\"\"\"\"
regime = "trained"
method = "t"

[x-claim.criterion]
quantity = "slope"
op = ">"
threshold = 0
reading = "any growth"

[x-check]
experiment = "x-exp"
paper = "Someone else 2021"
kind = "check"
where = "eq. 4"
statement = "an identity"
check = "holds to 1e-12"
"""


@pytest.fixture
def package(tmp_path, monkeypatch):
    """Make a throwaway paper package holding ``text`` as its claims.toml; returns its name (a new name each
    time: the loader caches per package)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    count = iter(range(1000))

    def make(text: str | None) -> str:
        name = f"xpkg_{tmp_path.name.replace('-', '_')}_{next(count)}"
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        if text is not None:
            (tmp_path / name / CLAIMS_FILE).write_text(textwrap.dedent(text), encoding="utf-8")
        return name

    return make


def test_a_claims_file_loads_into_the_specs_it_writes_down(package):
    name = package(GOOD)
    specs = load_claims(name)
    assert list(specs) == ["x-claim", "x-check"]
    assert specs["x-claim"] == ClaimSpec(id="x-claim", kind="claim", where="eq. 3", statement="x grows",
                                         quote='x grows with "n"', regime="trained", method="t",
                                         criterion=Criterion(quantity="slope", op=">", threshold=0,
                                                             reading="any growth"))
    assert load_claims(name)["x-claim"] is specs["x-claim"]  # one object per claim: what ctx.claim checks
    rows = file_listing(name)
    assert [(r["experiment"], r["paper"]) for r in rows] == [("x-exp", "Someone 2020"), ("x-exp", "Someone else 2021")]
    assert rows[0]["decision"]["threshold"] == 0 and rows[1]["criterion"] == "holds to 1e-12"


@pytest.mark.parametrize("text, message", [
    ('paper = "P"\n[a]\nexperiment = "e"\nkind = "claim"\nwhere = "w"\nstatement = "s"\n',
     "claim 'a': claim a lacks quote"),
    ('[a]\nexperiment = "e"\nkind = "check"\nwhere = "w"\nstatement = "s"\ncheck = "c"\n', "claim 'a': needs 'paper'"),
    ('paper = "P"\n[a]\nkind = "check"\nwhere = "w"\nstatement = "s"\ncheck = "c"\n', "claim 'a': needs 'experiment'"),
    ('paper = "P"\n[a]\nexperiment = "e"\nkind = "check"\nwhere = "w"\nstatement = "s"\ncheck = "c"\nqoute = "q"\n',
     "claim 'a': ClaimSpec.__init__() got an unexpected keyword argument 'qoute'"),
    ('paper = "P"\n[a]\nexperiment = "e"\nkind = "claim"\nwhere = "w"\nstatement = "s"\nquote = "q"\nregime = "r"\n'
     '[a.criterion]\nquantity = "x"\nop = ">"\nthreshold = "0"\n', "claim 'a': criterion: threshold must be a finite"),
    ('paper = "P"\n[a]\nexperiment = "e"\nkind = "check"\nwhere = 3\nstatement = "s"\ncheck = "c"\n',
     "claim 'a': a: where must be text, got 3"),
    ('paper = "P"\n[a\n', "not valid TOML"),
])
def test_a_malformed_claims_file_is_one_line_naming_the_file_and_the_claim(package, text, message):
    name = package(text)
    with pytest.raises(ValueError) as info:
        load_claims(name)
    text = str(info.value)
    assert message in text and text.startswith(str(importlib.resources.files(name) / CLAIMS_FILE))
    assert "\n" not in text


def test_a_package_without_claims_file_is_one_line(package):
    with pytest.raises(ValueError, match="no such file"):
        load_claims(package(None))


def test_every_claim_of_a_file_is_attached_to_exactly_one_experiment_and_vice_versa():
    registered = {id(s): e.id for e in all_experiments() for s in e.claims}
    for pkg in CONVERTED:
        owned = {e.id for e in all_experiments() if e.run.__module__.startswith(pkg + ".")}
        specs = load_claims(pkg)
        for experiment, _, spec in _registered(pkg):
            assert registered.get(id(spec)) == experiment, f"{spec.id} is not registered by {experiment}"
        attached = [s.id for e in all_experiments() if e.id in owned for s in e.claims]
        assert sorted(attached) == sorted(specs), f"{pkg}: registered claims differ from {CLAIMS_FILE}"
    # the listing read from the files is, row for row and in order, what the experiments register
    assert claim_listing() == [row for e in all_experiments() for row in e.listing()]


def test_claims_files_are_read_without_importing_torch():
    code = ("import sys; from droplab.experiments.claims import file_listing; "
            f"rows = [r for p in {CONVERTED!r} for r in file_listing(p)]; "
            "print(len(rows), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    n, torch_loaded = out.stdout.split()
    assert int(n) == sum(len(load_claims(p)) for p in CONVERTED) and torch_loaded == "False"

