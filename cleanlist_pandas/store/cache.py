"""A local cache of enrichment results, so a re-run never pays twice for the same contact.

One SQLite file, ``results.sqlite3`` in ``$CLEANLIST_CACHE_DIR`` or
``platformdirs.user_cache_dir("cleanlist-pandas")``, opened by
:class:`~cleanlist_pandas.store.files.SQLiteFile` like the job journal: mode 0600 from the start
(it holds personal data; the directory is created 0700), WAL. The key is
``(fingerprint, enrichment_type, origin, organization_id)`` (``fingerprint`` from
:func:`cleanlist_pandas.frame.plan.fingerprint`; the origin and organization are the
:class:`~cleanlist_pandas.store.provenance.Scope` of the run that paid for it); the value is the
result object as JSON, the ``workflow_id`` and ``task_id`` it came from, and ``stored_at``.

**Every result knows where it came from.** A :class:`ResultCache` opened with a ``scope``
reads and writes only that scope's results: a sandbox's results never serve a run against
another server, and no organization's results serve another's. Opened without one, it can
only be inspected and erased (``cache info``, ``clear``, ``forget``, retention).

**Results from before attribution** (a cache written by version 0.1, whose rows say
nothing of their origin) cannot be attributed — a sandbox's workflow ids look like the
real API's — so the first open moves them, once, to the table ``results_unattributed``:
never served again, counted by ``cleanlist-pandas cache info``, erased by ``forget()``,
``cache clear`` and the retention like any result.

What is cached: only *final, successful look-ups* — task status ``completed``, including
completed-but-nothing-found (the API charges nothing for it and would most likely answer the
same). ``failed`` tasks and anything still pending are never cached, so a re-run retries
them. Entries older than ``max_age`` (the retention: ``clp.configure(max_age=...)``, default
30 days) are ignored by ``get_many`` and removed by ``purge_expired`` — which also runs once
per process and file, when the cache is first opened (a cheap ``DELETE``), so personal data
does not outlive the retention on a machine that keeps enriching.

Next to the results, table ``identities`` maps the digests of what a person knows of
themselves — their LinkedIn profile, their name at their company's domain or name
(:func:`cleanlist_pandas.frame.plan.identity_digests`: keyed hashes, no personal data in
clear) — to the fingerprints of the contacts a run sent or collected for them, whatever
other fields those had, so ``clp.forget()`` finds every one of them. It is written by the
background writer with the results (:meth:`ResultCache.put_identities_later`), and follows
the retention like the results.

Table ``pilot_rates`` keeps what ``df.cleanlist.pilot()`` measured —
rates and counts only, never a name, address or phone — keyed by enrichment type and column
mapping, so ``estimate()`` can show the expected credits (:meth:`ResultCache.put_pilot`,
:meth:`ResultCache.latest_pilot`). Clearing the results leaves them.

Threading: one :class:`ResultCache` may be shared by threads (e.g. the caller's thread and
the engine's asyncio loop thread): it holds one connection opened with
``check_same_thread=False`` and serializes every method with the file's lock. Calls block (short,
batched statements); from a coroutine, use :meth:`ResultCache.put_many_later`, which hands the
batch to one background writer thread and returns at once (a run's loop thread then never
waits on the disk: random keys make each insert dirty about one page, so a workflow's 250
results cost a few milliseconds of writes and, now and then, a WAL checkpoint's fsync);
:meth:`~ResultCache.flush` waits for what is queued, and :meth:`~ResultCache.close` flushes
first. Several processes may use the same file (SQLite locking, 5 s busy timeout).

>>> import tempfile
>>> d, scope = tempfile.mkdtemp(), Scope("https://api.cleanlist.ai", "org_1")
>>> c = ResultCache(d, scope=scope)
>>> c.put_many([("fp1", {"status": "completed", "primary_email": "a@x.io"}, "wf", "t1")],
...            "partial")
1
>>> c.get_many(["fp1", "fp2"], "partial")["fp1"].result["primary_email"]
'a@x.io'
>>> ResultCache(d, scope=Scope("http://127.0.0.1:8765", "org_1")).get_many(["fp1"], "partial")
{}
>>> c.close()
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from cleanlist_pandas._constants import (
    CACHE_FILENAME,
    CACHE_WRITE_BATCH,
    CACHE_WRITE_DELAY_S,
    SQLITE_IN_BATCH,
)
from cleanlist_pandas._perf import gc_paused
from cleanlist_pandas.errors import UserValueError
from cleanlist_pandas.store.files import SQLiteFile, default_cache_dir, first_open_in_process
from cleanlist_pandas.store.provenance import Scope
from cleanlist_pandas.types import CachedResult

__all__ = [
    "ResultCache",
    "encode_results",
]

_SCHEMA_VERSION = 2
#: results are keyed by where they came from (version 2); see :func:`_migrate`
_RESULTS_TABLE = """
CREATE TABLE IF NOT EXISTS results (
    fingerprint TEXT NOT NULL,
    enrichment_type TEXT NOT NULL,
    origin TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    result TEXT NOT NULL,
    workflow_id TEXT,
    task_id TEXT,
    stored_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, enrichment_type, origin, organization_id)
) WITHOUT ROWID;
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pilot_rates (
    enrichment_type TEXT NOT NULL,
    mapping TEXT NOT NULL,
    stored_at REAL NOT NULL,
    record TEXT NOT NULL,
    origin TEXT,
    organization_id TEXT
);
CREATE INDEX IF NOT EXISTS pilot_rates_key ON pilot_rates(enrichment_type, mapping, stored_at);
CREATE TABLE IF NOT EXISTS identities (
    digest TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    stored_at REAL NOT NULL,
    PRIMARY KEY (digest, fingerprint)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS identities_fingerprint ON identities(fingerprint);
"""
#: where results from before attribution are kept, never served (see the module doc)
UNATTRIBUTED = "results_unattributed"
#: the tables holding result objects (personal data): erasure and retention cover both
_RESULT_TABLES = ("results", UNATTRIBUTED)
_BATCH = SQLITE_IN_BATCH

log = logging.getLogger(__name__)

#: How a result object is stored: compact, UTF-8 as is, anything not JSON as its str().
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
#: Put between the results of one batch so that a single encoder call can be cut back into
#: one text per result (see :func:`encode_results`).
_CUT = "\x00cleanlist-pandas:cut\x00"
_CUT_TEXT = "," + _ENCODE(_CUT) + ","


#: results per JSON encoder call when the cache writes (see ``ResultCache._encode``)
ENCODE_SLICE: Final = 200


def encode_results(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The JSON text of each result object, as the cache stores it, in one encoder pass.

    Encoding results one by one pays the encoder's set-up per call (about as much as the
    encoding itself for a result object); one call encodes the whole list with a marker
    string between the results, and the text is cut at the markers. A result holding the
    marker's exact text (a string no API sends) makes the count of cuts wrong, and then
    each result is encoded alone, as before.

    >>> encode_results([{"a": 1}, {"b": ["x", None]}, {}])
    ['{"a":1}', '{"b":["x",null]}', '{}']
    >>> encode_results([{"a": _CUT}, {"b": 2}]) == [_ENCODE({"a": _CUT}), '{"b":2}']
    True
    """
    n = len(results)
    if n < 2:
        return [_ENCODE(r) for r in results]
    spaced: list[Any] = [_CUT] * (2 * n - 1)
    spaced[::2] = results
    parts = _ENCODE(spaced)[1:-1].split(_CUT_TEXT)
    if len(parts) != n:
        return [_ENCODE(r) for r in results]
    return parts


def _first_item(row: tuple[Any, ...]) -> Any:
    return row[0]


def _seconds(v: float | timedelta) -> float:
    return v.total_seconds() if isinstance(v, timedelta) else float(v)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _migrate(file: SQLiteFile) -> None:
    """Bring a cache file to the current schema, once (safe when processes race: the check
    is repeated inside the write transaction).

    Version 1 kept results by ``(fingerprint, enrichment_type)`` only. Nothing in such a row
    tells which server or organization paid for it, so it is moved to
    ``results_unattributed`` (kept until the retention removes it, never served); the
    pilot rates of version 1 get empty origin and organization columns, so they are never
    used for another scope's estimate.
    """
    with file.lock:
        conn = file.conn
        if conn.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION:
            return
        with file.transaction():
            if conn.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION:
                return
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "results" in tables and "origin" not in _columns(conn, "results"):
                if UNATTRIBUTED in tables:  # an earlier half-done move: keep both
                    conn.execute(f"INSERT OR REPLACE INTO {UNATTRIBUTED} SELECT * FROM results")
                    conn.execute("DROP TABLE results")
                else:
                    conn.execute(f"ALTER TABLE results RENAME TO {UNATTRIBUTED}")
            conn.execute(_RESULTS_TABLE)
            cols = _columns(conn, "pilot_rates")
            for col in ("origin", "organization_id"):
                if col not in cols:
                    conn.execute(f"ALTER TABLE pilot_rates ADD COLUMN {col} TEXT")
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")


class ResultCache:
    """SQLite-backed cache of result objects, keyed by fingerprint, enrichment type and
    :class:`~cleanlist_pandas.store.provenance.Scope` (origin and organization).

    Args:
        cache_dir: directory of the file (default :func:`default_cache_dir`).
        scope: whose results to read and write (None: inspect and erase only —
            :meth:`get_many` finds nothing, writing raises ``ValueError``).
        max_age: entries older than this (seconds or timedelta) are ignored and purged;
            default the retention (``clp.configure(max_age=...)``, else 30 days). The first
            ``ResultCache`` of a file in a process purges the expired entries.
        clock: returns the current Unix time (for tests).

    >>> import tempfile
    >>> with ResultCache(tempfile.mkdtemp(), max_age=60) as c:
    ...     c.stats()["entries"]
    0
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        scope: Scope | None = None,
        max_age: float | timedelta | None = None,
        clock: Any = time.time,
    ) -> None:
        from cleanlist_pandas.config import retention_seconds

        self.dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = self.dir / CACHE_FILENAME
        self.scope = scope
        self.max_age = retention_seconds() if max_age is None else _seconds(max_age)
        self._clock = clock
        self._file = SQLiteFile(self.path, schema=_SCHEMA, name="ResultCache")
        try:
            _migrate(self._file)
        except BaseException:
            self._file.close(wait=True)
            raise
        self._lock = self._file.lock
        # the background writer of put_many_later: the batches queued (and how many
        # results, and since when), whether one is being written, how many callers wait in
        # flush(), and the thread (started on first use, stopped by close)
        # a batch of results and its type, or (a function computing identity rows, "")
        self._queue: list[tuple[Any, str]] = []
        self._queued_n = 0
        self._queued_at = 0.0
        self._writing = False
        self._flushing = 0
        self._stopping = False
        self._held = False  # hold_writes(): only flush() or close() write
        self._writer: threading.Thread | None = None
        self._queued = threading.Condition(threading.Lock())
        #: batches the writer could not write (logged); a run that sees any keeps its
        #: journal job open, so the next run reads those workflows again (free)
        self.failed_writes = 0
        if first_open_in_process(self.path, "retention"):
            # busy in another process: leave it, the next process to open the file purges
            with contextlib.suppress(sqlite3.OperationalError):
                self.purge_expired()

    # ------------------------------------------------------------------ plumbing
    @property
    def conn(self) -> sqlite3.Connection:
        """The SQLite connection (``RuntimeError`` once closed); hold the lock to use it."""
        return self._file.conn

    def close(self) -> None:
        """Write what :meth:`put_many_later` queued, then close the connection (idempotent)."""
        with self._queued:
            self._stopping = True
            self._queued.notify_all()
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        self._file.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultCache({str(self.path)!r}, max_age={self.max_age:g}s)"

    def _cutoff(self) -> float:
        return self._clock() - self.max_age

    # ------------------------------------------------------------------ API
    def get_many(
        self, fingerprints: Iterable[str], enrichment_type: str
    ) -> dict[str, CachedResult]:
        """Fresh entries for these fingerprints: ``{fingerprint: CachedResult}``.

        Missing and expired fingerprints are absent from the answer. Batched (``IN`` lists
        of 900), so 100k look-ups are ~110 small queries; the JSON is decoded lazily
        (``CachedResult.result``, or :func:`decode_many` for many at once). The keys are
        queried in sorted order, so each batch reads neighbouring B-tree pages (100k random
        fingerprints: 0.8 s → 0.15 s).
        """
        scope = self.scope
        if scope is None:  # whose results? nobody's can be served
            return {}
        fps = list(dict.fromkeys(fingerprints))
        with contextlib.suppress(TypeError):
            fps = sorted(fps)  # (a copy: unchanged if keys do not compare)
        cutoff = self._cutoff()
        rows: list[tuple[str, str, str | None, str | None, float]] = []
        with self._lock:
            conn = self.conn
            for i in range(0, len(fps), _BATCH):
                part = fps[i : i + _BATCH]
                marks = ",".join("?" * len(part))
                rows.extend(
                    conn.execute(
                        "SELECT fingerprint, result, workflow_id, task_id, stored_at"
                        " FROM results WHERE enrichment_type = ? AND origin = ?"
                        " AND organization_id = ? AND stored_at >= ?"
                        f" AND fingerprint IN ({marks})",
                        (enrichment_type, scope.origin, scope.organization_id, cutoff, *part),
                    ).fetchall()
                )
        if not rows:
            return {}
        with gc_paused():
            return {r[0]: CachedResult(r[1], r[2], r[3], r[4]) for r in rows}

    def put_many(
        self,
        entries: Iterable[tuple[str, Mapping[str, Any], str | None, str | None]],
        enrichment_type: str,
    ) -> int:
        """Store ``(fingerprint, result, workflow_id, task_id)`` tuples; return how many.

        Only results whose ``status`` is ``completed`` are stored (see module doc); others
        are silently skipped. An existing entry for the same key is replaced. They are
        attributed to the cache's ``scope`` (``ValueError`` without one).
        """
        scope = self._writable_scope()
        now = self._clock()
        with gc_paused():
            rows = self._encode(entries, enrichment_type, now, scope)
        if not rows:
            return 0
        # Insert in key order (stable: a repeated fingerprint still ends with its last
        # entry): the B-tree is filled page by page instead of at random places, 3x faster
        # for 100k random fingerprints.
        with contextlib.suppress(TypeError):
            rows = sorted(rows, key=_first_item)
        with self._lock, self._file.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO results (fingerprint, enrichment_type, origin,"
                " organization_id, result, workflow_id, task_id, stored_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def _writable_scope(self) -> Scope:
        if self.scope is None:
            raise UserValueError(
                "this ResultCache has no scope: results are stored with the origin and "
                "organization that paid for them (ResultCache(dir, scope=Scope(...)))"
            )
        return self.scope

    @staticmethod
    def _encode(
        entries: Iterable[tuple[str, Mapping[str, Any], str | None, str | None]],
        enrichment_type: str,
        now: float,
        scope: Scope,
    ) -> list[tuple[str, str, str, str, str, str | None, str | None, float]]:
        kept = [
            (fp, res if type(res) is dict else dict(res), wf, tid)
            for fp, res, wf, tid in entries
            if (type(res) is dict or isinstance(res, Mapping))
            and res.get("status") == "completed"
        ]
        results = [res for _, res, _, _ in kept]
        # One encoder call holds the interpreter lock until it returns (C code): for the
        # 3,000 results of a write at the end of a run, ~25 ms in which the event loop's
        # thread, back from a socket or SQLite call, could not go on (a status read's
        # answer, the journal's "done"). Slices of ENCODE_SLICE keep each hold ~2 ms.
        texts = [
            text
            for i in range(0, len(results), ENCODE_SLICE)
            for text in encode_results(results[i : i + ENCODE_SLICE])
        ]
        return [
            (
                fp,
                enrichment_type,
                scope.origin,
                scope.organization_id,
                text,
                wf if wf is None else str(wf),
                tid if tid is None else str(tid),
                now,
            )
            for (fp, _, wf, tid), text in zip(kept, texts, strict=True)
        ]

    def put_identities(self, rows: Iterable[tuple[str, str]]) -> int:
        """Store ``(digest, fingerprint)`` pairs (see the module doc); return how many.

        >>> import tempfile
        >>> with ResultCache(tempfile.mkdtemp()) as c:
        ...     c.put_identities([("d1", "fp1"), ("d1", "fp2")]), sorted(c.fingerprints_of(["d1"]))
        (2, ['fp1', 'fp2'])
        """
        now = self._clock()
        data = sorted({(d, fp) for d, fp in rows if d and fp})
        if not data:
            return 0
        with self._lock, self._file.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO identities VALUES (?, ?, ?)",
                [(d, fp, now) for d, fp in data],
            )
        return len(data)

    def put_identities_later(self, compute: Callable[[], Iterable[tuple[str, str]]]) -> None:
        """:meth:`put_identities` on the background writer: ``compute`` (which returns the
        pairs) runs there too, so the caller — the run's event loop — pays nothing for it.
        Written with the results queued before it, at the writer's next write."""
        with self._queued:
            if self._stopping or self._file.closed:
                raise RuntimeError("ResultCache is closed")
            if not self._queue:
                self._queued_at = time.monotonic()
            self._queue.append((compute, ""))
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_queued, name="cleanlist-cache-writer", daemon=True
                )
                self._writer.start()

    def present(self, fingerprints: Iterable[str]) -> set[str]:
        """Those of ``fingerprints`` with a result stored (any type, scope or age).

        >>> import tempfile
        >>> with ResultCache(tempfile.mkdtemp(), scope=Scope("https://a.io", "o")) as c:
        ...     _ = c.put_many([("f", {"status": "completed"}, "wf", "t")], "full")
        ...     c.present(["f", "g"])
        {'f'}
        """
        fps = sorted(set(fingerprints))
        found: set[str] = set()
        with self._lock:
            for table in self._result_tables():
                for i in range(0, len(fps), _BATCH):
                    part = fps[i : i + _BATCH]
                    found.update(
                        r[0]
                        for r in self.conn.execute(
                            f"SELECT fingerprint FROM {table}"
                            f" WHERE fingerprint IN ({','.join('?' * len(part))})",
                            part,
                        )
                    )
        return found

    def fingerprints_of(self, digests: Iterable[str]) -> set[str]:
        """The fingerprints indexed under any of these identity digests (any age)."""
        ds = sorted(set(digests))
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(ds), _BATCH):
                part = ds[i : i + _BATCH]
                found.update(
                    r[0]
                    for r in self.conn.execute(
                        "SELECT fingerprint FROM identities"
                        f" WHERE digest IN ({','.join('?' * len(part))})",
                        part,
                    )
                )
        return found

    def put_many_later(
        self,
        entries: Iterable[tuple[str, Mapping[str, Any], str | None, str | None]],
        enrichment_type: str,
    ) -> None:
        """:meth:`put_many` on a background thread: queue the entries and return at once.

        For a caller that must not wait on the disk (the engine's event loop). One writer
        thread per cache writes what is queued, in order, in one transaction, once
        ``CACHE_WRITE_BATCH`` results are queued or ``CACHE_WRITE_DELAY_S`` seconds after the
        oldest of them (random keys: a transaction of many results writes each B-tree page
        once). The results must not be modified after they are queued. A failed write is
        logged (the cache is an optimization: a run's results are in its outcome, and a
        journaled workflow whose results are not in the cache is read again by the next run,
        for free). :meth:`flush` writes the queue now and waits; :meth:`close` flushes.
        Raises ``RuntimeError`` once the cache is closed.

        >>> import tempfile
        >>> c = ResultCache(tempfile.mkdtemp(), scope=Scope("https://a.io", "org_1"))
        >>> c.put_many_later([("fp1", {"status": "completed"}, "wf", "t1")], "partial")
        >>> c.flush(), list(c.get_many(["fp1"], "partial"))
        (True, ['fp1'])
        >>> c.close()
        """
        self._writable_scope()
        batch = list(entries)
        with self._queued:
            if self._stopping or self._file.closed:
                raise RuntimeError("ResultCache is closed")
            if not batch:
                return
            if not self._queue:
                self._queued_at = time.monotonic()
            self._queue.append((batch, enrichment_type))
            self._queued_n += len(batch)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_queued, name="cleanlist-cache-writer", daemon=True
                )
                self._writer.start()
            if self._queued_n >= CACHE_WRITE_BATCH:
                self._queued.notify_all()

    @property
    def busy(self) -> bool:
        """True while results queued by :meth:`put_many_later` are not written yet."""
        with self._queued:
            return bool(self._queue) or self._writing

    def hold_writes(self) -> None:
        """Write nothing more on the timer: only :meth:`flush` and :meth:`close` write now
        (a write already going on ends). For the end of a run: what is queued is written
        after the frame is returned, not while the merge needs the interpreter lock.

        >>> import tempfile
        >>> c = ResultCache(tempfile.mkdtemp(), scope=Scope("https://a.io", "org_1"))
        >>> c.hold_writes()
        >>> c.put_many_later([("fp1", {"status": "completed"}, "wf", "t1")], "partial")
        >>> c.busy, c.flush(), c.busy
        (True, True, False)
        >>> c.close()
        """
        with self._queued:
            self._held = True

    def flush(self, timeout: float | None = None) -> bool:
        """Write what :meth:`put_many_later` queued now, and wait until it is written (or
        failed); False if ``timeout`` seconds passed first."""
        with self._queued:
            self._flushing += 1
            self._queued.notify_all()
            try:
                return self._queued.wait_for(
                    lambda: not self._queue and not self._writing, timeout
                )
            finally:
                self._flushing -= 1

    def _due(self) -> bool:
        return bool(self._queue) and (
            self._stopping
            or self._flushing > 0
            or (
                not self._held
                and (
                    self._queued_n >= CACHE_WRITE_BATCH
                    or time.monotonic() - self._queued_at >= CACHE_WRITE_DELAY_S
                )
            )
        )

    def _write_queued(self) -> None:
        """The writer thread: waits until the queue is due, writes it, until closed."""
        cond = self._queued
        while True:
            with cond:
                while not self._due():
                    if self._stopping:  # and nothing queued
                        self._writer = None
                        return
                    wait = None
                    if self._queue and not self._held:  # held: flush() or close() notify
                        wait = max(self._queued_at + CACHE_WRITE_DELAY_S - time.monotonic(), 0)
                    cond.wait(wait)
                work, self._queue, self._queued_n = self._queue, [], 0
                self._writing = True
            try:
                by_type: dict[str, list[tuple[str, Mapping[str, Any], str | None, str | None]]]
                by_type = {}
                identities: list[tuple[str, str]] = []
                for entries, enrichment_type in work:
                    if callable(entries):
                        identities.extend(entries())
                    else:
                        by_type.setdefault(enrichment_type, []).extend(entries)
                for enrichment_type, entries in by_type.items():
                    self.put_many(entries, enrichment_type)
                self.put_identities(identities)
            except Exception:
                with cond:
                    self.failed_writes += 1
                log.exception(
                    "could not write %d results to the cache %s",
                    sum(len(e) for e, _ in work if not callable(e)),
                    self.path,
                )
            finally:
                with cond:
                    self._writing = False
                    cond.notify_all()

    def delete_many(
        self,
        fingerprints: Sequence[str],
        enrichment_type: str | None = None,
        *,
        erase: bool = False,
    ) -> int:
        """Forget some fingerprints (for one type, or all types); return rows deleted.
        ``erase``: overwrite the deleted records too (personal data; see
        :meth:`~cleanlist_pandas.store.files.SQLiteFile.erasing`)."""
        n = 0
        with self._lock, (self._file.erasing() if erase else contextlib.nullcontext()):
            conn = self.conn
            for table in self._result_tables():
                for i in range(0, len(fingerprints), _BATCH):
                    part = list(fingerprints[i : i + _BATCH])
                    marks = ",".join("?" * len(part))
                    if enrichment_type is None:
                        cur = conn.execute(
                            f"DELETE FROM {table} WHERE fingerprint IN ({marks})", part
                        )
                    else:
                        cur = conn.execute(
                            f"DELETE FROM {table} WHERE enrichment_type = ?"
                            f" AND fingerprint IN ({marks})",
                            (enrichment_type, *part),
                        )
                    n += cur.rowcount
            if enrichment_type is None:  # the person is gone: their identities too
                for i in range(0, len(fingerprints), _BATCH):
                    part = list(fingerprints[i : i + _BATCH])
                    conn.execute(
                        "DELETE FROM identities"
                        f" WHERE fingerprint IN ({','.join('?' * len(part))})",
                        part,
                    )
        return n

    def _result_tables(self) -> list[str]:
        """The tables holding result objects in this file (call with the lock held)."""
        have = {
            r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        return [t for t in _RESULT_TABLES if t in have]

    def purge_expired(self) -> int:
        """Delete entries older than ``max_age`` (overwritten, not just unlinked: see
        :meth:`~cleanlist_pandas.store.files.SQLiteFile.erasing`); return how many."""
        with self._lock:
            cutoff = self._cutoff()
            tables = [
                t
                for t in [*self._result_tables(), "identities"]
                if self.conn.execute(
                    f"SELECT 1 FROM {t} WHERE stored_at < ? LIMIT 1", (cutoff,)
                ).fetchone()
            ]
            if not tables:
                return 0
            removed = 0
            with self._file.erasing() as conn:
                for t in tables:
                    n = conn.execute(f"DELETE FROM {t} WHERE stored_at < ?", (cutoff,)).rowcount
                    removed += n if t != "identities" else 0  # results are what is counted
            return removed

    def entries_containing(
        self, needle: str
    ) -> list[tuple[str, str, CachedResult]]:
        """Every entry (fresh or expired, any type) whose stored JSON may contain ``needle``
        (``(fingerprint, enrichment_type, entry)``), for :func:`cleanlist_pandas.forget` to
        check exactly. ASCII case is ignored; a needle SQLite cannot match as it is stored
        (other characters, whose case it cannot fold, or ones JSON escapes) returns every
        entry, so nothing is missed.

        >>> import tempfile
        >>> with ResultCache(tempfile.mkdtemp(), scope=Scope("https://a.io", "o")) as c:
        ...     _ = c.put_many([("f", {"status": "completed", "primary_email": "A@x.io"},
        ...                     "wf", "t")], "full")
        ...     [fp for fp, _t, _e in c.entries_containing("a@X.io")]
        ['f']
        """
        where = ""
        params: tuple[str, ...] = ()
        if needle.isascii() and needle.isprintable() and not set(needle) & {'"', "\\"}:
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where = " WHERE result LIKE ? ESCAPE '\\'"
            params = (f"%{escaped}%",)
        rows = []
        with self._lock:
            for table in self._result_tables():
                rows.extend(
                    self.conn.execute(
                        "SELECT fingerprint, enrichment_type, result, workflow_id, task_id,"
                        f" stored_at FROM {table}{where}",
                        params,
                    ).fetchall()
                )
        return [(r[0], r[1], CachedResult(r[2], r[3], r[4], r[5])) for r in rows]

    def clear(self) -> int:
        """Delete every entry, of every scope (and the unattributed ones); return how many."""
        with self._lock:
            n = sum(self.conn.execute(f"DELETE FROM {t}").rowcount for t in self._result_tables())
            self.conn.execute("DELETE FROM identities")
            self.conn.execute("VACUUM")
            return n

    def put_pilot(self, enrichment_type: str, mapping: str, record: Mapping[str, Any]) -> None:
        """Keep a pilot's measured rates (a JSON-able mapping of counts and rates only),
        keyed by enrichment type and column mapping (any text naming it).

        >>> import tempfile
        >>> with ResultCache(tempfile.mkdtemp(), scope=Scope("https://a.io", "o")) as c:
        ...     c.put_pilot("full", "m", {"sample": 200, "found": {"email": 140}})
        ...     c.latest_pilot("full", "m")["found"], c.latest_pilot("partial", "m")
        ({'email': 140}, None)
        """
        scope = self._writable_scope()
        text = json.dumps(dict(record), separators=(",", ":"), default=str)
        with self._lock:
            self.conn.execute(
                "INSERT INTO pilot_rates (enrichment_type, mapping, stored_at, record, origin,"
                " organization_id) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    enrichment_type,
                    mapping,
                    self._clock(),
                    text,
                    scope.origin,
                    scope.organization_id,
                ),
            )

    def latest_pilot(self, enrichment_type: str, mapping: str) -> dict[str, Any] | None:
        """The latest pilot record of this type, mapping and scope (with ``stored_at``), or
        None (always None without a scope: a pilot's rates say what one server found)."""
        scope = self.scope
        if scope is None:
            return None
        with self._lock:
            row = self.conn.execute(
                "SELECT record, stored_at FROM pilot_rates WHERE enrichment_type = ? AND"
                " mapping = ? AND origin = ? AND organization_id = ?"
                " ORDER BY stored_at DESC, rowid DESC LIMIT 1",
                (enrichment_type, mapping, scope.origin, scope.organization_id),
            ).fetchone()
        if row is None:
            return None
        record: dict[str, Any] = json.loads(row[0])
        record["stored_at"] = float(row[1])
        return record

    def stats(self) -> dict[str, Any]:
        """Entries (fresh and expired), per type and per scope (``"org at origin"``), the
        unattributed ones (from before attribution: never served), oldest/newest, the file's
        path and size."""
        cutoff = self._cutoff()
        with self._lock:
            conn = self.conn
            total, expired, oldest, newest = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(stored_at < ?), 0), MIN(stored_at),"
                " MAX(stored_at) FROM results",
                (cutoff,),
            ).fetchone()
            by_type = dict(
                conn.execute(
                    "SELECT enrichment_type, COUNT(*) FROM results WHERE stored_at >= ?"
                    " GROUP BY enrichment_type",
                    (cutoff,),
                ).fetchall()
            )
            by_scope = {
                f"{org} at {origin}": int(n)
                for origin, org, n in conn.execute(
                    "SELECT origin, organization_id, COUNT(*) FROM results WHERE stored_at >= ?"
                    " GROUP BY origin, organization_id ORDER BY origin, organization_id",
                    (cutoff,),
                ).fetchall()
            }
            unattributed = (
                int(conn.execute(f"SELECT COUNT(*) FROM {UNATTRIBUTED}").fetchone()[0])
                if UNATTRIBUTED in self._result_tables()
                else 0
            )
        size = sum(
            p.stat().st_size for p in (self.path, Path(str(self.path) + "-wal")) if p.exists()
        )
        return {
            "path": str(self.path),
            "entries": int(total) - int(expired),
            "expired": int(expired),
            "by_type": by_type,
            "by_scope": by_scope,
            "unattributed": unattributed,
            "oldest": oldest,
            "newest": newest,
            "size_bytes": size,
            "max_age_s": self.max_age,
        }
