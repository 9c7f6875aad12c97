"""The job journal: what was sent, as which workflow, so no paid result is ever lost.

A SQLite file (:func:`~cleanlist_pandas.store.files.journal_path`, next to the result cache,
opened by :class:`~cleanlist_pandas.store.files.SQLiteFile` like the cache: mode 0600, WAL)
records every chunk of a job *before* it is sent and its ``workflow_id``/``task_ids`` right
after. After Ctrl-C, a kernel restart
or a killed process, running the same ``enrich()`` call again finds the unfinished job by
its key (a hash of the enrichment type and the contacts) and polls the journaled workflows
instead of submitting them again. Polling is free, so a resumed job costs nothing extra.

A chunk is marked ``sending`` only at the instant its bytes can leave the machine: after the
pacer granted its slot and after the run's stop conditions were checked, with no ``await``
in between (:class:`~cleanlist_pandas.client.http.SendHooks`). A chunk still waiting for the pacer
is not in the journal at all, so a re-run sends it. A chunk that was being sent when the
process died, or whose request timed out after the body left, is *ambiguous* (spec §7):
it may or may not exist on the server. It is never resent on its own; its rows come back
``cl_status="unknown"`` until the user says to resend.

Every job is attributed to the :class:`~cleanlist_pandas.store.provenance.Scope` it was started
in (the API's origin and the organization): a run resumes only a job of its own scope, so
workflows submitted to a sandbox are never polled at the real API, nor one organization's
by another. Jobs written before attribution (version 0.1) have no scope: they are listed
by ``cleanlist-pandas jobs`` as of unknown origin and never resumed on their own.

The journal holds ids and content hashes only, never names or e-mail addresses. Still, a
fingerprint identifies a person's contact, so it follows the retention of personal data:
finished jobs older than ``max_age`` (``clp.configure(max_age=...)``, default 30 days) are
purged when the journal is first opened in a process (:meth:`Journal.purge_finished`; open
jobs are kept, they hold paid results still to collect), and :meth:`Journal.forget` takes a
person's fingerprints out of every chunk (``clp.forget``).

>>> import tempfile, pathlib
>>> from cleanlist_pandas.store.provenance import Scope
>>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "journal.sqlite")
>>> job = j.open_job("key1", "partial", rows=3, scope=Scope("https://a.io", "org_1"))
>>> j.record_sending(job.job_id, 0, ["fp1", "fp2"])
>>> j.record_submitted(job.job_id, 0, "public_bulk_1", ["t1", "t2"])
>>> [c.state for c in j.chunks(job.job_id)]
['submitted']
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cleanlist_pandas.store.files import SQLiteFile, first_open_in_process
from cleanlist_pandas.store.provenance import Scope

# Chunk states.
SENDING = "sending"  # recorded before the request; still SENDING after a crash = ambiguous
SUBMITTED = "submitted"  # the API answered with a workflow id
AMBIGUOUS = "ambiguous"  # may or may not exist on the server (spec §7)
DONE = "done"  # the workflow is terminal and its results were merged
#: The organization could not pay for these contacts (a 402, or tasks that failed for lack of
#: credits): the next identical call sends them again; ``estimate()`` counts them.
AWAITING_CREDITS = "awaiting_credits"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    enrichment_type TEXT NOT NULL,
    rows INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    origin TEXT,
    organization_id TEXT,
    worst_case REAL
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key, state);
CREATE TABLE IF NOT EXISTS chunks (
    job_id TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    state TEXT NOT NULL,
    fingerprints TEXT NOT NULL,
    workflow_id TEXT,
    task_ids TEXT,
    note TEXT,
    updated_at TEXT NOT NULL,
    retry TEXT,
    PRIMARY KEY (job_id, chunk)
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class JobRecord:
    """One journaled job, with the scope it was started in (None: from before attribution)
    and its worst case when it was started (None: not recorded)."""

    job_id: str
    key: str
    enrichment_type: str
    rows: int
    state: str  # "open" or "finished"
    created_at: str
    origin: str | None = None
    organization_id: str | None = None
    worst_case: float | None = None

    @property
    def scope(self) -> Scope | None:
        """Where the job's workflows were submitted (None: unknown, an old journal)."""
        if self.origin is None or self.organization_id is None:
            return None
        return Scope(self.origin, self.organization_id)


