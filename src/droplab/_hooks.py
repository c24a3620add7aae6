"""Forward hooks that record what modules see and produce: one context manager for every analysis.

:func:`record_outputs` (and :func:`record_inputs`) register a forward hook on each given module for
the block and remove them on exit, whatever happens inside. Each call of a module appends its
detached output (first positional input) to that module's list, so a module called several times
(chunks, repeated passes) keeps every call in order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from torch import Tensor, nn

K = TypeVar("K", bound=Hashable)


@contextmanager
def _record(modules: Mapping[K, nn.Module] | Sequence[nn.Module], inputs: bool) -> Iterator[dict[K, list[Tensor]]]:
    named: Mapping = modules if isinstance(modules, Mapping) else dict(enumerate(modules))
    for key, module in named.items():
        if not isinstance(module, nn.Module):
            raise TypeError(f"modules[{key!r}] must be an nn.Module, got {type(module).__name__}")
    out: dict = {key: [] for key in named}

    def hook(key: K) -> Callable[[nn.Module, tuple, Tensor], None]:
        if inputs:
            return lambda _m, args, _y: out[key].append(args[0].detach())
        return lambda _m, _args, y: out[key].append(y.detach())

    handles = [module.register_forward_hook(hook(key)) for key, module in named.items()]
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


def record_outputs(modules: Mapping[K, nn.Module] | Sequence[nn.Module]
                   ) -> AbstractContextManager[dict[K, list[Tensor]]]:
    """Record every output of the given modules inside the block: ``{key: [output of call 1, ...]}``
    (keys of a mapping, or positions of a sequence); outputs detached, hooks removed on exit.

    >>> import torch
    >>> net = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    >>> with record_outputs({"relu": net[1]}) as out:
    ...     _ = net(torch.ones(4, 3))
    >>> [o.shape for o in out["relu"]]
    [torch.Size([4, 2])]
    """
    return _record(modules, inputs=False)


def record_inputs(modules: Mapping[K, nn.Module] | Sequence[nn.Module]
                  ) -> AbstractContextManager[dict[K, list[Tensor]]]:
    """As :func:`record_outputs`, the first positional input of every call instead."""
    return _record(modules, inputs=True)
