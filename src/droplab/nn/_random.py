"""The mask engine (private): uniform 32-bit integers and Bernoulli masks from numpy's PCG64, in parallel blocks.

:func:`droplab.nn.laws.bernoulli_noise` is its public face. A stream is keyed by two 64-bit words
(:func:`rng_key`) drawn from a torch generator; any slice of it is reached by PCG64's jump-ahead, so
chunks concatenate to the whole, and large draws are generated as 4 blocks by up to
``torch.get_num_threads()`` threads with the same values for any thread count. Under
``torch.compile`` the draws are the custom ops ``droplab::random_int32`` and ``droplab::bernoulli_mask``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

_RNG_BLOCKS = 4           # a large draw is generated as this many blocks in parallel threads
_RNG_PARALLEL_MIN = 1 << 18
_RNG_PIECE = 1 << 14       # 64-bit words generated at a time (128 KiB)
_rng_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def rng_key(generator: torch.Generator | None = None) -> Tensor:
    """Two 64-bit words drawn from ``generator`` (torch's default one if None): the key of a PCG64 stream."""
    return torch.randint(-2 ** 63, 2 ** 63 - 1, (2,), generator=generator)


def random_int32(count: int, generator: torch.Generator | None = None, *, key: Tensor | None = None,
                 offset: int = 0) -> Tensor:
    """Integers ``offset … offset+count−1`` of a stream of uniform 32-bit integers, as int32, CPU.

    The int32 values are u − 2³¹ for the stream's uint32 integers u (so a per-unit p draws the masks
    of the equal scalar p, except p = ½, which :func:`bernoulli_noise` draws from single bits). The stream is
    numpy's PCG64 seeded (``SeedSequence``) with ``key``, by default a fresh :func:`rng_key` from
    ``generator``. Any slice is reached by PCG64's jump-ahead, so chunks of one stream
    concatenate to the whole, and a draw of ≥ 2¹⁸ integers is generated as 4 blocks by up to
    ``torch.get_num_threads()`` threads (numpy releases the GIL), with the same result for any
    thread count. Under ``torch.compile`` it is the custom op ``droplab::random_int32``, so compiled
    code draws the same integers as eager mode.
    """
    draw = _random_int32_op if torch.compiler.is_compiling() else _random_int32_impl      # eager: no op dispatch
    return draw(rng_key(generator) if key is None else key, offset, count)


def _stream_blocks(key: Tensor, offset: int, count: int, write: Callable[[np.ndarray, int], None],
                   per_word: int = 2) -> None:
    """Call ``write(values, at)`` with values ``offset+at …`` of ``key``'s stream, block by block.

    ``per_word=2``: the uint32 halves of each 64-bit word; ``per_word=64``: its bits (uint8 0/1, low bit first).
    """
    seed = np.random.SeedSequence([k % 2 ** 64 for k in key.tolist()])
    first, last = offset // per_word, -(-(offset + count) // per_word)   # the 64-bit words holding the slice

    def block(lo: int, hi: int) -> None:
        bits = np.random.PCG64(seed)
        if lo:
            bits.advance(lo)
        for start in range(lo, hi, _RNG_PIECE):                       # cache-sized pieces, no large temporaries
            stop = min(hi, start + _RNG_PIECE)
            raw = bits.random_raw(stop - start)
            values = raw.view(np.uint32) if per_word == 2 else np.unpackbits(raw.view(np.uint8), bitorder="little")
            a, b = max(per_word * start, offset), min(per_word * stop, offset + count)
            write(values[a - per_word * start:b - per_word * start], a - offset)

    if count < _RNG_PARALLEL_MIN:
        block(first, last)
        return
    bounds = np.linspace(first, last, _RNG_BLOCKS + 1).astype(np.int64).tolist()
    workers = min(_RNG_BLOCKS, torch.get_num_threads())   # the blocks, hence the integers, do not depend on it
    if workers == 1:
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            block(lo, hi)
    else:
        list(_thread_pool(workers).map(block, bounds[:-1], bounds[1:]))


def _random_int32_impl(key: Tensor, offset: int, count: int) -> Tensor:
    out = np.empty(count, dtype=np.int32)

    def write(u: np.ndarray, at: int) -> None:
        np.bitwise_xor(u, np.uint32(1 << 31), out=out[at:at + len(u)].view(np.uint32))   # u − 2³¹ as int32

    _stream_blocks(key, offset, count, write)
    return torch.from_numpy(out)


_random_int32_op = torch.library.custom_op("droplab::random_int32", _random_int32_impl, mutates_args=())


@_random_int32_op.register_fake
def _(key: Tensor, offset: int, count: int) -> Tensor:
    return key.new_empty(count, dtype=torch.int32)


def _bernoulli_mask_impl(key: Tensor, offset: int, count: int, threshold: int, value: float,
                         double: bool) -> Tensor:
    """``value`` where the stream's uint32 u < ``threshold`` (< 2³²), else 0: float64 if ``double`` else float32.

    Keep exactly ½ (threshold 2³¹) uses one bit of the stream per mask instead of 32: the same law, exact.
    """
    out = np.empty(count, dtype=np.float64 if double else np.float32)
    scalar = out.dtype.type(value)

    def write(u: np.ndarray, at: int) -> None:             # compare and scale inside the worker threads
        np.multiply(np.less(u, threshold), scalar, out=out[at:at + len(u)])

    def write_bits(bits: np.ndarray, at: int) -> None:
        np.multiply(bits, scalar, out=out[at:at + len(bits)])

    if threshold == 2 ** 31:
        _stream_blocks(key, offset, count, write_bits, per_word=64)
    else:
        _stream_blocks(key, offset, count, write)
    return torch.from_numpy(out)


_bernoulli_mask_op = torch.library.custom_op("droplab::bernoulli_mask", _bernoulli_mask_impl, mutates_args=())


@_bernoulli_mask_op.register_fake
def _(key: Tensor, offset: int, count: int, threshold: int, value: float, double: bool) -> Tensor:
    return key.new_empty(count, dtype=torch.float64 if double else torch.float32)


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """This process's pool of ``workers`` mask-generation threads (made on first use, again after a fork)."""
    return _rng_pools.setdefault((os.getpid(), workers), ThreadPoolExecutor(workers))


def in_functorch_transform() -> bool:
    """True inside ``torch.func`` transforms (vmap, grad, …), where fresh noise must come from torch ops.

    ``torch.compile``'s AOT stage also runs under a functorch interpreter; callers test
    ``torch.compiler.is_compiling()`` first (dynamo traces the Python, so the custom op is recorded).
    """
    return torch._C._functorch.peek_interpreter_stack() is not None


def bernoulli_mask(key: Tensor, offset: int, count: int, threshold: int, value: float, double: bool) -> Tensor:
    """``value`` where the stream's uint32 u < ``threshold``, else 0 (flat, CPU); the custom op when compiling."""
    draw = _bernoulli_mask_op if torch.compiler.is_compiling() else _bernoulli_mask_impl   # eager: no op dispatch
    return draw(key, offset, count, threshold, value, double)