_JOB_COLUMNS = (
    "job_id, key, enrichment_type, rows, state, created_at, origin, organization_id, worst_case"
)

@dataclass(frozen=True)
class ChunkRecord:
    """One journaled chunk: the contacts' fingerprints in the order they were sent."""

    job_id: str
    number: int
    state: str
    fingerprints: tuple[str, ...]
    workflow_id: str | None
    task_ids: tuple[str, ...]
    note: str | None
    #: for a ``done`` chunk: fingerprints to send again (their task failed for lack of
    #: credits); for an ``awaiting_credits`` chunk: all of its fingerprints
    retry: tuple[str, ...] = ()


class Journal:
    """The SQLite journal of enrichment jobs. One instance may be shared by threads.

    >>> import tempfile, pathlib
    >>> j, s = Journal(pathlib.Path(tempfile.mkdtemp()) / "j.sqlite"), Scope("https://a.io", "o")
    >>> j.open_job("k", "partial", rows=1, scope=s) == j.open_job("k", "partial", rows=1, scope=s)
    True
    >>> j.find_open("k", Scope("http://127.0.0.1:8765", "o")) is None
    True
    """

    def __init__(self, path: Path | str, *, max_age: float | timedelta | None = None) -> None:
        from cleanlist_pandas.config import retention_seconds

        self._file = SQLiteFile(path, schema=_SCHEMA, name="Journal")
        self.path = self._file.path
        self._lock = self._file.lock
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
        if "retry" not in cols:  # a journal written by an older version
            self._db.execute("ALTER TABLE chunks ADD COLUMN retry TEXT")
        job_cols = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
        for col, kind in (("origin", "TEXT"), ("organization_id", "TEXT"), ("worst_case", "REAL")):
            if col not in job_cols:  # before attribution: NULL, never resumed on its own
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {col} {kind}")
        if isinstance(max_age, timedelta):
            max_age = max_age.total_seconds()
        #: retention of finished jobs, seconds (``clp.configure(max_age=...)``)
        self.max_age = retention_seconds() if max_age is None else float(max_age)
        if first_open_in_process(self.path, "retention"):
            # busy in another process: leave it, the next process to open the file purges
            with contextlib.suppress(sqlite3.OperationalError):
                self.purge_finished()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @property
    def _db(self) -> sqlite3.Connection:
        return self._file.conn

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        self._file.close()

    # -- jobs ---------------------------------------------------------------------------
    def find_open(self, key: str, scope: Scope) -> JobRecord | None:
        """The unfinished job with this key in this scope, if any (creates nothing)."""
        with self._lock:
            return self._find_open_locked(key, scope)

    def _find_open_locked(self, key: str, scope: Scope) -> JobRecord | None:
        row = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE key = ? AND state = 'open'"
            " AND origin = ? AND organization_id = ? ORDER BY created_at DESC LIMIT 1",
            (key, scope.origin, scope.organization_id),
        ).fetchone()
        return None if row is None else JobRecord(*row)

    def open_job(
        self,
        key: str,
        enrichment_type: str,
        *,
        rows: int,
        scope: Scope,
        worst_case: float | None = None,
    ) -> JobRecord:
        """Return the unfinished job with this key in this scope, or start a new one
        (``worst_case``: its credits at worst, shown again when a later run resumes it)."""
        with self._lock:
            found = self._find_open_locked(key, scope)
            if found is not None:
                return found
            job_id = "job_" + uuid.uuid4().hex[:16]
            now = _now()
            self._db.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}, updated_at)"
                " VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)",
                (
                    job_id,
                    key,
                    enrichment_type,
                    rows,
                    now,
                    scope.origin,
                    scope.organization_id,
                    worst_case,
                    now,
                ),
            )
            return JobRecord(
                job_id,
                key,
                enrichment_type,
                rows,
                "open",
                now,
                scope.origin,
                scope.organization_id,
                worst_case,
            )

    def job(self, job_id: str) -> JobRecord | None:
        """The job with this id, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return None if row is None else JobRecord(*row)

    def jobs(self) -> list[JobRecord]:
        """Every journaled job, newest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at DESC"
            ).fetchall()
        return [JobRecord(*r) for r in rows]

    def finish_job(self, job_id: str) -> None:
        """Mark a job finished: a later identical call starts afresh (and uses the cache)."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = 'finished', updated_at = ? WHERE job_id = ?",
                (_now(), job_id),
            )

    def discard_job(self, job_id: str) -> None:
        """Delete a job and its chunks (a job that never sent anything)."""
        with self._lock:
            self._db.execute("DELETE FROM chunks WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def purge_finished(self, max_age: float | None = None, *, now: datetime | None = None) -> int:
        """Delete finished jobs last updated more than ``max_age`` seconds ago (default
        :attr:`max_age`, the retention) with their chunks; return how many jobs. Open jobs
        are kept whatever their age: they hold paid results still to collect.

        >>> import tempfile, pathlib
        >>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "j.sqlite")
        >>> j.finish_job(j.open_job("k", "partial", rows=1, scope=Scope("o", "g")).job_id)
        >>> j.purge_finished(), j.purge_finished(0, now=datetime(2999, 1, 1, tzinfo=UTC))
        (0, 1)
        """
        age = self.max_age if max_age is None else float(max_age)
        cutoff = ((now or datetime.now(UTC)) - timedelta(seconds=age)).isoformat(
            timespec="seconds"
        )
        with self._lock:
            old = [
                r[0]
                for r in self._db.execute(
                    "SELECT job_id FROM jobs WHERE state = 'finished' AND updated_at < ?",
                    (cutoff,),
                ).fetchall()
            ]
            if not old:
                return 0
            with self._file.erasing() as db:
                for i in range(0, len(old), 500):
                    part = old[i : i + 500]
                    marks = ",".join("?" * len(part))
                    db.execute(f"DELETE FROM chunks WHERE job_id IN ({marks})", part)
                    db.execute(f"DELETE FROM jobs WHERE job_id IN ({marks})", part)
        return len(old)

    def forget(self, fingerprints: Collection[str], found: set[str] | None = None) -> int:
        """Take these contacts out of every chunk of every job; return how many chunk
        references were removed. The job stays resumable for everyone else: a chunk keeps
        its other fingerprints with their task ids (position ``i`` of ``fingerprints`` is
        task ``i``, so both lose the same positions), a chunk left empty is deleted, and a
        re-run sends a forgotten contact again as new (it is in no chunk any more) — so its
        result, if it was still pending on the server, is never collected into the cache.
        ``found``, if given, receives those of ``fingerprints`` that were in some chunk.

        >>> import tempfile, pathlib
        >>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "j.sqlite")
        >>> job = j.open_job("k", "partial", rows=2, scope=Scope("o", "g"))
        >>> j.record_sending(job.job_id, 0, ["fp1", "fp2"])
        >>> j.record_submitted(job.job_id, 0, "wf", ["t1", "t2"])
        >>> n = j.forget({"fp1"}); c = j.chunks(job.job_id)[0]
        >>> n, c.fingerprints, c.task_ids
        (1, ('fp2',), ('t2',))
        """
        gone = set(fingerprints)
        if not gone:
            return 0
        removed = 0
        with self._lock:
            rows: list[tuple[str, int, str, str | None, str | None]] = []
            for fp in sorted(gone):
                # fingerprints are hex: no LIKE wildcard in them
                rows.extend(
                    self._db.execute(
                        "SELECT job_id, chunk, fingerprints, task_ids, retry FROM chunks"
                        " WHERE fingerprints LIKE ? OR retry LIKE ?",
                        (f'%"{fp}"%', f'%"{fp}"%'),
                    ).fetchall()
                )
            if not rows:
                return 0
            seen: set[tuple[str, int]] = set()
            with self._file.erasing() as db:
                for job_id, chunk, fps_json, tids_json, retry_json in rows:
                    if (job_id, chunk) in seen:
                        continue
                    seen.add((job_id, chunk))
                    fps = json.loads(fps_json)
                    tids = json.loads(tids_json) if tids_json else []
                    retry = json.loads(retry_json) if retry_json else []
                    keep = [i for i, fp in enumerate(fps) if fp not in gone]
                    if found is not None:
                        found.update(fp for fp in [*fps, *retry] if fp in gone)
                    removed += len(fps) - len(keep)
                    if not keep:
                        db.execute(
                            "DELETE FROM chunks WHERE job_id = ? AND chunk = ?", (job_id, chunk)
                        )
                        continue
                    new_retry = [fp for fp in retry if fp not in gone]
                    db.execute(
                        "UPDATE chunks SET fingerprints = ?, task_ids = ?, retry = ?"
                        " WHERE job_id = ? AND chunk = ?",
                        (
                            json.dumps([fps[i] for i in keep]),
                            json.dumps([tids[i] for i in keep if i < len(tids)])
                            if tids_json
                            else None,
                            json.dumps(new_retry) if new_retry else None,
                            job_id,
                            chunk,
                        ),
                    )
        return removed

    # -- chunks -------------------------------------------------------------------------
    def chunks(self, job_id: str) -> list[ChunkRecord]:
        """The job's chunks, in chunk order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, chunk, state, fingerprints, workflow_id, task_ids, note, retry "
                "FROM chunks WHERE job_id = ? ORDER BY chunk",
                (job_id,),
            ).fetchall()
        return [
            ChunkRecord(
                r[0],
                r[1],
                r[2],
                tuple(json.loads(r[3])),
                r[4],
                tuple(json.loads(r[5])) if r[5] else (),
                r[6],
                tuple(json.loads(r[7])) if r[7] else (),
            )
            for r in rows
        ]

    def next_chunk_number(self, job_id: str) -> int:
        """The number to give the job's next new chunk."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(MAX(chunk) + 1, 0) FROM chunks WHERE job_id = ?", (job_id,)
            ).fetchone()
        return int(row[0])

    def record_sending(self, job_id: str, chunk: int, fingerprints: Sequence[str]) -> None:
        """The request can leave now: if the process dies from here on, the chunk is
        ambiguous. Call it at that instant, never while the request still waits its turn."""
        self._insert(job_id, chunk, SENDING, fingerprints)

    def record_awaiting_credits(
        self, job_id: str, chunk: int, fingerprints: Sequence[str], note: str
    ) -> None:
        """These contacts were not paid for (a 402): the next identical call sends them."""
        self._insert(job_id, chunk, AWAITING_CREDITS, fingerprints, note=note, retry=fingerprints)

    def _insert(
        self,
        job_id: str,
        chunk: int,
        state: str,
        fingerprints: Sequence[str],
        *,
        note: str | None = None,
        retry: Sequence[str] = (),
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?)",
                (
                    job_id,
                    chunk,
                    state,
                    json.dumps(list(fingerprints)),
                    note,
                    _now(),
                    json.dumps(list(retry)) if retry else None,
                ),
            )

    def record_submitted(
        self, job_id: str, chunk: int, workflow_id: str, task_ids: Sequence[str]
    ) -> None:
        """The API accepted the chunk as ``workflow_id``."""
        self._update(job_id, chunk, SUBMITTED, workflow_id=workflow_id, task_ids=task_ids)

    def record_ambiguous(self, job_id: str, chunk: int, note: str) -> None:
        """The chunk's fate is unknown; it is never resent on its own."""
        self._update(job_id, chunk, AMBIGUOUS, note=note)

    def record_done(self, job_id: str, chunk: int, retry: Sequence[str] = ()) -> None:
        """The chunk's workflow is terminal and its results were merged; ``retry`` are the
        contacts whose task failed for lack of credits (the next call sends them again)."""
        self._update(job_id, chunk, DONE, retry=retry)

    def forget_chunk(self, job_id: str, chunk: int) -> None:
        """The request provably never reached the API (or the user settled it): drop it."""
        with self._lock:
            self._db.execute("DELETE FROM chunks WHERE job_id = ? AND chunk = ?", (job_id, chunk))

    def _update(
        self,
        job_id: str,
        chunk: int,
        state: str,
        *,
        workflow_id: str | None = None,
        task_ids: Sequence[str] | None = None,
        note: str | None = None,
        retry: Sequence[str] = (),
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE chunks SET state = ?, workflow_id = COALESCE(?, workflow_id), "
                "task_ids = COALESCE(?, task_ids), note = COALESCE(?, note), "
                "retry = COALESCE(?, retry), updated_at = ? "
                "WHERE job_id = ? AND chunk = ?",
                (
                    state,
                    workflow_id,
                    None if task_ids is None else json.dumps(list(task_ids)),
                    note,
                    json.dumps(list(retry)) if retry else None,
                    _now(),
                    job_id,
                    chunk,
                ),
            )
