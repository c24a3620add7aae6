"""Suite-wide settings.

The tests use small models, for which one intra-op thread is as fast as two on an idle machine
and far faster on a shared one (two threads on two busy cores thrash: 30–100× slower, measured
here). Results do not depend on it: every comparison is within one process or against files
written with the same thread count.
"""

import sys
from collections.abc import Callable

import pytest
import torch

torch.set_num_threads(1)


def _raises_one_line(call: Callable[[], object], match: str, error: type[Exception] = ValueError) -> None:
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.fixture
def raises_one_line() -> Callable[..., None]:
    """``raises_one_line(call, match, error=ValueError)``: ``call()`` raises ``error`` with a one-line message."""
    return _raises_one_line


@pytest.fixture
def droplab(monkeypatch, capsys):
    """The console entry in this process: ``droplab(*args)`` → (exit code, stdout, stderr lines).

    An exception the entry does not turn into one line propagates, failing the test.
    """
    from droplab.cli import entry

    monkeypatch.delenv("DROPLAB_DATA", raising=False)  # --data-dir sets it: undone after the test

    def call(*args: str) -> tuple[int, str, list[str]]:
        monkeypatch.setattr(sys, "argv", ["droplab", *args])
        capsys.readouterr()
        try:
            entry()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out, err = capsys.readouterr()
        return code, out, [line for line in err.splitlines() if line.strip()]

    return call
