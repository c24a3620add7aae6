"""Atomic writes: the umask's permissions, no temporaries left; JSON reads that name the file."""

from __future__ import annotations

import os

import pytest

from droplab import _io


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_umask_permissions(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        _io.write_json(tmp_path / "a.json", {"x": 1})
        _io.write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


@pytest.mark.parametrize("text,expect,match", [
    (None, None, "x.json is missing"),
    ("{oops", None, "x.json is not readable JSON: "),
    ("[1, 2]", dict, "x.json must hold a JSON object, got list"),
    ("{}", list, "x.json must hold a JSON array, got dict"),
])
def test_read_json_names_the_file(tmp_path, text, expect, match):
    if text is not None:
        (tmp_path / "x.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        _io.read_json(tmp_path / "x.json", expect)
