"""The job journal: what was sent, as which workflow, so no paid result is ever lost.

A SQLite file (:func:`~cleanlist_pandas._store.journal_path`, next to the result cache,
opened by :class:`~cleanlist_pandas._store.SQLiteFile` like the cache: mode 0600, WAL)
records every chunk of a job *before* it is sent and its ``workflow_id``/``task_ids`` right
after. After Ctrl-C, a kernel restart
or a killed process, running the same ``enrich()`` call again finds the unfinished job by
its key (a hash of the enrichment type and the contacts) and polls the journaled workflows
instead of submitting them again. Polling is free, so a resumed job costs nothing extra.

A chunk is marked ``sending`` only at the instant its bytes can leave the machine: after the
pacer granted its slot and after the run's stop conditions were checked, with no ``await``
in between (:class:`~cleanlist_pandas._http.SendHooks`). A chunk still waiting for the pacer
is not in the journal at all, so a re-run sends it. A chunk that was being sent when the
process died, or whose request timed out after the body left, is *ambiguous* (spec §7):
it may or may not exist on the server. It is never resent on its own; its rows come back
``cl_status="unknown"`` until the user says to resend.

The journal holds ids and content hashes only, never names or e-mail addresses.

>>> import tempfile, pathlib
>>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "journal.sqlite")
>>> job = j.open_job("key1", "partial", rows=3)
>>> j.record_sending(job.job_id, 0, ["fp1", "fp2"])
>>> j.record_submitted(job.job_id, 0, "public_bulk_1", ["t1", "t2"])
>>> [c.state for c in j.chunks(job.job_id)]
['submitted']
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cleanlist_pandas._store import SQLiteFile

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
    updated_at TEXT NOT NULL
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
    """One journaled job."""

    job_id: str
    key: str
    enrichment_type: str
    rows: int
    state: str  # "open" or "finished"
    created_at: str


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
    >>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "j.sqlite")
    >>> j.open_job("k", "partial", rows=1).job_id == j.open_job("k", "partial", rows=1).job_id
    True
    """

    def __init__(self, path: Path | str) -> None:
        self._file = SQLiteFile(path, schema=_SCHEMA, name="Journal")
        self.path = self._file.path
        self._lock = self._file.lock
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
        if "retry" not in cols:  # a journal written by an older version
            self._db.execute("ALTER TABLE chunks ADD COLUMN retry TEXT")

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @property
    def _db(self) -> sqlite3.Connection:
        return self._file.conn

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        self._file.close()

    # -- jobs ---------------------------------------------------------------------------
    def find_open(self, key: str) -> JobRecord | None:
        """The unfinished job with this key, if any (creates nothing)."""
        with self._lock:
            return self._find_open_locked(key)

    def _find_open_locked(self, key: str) -> JobRecord | None:
        row = self._db.execute(
            "SELECT job_id, key, enrichment_type, rows, state, created_at FROM jobs "
            "WHERE key = ? AND state = 'open' ORDER BY created_at DESC LIMIT 1",
            (key,),
        ).fetchone()
        return None if row is None else JobRecord(*row)

    def open_job(self, key: str, enrichment_type: str, *, rows: int) -> JobRecord:
        """Return the unfinished job with this key, or start a new one."""
        with self._lock:
            found = self._find_open_locked(key)
            if found is not None:
                return found
            job_id = "job_" + uuid.uuid4().hex[:16]
            now = _now()
            self._db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, 'open', ?, ?)",
                (job_id, key, enrichment_type, rows, now, now),
            )
            return JobRecord(job_id, key, enrichment_type, rows, "open", now)

    def job(self, job_id: str) -> JobRecord | None:
        """The job with this id, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT job_id, key, enrichment_type, rows, state, created_at FROM jobs "
                "WHERE job_id = ?",
                (job_id,),
            ).fetchone()
        return None if row is None else JobRecord(*row)

    def jobs(self) -> list[JobRecord]:
        """Every journaled job, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, key, enrichment_type, rows, state, created_at FROM jobs "
                "ORDER BY created_at DESC"
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
