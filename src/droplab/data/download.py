"""Fetching files on request only: HTTPS, verified against a published checksum, archives unpacked safely.

Every file droplab downloads has a checksum published with the data set (the MD5s torchvision and
torchtext check); :func:`download` computes it while the bytes arrive and moves the file into
place only when it matches, so nothing unverified is ever read or unpacked. Tests replace
``urllib.request.urlopen`` with a local stub: they never touch the network.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

_CHUNK = 1 << 20


def _hasher(checksum: str) -> tuple[hashlib._Hash, str]:
    algo, _, expected = checksum.partition(":")
    if algo not in ("md5", "sha256") or not expected:
        raise ValueError(f"checksum must be 'md5:HEX' or 'sha256:HEX', got {checksum!r}")
    return hashlib.new(algo, usedforsecurity=False), expected.lower()


def download(url: str, dest: Path, checksum: str) -> None:
    """Fetch ``url`` (HTTPS only) into ``dest`` if its bytes match ``checksum`` (``"md5:HEX"`` or
    ``"sha256:HEX"``); otherwise delete what was received and raise a one-line ``ValueError``.

    The bytes go to ``dest.part`` first; ``dest`` appears (atomically) only once verified.
    """
    if urllib.parse.urlsplit(url).scheme != "https":
        raise ValueError(f"refusing to download {url}: only HTTPS URLs are fetched")
    digest, expected = _hasher(checksum)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as fh:  # noqa: S310 (https only)
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                fh.write(chunk)
    except OSError as exc:  # URLError, timeouts and a full disk are all OSErrors
        part.unlink(missing_ok=True)
        raise ValueError(f"cannot download {url}: {exc}; nothing was kept") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    got = digest.hexdigest()
    if got != expected:
        part.unlink(missing_ok=True)
        raise ValueError(f"download of {url} does not match its published {digest.name} ({got}, expected "
                         f"{expected}); the partial file was deleted")
    os.replace(part, dest)


def verify_file(path: Path, checksum: str) -> None:
    """Raise a one-line ``ValueError`` unless the bytes of ``path`` match ``checksum``."""
    digest, expected = _hasher(checksum)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ValueError(f"{path} does not match its published {digest.name} ({digest.hexdigest()}, expected "
                         f"{expected}); delete it and download it again")


def extract_tar(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest`` with tarfile's ``"data"`` filter (no absolute paths, no
    ``..``, no links out of ``dest``, no device files); every member is checked before the first
    is written, so a refused archive leaves nothing behind."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                tarfile.data_filter(m, str(dest))
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:  # FilterError (e.g. '../escape') is a TarError
        raise ValueError(f"refusing archive {archive}: {exc}") from None
