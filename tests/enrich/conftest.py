"""Fixtures of the enrichment tests: every test gets its own cache and journal directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``CLEANLIST_CACHE_DIR`` (result cache, journal, job locks) for each test."""
    d = tmp_path / "cache"
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(d))
    return d
