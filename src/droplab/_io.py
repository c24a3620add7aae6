"""Atomic file writes and safe loading: a reader never sees a half-written result."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch


def _replace_with(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_jsonable(obj: Any) -> Any:
    """Convert tensors, numpy values, tuples and dataclass-like dicts to plain JSON values."""
    if isinstance(obj, torch.Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return obj.tolist()
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False)
    _replace_with(path, lambda fh: fh.write(text + "\n"), "w")


def write_text(path: Path, text: str) -> None:
    """Write text atomically."""
    _replace_with(path, lambda fh: fh.write(text), "w")


def write_bytes(path: Path, data: bytes) -> None:
    """Write bytes atomically."""
    _replace_with(path, lambda fh: fh.write(data), "wb")


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write a list of flat dicts as CSV (columns = union of keys, first-seen order), atomically."""
    rows = [to_jsonable(r) for r in rows]
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def torch_save(path: Path, obj: Any) -> None:
    """``torch.save`` atomically (checkpoints, cached stages)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


def torch_load(path: Path) -> Any:
    """Load a file written by :func:`torch_save` with ``weights_only=True``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file is reported in one line, not a traceback
        raise ValueError(f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
