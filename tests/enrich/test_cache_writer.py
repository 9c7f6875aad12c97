"""The cache's background writer (``ResultCache.put_many_later``) and its one-pass encoder.

The engine's loop hands each finished workflow's results to the cache without waiting on the
disk: a writer thread stores them in batches. What is stored must be exactly what
``put_many`` stores (the same JSON text), nothing queued may be lost by ``flush``/``close``,
a failed write must not stop the writer, and the batching must hold results back only until
it is due.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from enrich_helpers import SCOPE

import cleanlist_pandas.store.cache as cache_mod
from cleanlist_pandas.store.cache import ResultCache, encode_results

#: How the cache encoded each result before the one-pass encoder (kept verbatim).
OLD_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode

ODD_TEXT = [
    "", "plain", 'quo"te', "back\\slash", "tab\there", "new\nline", "nul\x00", "é ñ ü",
    "日本語", "emoji 😀", "\ud800 lone surrogate", "\u2028\u2029", ",", "},{", "],[",
    '","', cache_mod._CUT, "x" + cache_mod._CUT + "y", json.dumps(cache_mod._CUT),
]


#: SQLite stores UTF-8: a lone surrogate can be encoded, not stored (neither way can)
STORABLE = [t for t in ODD_TEXT if "\ud800" not in t]


def _value(rng: random.Random, texts: list[str], depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return {
            rng.choice(texts): _value(rng, texts, depth + 1) for _ in range(rng.randint(0, 3))
        }
    if depth < 3 and roll < 0.3:
        return [_value(rng, texts, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.choice(
        [*texts, None, True, False, 0, -1, 2**70, 1.5, 1e300, -0.0,
         dt.datetime(2026, 1, 2, 3, 4, 5), dt.date(2026, 1, 2)]
    )


def _results(rng: random.Random, n: int, texts: list[str] = ODD_TEXT) -> list[dict[str, Any]]:
    out = []
    for k in range(n):
        res: dict[str, Any] = {"task_id": f"t{k}", "status": "completed"}
        for _ in range(rng.randint(0, 6)):
            res[rng.choice([*texts, "primary_email", "prospect"])] = _value(rng, texts)
        out.append(res)
    return out


@pytest.mark.parametrize("seed", range(200))
def test_one_pass_encoding_is_the_per_result_encoding(seed: int) -> None:
    rng = random.Random(seed)
    results = _results(rng, rng.choice([0, 1, 2, 3, 10, 250]))
    assert encode_results(results) == [OLD_ENCODE(r) for r in results]


def test_marker_inside_a_result_falls_back_to_one_by_one() -> None:
    results = [{"a": cache_mod._CUT}, {cache_mod._CUT: 1}, {"b": [cache_mod._CUT, 2]}, {}]
    assert encode_results(results) == [OLD_ENCODE(r) for r in results]


def test_a_circular_result_is_refused_as_before() -> None:
    loop: dict[str, Any] = {"status": "completed"}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular"):
        OLD_ENCODE(loop)
    with pytest.raises(ValueError, match="Circular"):
        encode_results([{"status": "completed"}, loop])


def _stored(cache: ResultCache, t: str = "partial") -> dict[str, tuple[str, Any, Any]]:
    with cache._lock:
        rows = cache.conn.execute(
            "SELECT fingerprint, result, workflow_id, task_id FROM results"
            " WHERE enrichment_type = ?",
            (t,),
        ).fetchall()
    return {fp: (res, wf, tid) for fp, res, wf, tid in rows}


def test_queued_writes_store_what_put_many_stores(tmp_path: Path) -> None:
    rng = random.Random(7)
    entries = [
        (f"fp{k}", r, f"wf{k % 3}", k if k % 4 == 0 else r["task_id"])
        for k, r in enumerate(_results(rng, 600, STORABLE))
    ]
    entries[5][1]["status"] = "failed"  # never cached
    with (
        ResultCache(tmp_path / "a", scope=SCOPE) as a,
        ResultCache(tmp_path / "b", scope=SCOPE) as b,
    ):
        a.put_many(entries, "partial")
        for i in range(0, len(entries), 250):
            b.put_many_later(entries[i : i + 250], "partial")
        assert b.flush(timeout=30)
        assert _stored(b) == _stored(a)
        assert "fp5" not in _stored(b)


def test_the_last_queued_entry_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "CACHE_WRITE_DELAY_S", 3600.0)
    with ResultCache(tmp_path, scope=SCOPE) as c:
        c.put_many_later([("fp", {"status": "completed", "v": 1}, "w1", "t1")], "partial")
        c.put_many_later([("fp", {"status": "completed", "v": 2}, "w2", "t2")], "partial")
        c.put_many_later([("fp", {"status": "completed", "v": 3}, "w3", "t3")], "full")
        c.flush()
        assert c.get_many(["fp"], "partial")["fp"].result["v"] == 2
        assert c.get_many(["fp"], "full")["fp"].result["v"] == 3


def test_writes_wait_until_due_then_go_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_mod, "CACHE_WRITE_DELAY_S", 3600.0)
    monkeypatch.setattr(cache_mod, "CACHE_WRITE_BATCH", 100)
    transactions: list[int] = []
    with ResultCache(tmp_path, scope=SCOPE) as c:
        put_many = c.put_many

        def counting(entries: Any, t: str) -> int:
            transactions.append(len(entries))
            return put_many(entries, t)

        c.put_many = counting  # type: ignore[method-assign]
        done = {"status": "completed"}
        c.put_many_later([(f"a{k}", done, "w", None) for k in range(60)], "partial")
        time.sleep(0.2)
        assert c.get_many(["a0"], "partial") == {}  # not due: held back
        c.put_many_later([(f"b{k}", done, "w", None) for k in range(60)], "partial")
        deadline = time.monotonic() + 10
        while not c.get_many(["b59"], "partial") and time.monotonic() < deadline:
            time.sleep(0.01)  # due by size: written without a flush
        assert len(c.get_many([f"a{k}" for k in range(60)], "partial")) == 60
        assert transactions == [120]  # both batches in one transaction


def test_writes_are_due_after_the_delay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "CACHE_WRITE_DELAY_S", 0.05)
    with ResultCache(tmp_path, scope=SCOPE) as c:
        c.put_many_later([("fp", {"status": "completed"}, "w", None)], "partial")
        deadline = time.monotonic() + 10
        while not c.get_many(["fp"], "partial") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.get_many(["fp"], "partial")


def test_close_writes_the_queue_and_stops_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_mod, "CACHE_WRITE_DELAY_S", 3600.0)
    c = ResultCache(tmp_path, scope=SCOPE)
    c.put_many_later([("fp", {"status": "completed"}, "w", "t")], "partial")
    writer = c._writer
    assert writer is not None and writer.is_alive()
    c.close()
    assert not writer.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        c.put_many_later([("fp2", {"status": "completed"}, "w", "t")], "partial")
    c.close()  # idempotent
    with ResultCache(tmp_path, scope=SCOPE) as again:
        assert list(again.get_many(["fp"], "partial")) == ["fp"]


def test_a_failed_write_is_logged_and_the_writer_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with ResultCache(tmp_path, scope=SCOPE) as c:
        put_many = c.put_many
        calls = {"n": 0}

        def flaky(entries: Any, t: str) -> int:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("disk full")
            return put_many(entries, t)

        c.put_many = flaky  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="cleanlist_pandas.store.cache"):
            c.put_many_later([("lost", {"status": "completed"}, "w", None)], "partial")
            assert c.flush(timeout=30)
        assert "could not write 1 results" in caplog.text
        c.put_many_later([("kept", {"status": "completed"}, "w", None)], "partial")
        assert c.flush(timeout=30)
        assert list(c.get_many(["lost", "kept"], "partial")) == ["kept"]


def test_threads_queue_at_once(tmp_path: Path) -> None:
    with ResultCache(tmp_path, scope=SCOPE) as c:

        def queue(n: int) -> None:
            for k in range(20):
                c.put_many_later([(f"t{n}-{k}", {"status": "completed"}, "w", None)], "full")

        threads = [threading.Thread(target=queue, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert c.flush(timeout=30)
        assert len(_stored(c, "full")) == 80


def test_an_empty_batch_starts_nothing(tmp_path: Path) -> None:
    with ResultCache(tmp_path, scope=SCOPE) as c:
        c.put_many_later([], "partial")
        assert c._writer is None
        assert c.flush(timeout=1)


def test_held_writes_wait_for_flush_or_close(tmp_path: Path) -> None:
    # at the end of a run the timer's write would take the interpreter lock from the merge:
    # held, nothing is written until flush() (the finisher) or close()
    c = ResultCache(tmp_path, scope=SCOPE)
    c.hold_writes()
    c.put_many_later([("fp1", {"status": "completed"}, "wf", "t1")], "partial")
    time.sleep(cache_mod.CACHE_WRITE_DELAY_S * 3)
    assert c.busy and not list(c.get_many(["fp1"], "partial"))
    assert c.flush() and not c.busy
    assert list(c.get_many(["fp1"], "partial")) == ["fp1"]
    c.put_many_later([("fp2", {"status": "completed"}, "wf", "t2")], "partial")
    c.close()  # writes what is queued
    with ResultCache(tmp_path, scope=SCOPE) as again:
        assert list(again.get_many(["fp2"], "partial")) == ["fp2"]


def test_encoding_is_sliced_so_the_lock_is_never_held_long(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    # one encoder call for a whole write held the interpreter lock ~25 ms at the end of a
    # 5,000-row run; each call now encodes at most ENCODE_SLICE results, and the text is
    # the same
    sizes: list[int] = []
    real = cache_mod.encode_results

    def counting(results: Any) -> list[str]:
        sizes.append(len(results))
        return real(results)

    monkeypatch.setattr(cache_mod, "encode_results", counting)
    rows = [(f"fp{i}", {"status": "completed", "i": i}, "wf", f"t{i}") for i in range(1000)]
    with ResultCache(tmp_path, scope=SCOPE) as c:
        assert c.put_many(rows, "partial") == 1000
        got = c.get_many([f"fp{i}" for i in range(1000)], "partial")
        assert got["fp999"].result == {"status": "completed", "i": 999}
    assert max(sizes) <= cache_mod.ENCODE_SLICE and sum(sizes) == 1000
