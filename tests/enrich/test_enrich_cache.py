"""ResultCache: round trip, expiry, 0600, clear, stats, what is cached, threads."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from enrich_helpers import SCOPE

from cleanlist_pandas._constants import CACHE_FILENAME
from cleanlist_pandas.store.cache import ResultCache
from cleanlist_pandas.store.files import default_cache_dir

DONE = {"status": "completed", "primary_email": "a@x.io", "prospect": {"full_name": "Ä 😀"}}


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_round_trip_and_types(tmp_path: Path) -> None:
    with ResultCache(tmp_path, scope=SCOPE) as c:
        n = c.put_many(
            [
                ("f1", DONE, "wf1", "t1"),
                ("f2", {"status": "completed", "primary_email": None}, "wf1", "t2"),
                ("f3", {"status": "failed", "error": "x"}, "wf1", "t3"),
                ("f4", {"status": "pending"}, "wf1", "t4"),
            ],
            "partial",
        )
        assert n == 2  # failed and pending are never cached
        got = c.get_many(["f1", "f2", "f3", "f4", "nope", "f1"], "partial")
        assert set(got) == {"f1", "f2"}
        assert got["f1"].result == DONE and got["f1"].workflow_id == "wf1"
        assert got["f1"].task_id == "t1" and got["f1"].stored_at > 0
        assert c.get_many(["f1"], "full") == {}  # key includes the type
        # replace
        c.put_many([("f1", {**DONE, "primary_email": "b@x.io"}, "wf2", "t9")], "partial")
        assert c.get_many(["f1"], "partial")["f1"].result["primary_email"] == "b@x.io"
    # persists across instances
    with ResultCache(tmp_path, scope=SCOPE) as c2:
        assert set(c2.get_many(["f1", "f2"], "partial")) == {"f1", "f2"}


def test_file_mode_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with ResultCache(tmp_path / "sub", scope=SCOPE) as c:
            c.put_many([("f", DONE, None, None)], "partial")
            for p in (c.path, Path(str(c.path) + "-wal")):
                if p.exists():
                    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
            assert stat.S_IMODE(os.stat(tmp_path / "sub").st_mode) == 0o700
    finally:
        os.umask(old)


def test_expiry_purge_clear_stats(tmp_path: Path) -> None:
    clock = Clock()
    with ResultCache(tmp_path, max_age=100, clock=clock, scope=SCOPE) as c:
        c.put_many([("old", DONE, None, None)], "partial")
        clock.t += 60
        c.put_many([("new", DONE, None, None)], "full")
        clock.t += 50  # old is 110 s old, new 50 s
        assert set(c.get_many(["old", "new"], "partial")) == set()
        assert set(c.get_many(["new"], "full")) == {"new"}
        s = c.stats()
        assert (s["entries"], s["expired"], s["by_type"]) == (1, 1, {"full": 1})
        assert s["path"].endswith(CACHE_FILENAME) and s["size_bytes"] > 0
        assert c.purge_expired() == 1 and c.stats()["expired"] == 0
        assert c.delete_many(["new"], "partial") == 0
        assert c.clear() == 1 and c.stats()["entries"] == 0
        assert "max_age=100s" in repr(c)


def test_env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    with ResultCache(scope=SCOPE) as c:
        assert c.path == tmp_path / "env" / CACHE_FILENAME
    monkeypatch.delenv("CLEANLIST_CACHE_DIR")
    assert "cleanlist-pandas" in str(default_cache_dir())


def test_many_and_threads(tmp_path: Path) -> None:
    with ResultCache(tmp_path, scope=SCOPE) as c:
        keys = [f"{i:032x}" for i in range(5000)]
        assert c.put_many(((k, DONE, "w", k) for k in keys), "full") == 5000
        errors: list[BaseException] = []

        def worker(part: list[str]) -> None:
            try:
                assert len(c.get_many(part, "full")) == len(part)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        ts = [threading.Thread(target=worker, args=(keys[i::4],)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors
        assert c.delete_many(keys[:10]) == 10
    with pytest.raises(RuntimeError, match="closed"):
        c.get_many(["x"], "full")
    c.close()  # idempotent


def test_repeated_fingerprint_in_one_put_keeps_the_last_entry(tmp_path: Path) -> None:
    """put_many sorts by key before inserting; the sort is stable, so the last one wins."""
    with ResultCache(tmp_path, scope=SCOPE) as c:
        entries = [
            ("b", {**DONE, "primary_email": "1@x.io"}, "w1", "t1"),
            ("a", {**DONE, "primary_email": "a@x.io"}, "w", "ta"),
            ("b", {**DONE, "primary_email": "2@x.io"}, "w2", "t2"),
        ]
        assert c.put_many(entries, "full") == 3
        got = c.get_many(["b", "a", "b", "zz"], "full")
        assert set(got) == {"a", "b"}
        assert got["b"].result["primary_email"] == "2@x.io" and got["b"].workflow_id == "w2"
