"""Tests never touch the network: any attempt to open a URL fails the test that made it."""

from __future__ import annotations

import io
import urllib.error
import urllib.request

import pytest


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"a test tried to open {url}: tests must stub the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture
def serve(monkeypatch):
    """Stub the network with ``{url: bytes}``: ``urlopen`` returns those bytes, any other URL fails."""
    opened: list[str] = []

    def install(pages: dict[str, bytes]) -> list[str]:
        def urlopen(url, *args, **kwargs):
            opened.append(url)
            if url not in pages:
                raise urllib.error.URLError(f"no route to {url} (stub)")
            return io.BytesIO(pages[url])

        monkeypatch.setattr(urllib.request, "urlopen", urlopen)
        return opened

    return install
