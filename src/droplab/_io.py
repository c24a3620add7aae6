"""Atomic file writes and safe loading: a reader never sees a half-written result.

Files are created with mode ``0o666`` less the process umask, as ``open()`` would create them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path`` (a hidden ``.NAME.RANDOM.tmp``), mode 0o666 less the umask."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary of the atomic writer (left behind only by a killed process)."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(".tmp")


def _replace_with(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
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


def read_json(path: Path, expect: type | None = None) -> Any:
    """Read a JSON file; a one-line ``ValueError`` naming the file if it is missing, unreadable, not
    JSON, or (with ``expect``: ``dict`` or ``list``) not a JSON object / array."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not readable JSON: {exc}") from None
    if expect is not None and not isinstance(value, expect):
        kind = {dict: "a JSON object", list: "a JSON array"}.get(expect, expect.__name__)
        raise ValueError(f"{path} must hold {kind}, got {type(value).__name__}")
    return value


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
