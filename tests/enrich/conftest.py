"""Fixtures of the enrichment tests: every test gets its own cache and journal directory,
and ``client`` is a client of the shared sandbox paced to its scaled window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from enrich_helpers import client_for

import cleanlist_pandas as clp
from cleanlist_pandas.sandbox import Sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[clp.Client]:
    """A client of the ``sandbox`` fixture (closed after the test)."""
    c = client_for(sandbox)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``CLEANLIST_CACHE_DIR`` (result cache, journal, job locks) for each test."""
    d = tmp_path / "cache"
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(d))
    return d
