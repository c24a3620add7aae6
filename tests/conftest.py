"""Suite-wide settings.

The tests use small models, for which one intra-op thread is as fast as two on an idle machine
and far faster on a shared one (two threads on two busy cores thrash: 30–100× slower, measured
here). Results do not depend on it: every comparison is within one process or against files
written with the same thread count.
"""

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
