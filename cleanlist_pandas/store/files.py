"""One home for local persistence: where the files live, how a SQLite file is opened, and
the lock that keeps one job to one process.

* :func:`default_cache_dir`, :func:`journal_path` and :func:`spend_path` — where the result
  cache, the job journal and the spend ledger live (``$CLEANLIST_CACHE_DIR`` or the
  platform's user cache directory).
* :func:`first_open_in_process` — True once per process and file: when retention runs.
* :class:`SQLiteFile` — a SQLite file opened the one right way: the directory created 0700
  and the file 0600 *before* SQLite writes a byte (it holds personal data; SQLite gives its
  ``-wal``/``-shm`` side files the same mode), WAL with ``synchronous=NORMAL`` (readers never
  block the writer; a commit survives a killed process), a busy timeout for other
  processes, one connection shareable by threads (``check_same_thread=False``) and one
  ``threading.Lock`` that the owner holds around every use of it.
* :class:`JobLock` — a non-blocking, cross-process lock file on the ``filelock`` package
  (``flock`` on POSIX, ``msvcrt.locking`` on Windows): the OS drops it when the holding
  process dies, so a killed run can be resumed at once.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> db = SQLiteFile(d / "x.sqlite3", schema="CREATE TABLE IF NOT EXISTS t (v INTEGER);")
>>> with db.lock:
...     _ = db.conn.execute("INSERT INTO t VALUES (1)")
...     db.conn.execute("SELECT COUNT(*) FROM t").fetchone()
(1,)
>>> db.conn.execute("PRAGMA journal_mode").fetchone()
('wal',)
>>> db.close()
>>> journal_path(d) == d / "journal.sqlite3", spend_path(d) == d / "spend.sqlite3"
(True, True)
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cleanlist_pandas._constants import (
    CACHE_DIR_ENV,
    JOURNAL_FILENAME,
    SPEND_FILENAME,
    SQLITE_BUSY_TIMEOUT_S,
)

log = logging.getLogger(__name__)

__all__ = [
    "JobLock",
    "LockHeldError",
    "SQLiteFile",
    "cache_dir_for",
    "default_cache_dir",
    "defer",
    "first_open_in_process",
    "journal_path",
    "private_file",
    "spend_path",
    "wait_for_deferred",
]

PathLike = str | os.PathLike[str]


def default_cache_dir(base_url: str | None = None) -> Path:
    """Where the cache, the journal and the spend ledger live, in this order:
    ``clp.configure(cache_dir=...)``; ``$CLEANLIST_CACHE_DIR``; for a local sandbox (the
    API at ``base_url``, default the configured one, on a loopback host), the scratch
    directory it keeps for its clients, so its invented results never mix with real ones
    (:mod:`cleanlist_pandas._sandbox_info`); else the platform's user cache directory.

    >>> journal_path().parent == default_cache_dir()   # the journal sits next to the cache
    True
    """
    chosen = _chosen_cache_dir()
    if chosen is not None:
        return chosen
    from cleanlist_pandas._sandbox_info import probe
    from cleanlist_pandas.config import session_base_url

    info = probe(base_url if base_url is not None else session_base_url())
    return cache_dir_for(info.scratch_dir if info is not None else None)


def _chosen_cache_dir() -> Path | None:
    from cleanlist_pandas.config import session_cache_dir

    chosen = session_cache_dir() or os.environ.get(CACHE_DIR_ENV)
    return Path(chosen).expanduser() if chosen else None


def cache_dir_for(sandbox_dir: PathLike | None) -> Path:
    """:func:`default_cache_dir` when the server is known: the directory chosen by the user
    (``configure(cache_dir=...)``, then ``$CLEANLIST_CACHE_DIR``), else ``sandbox_dir`` (a
    sandbox's scratch directory, or None for any other server), else the platform's.

    >>> import os; os.environ["CLEANLIST_CACHE_DIR"] = "/tmp/a"
    >>> cache_dir_for("/tmp/sandbox").as_posix()
    '/tmp/a'
    >>> del os.environ["CLEANLIST_CACHE_DIR"]; cache_dir_for("/tmp/sandbox").as_posix()
    '/tmp/sandbox'
    """
    chosen = _chosen_cache_dir()
    if chosen is not None:
        return chosen
    if sandbox_dir is not None:
        return Path(sandbox_dir)
    import platformdirs

    return Path(platformdirs.user_cache_dir("cleanlist-pandas"))


def journal_path(cache_dir: PathLike | None = None) -> Path:
    """The job journal's file: ``journal.sqlite3`` in ``cache_dir`` (default
    :func:`default_cache_dir`), next to the result cache.

    >>> journal_path("/tmp/x").as_posix()
    '/tmp/x/journal.sqlite3'
    """
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / JOURNAL_FILENAME


def spend_path(cache_dir: PathLike | None = None) -> Path:
    """The spend ledger's file: ``spend.sqlite3`` in ``cache_dir`` (default
    :func:`default_cache_dir`), next to the cache and the journal.

    >>> spend_path("/tmp/x").as_posix()
    '/tmp/x/spend.sqlite3'
    """
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / SPEND_FILENAME


_opened: set[tuple[str, str]] = set()
_opened_lock = threading.Lock()


def first_open_in_process(path: PathLike, purpose: str = "") -> bool:
    """True the first time this process asks for ``(path, purpose)``, False after: the
    retention purge runs once per process and file, when the file is first opened.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"
    >>> first_open_in_process(p, "purge"), first_open_in_process(p, "purge")
    (True, False)
    """
    key = (os.path.abspath(os.fspath(path)), purpose)
    with _opened_lock:
        if key in _opened:
            return False
        _opened.add(key)
        return True


def private_file(path: PathLike) -> Path:
    """Create ``path`` (and its missing directories, 0700) as a file only its owner may
    read, 0600 from the first byte whatever the umask; an existing file is made 0600.

    >>> import tempfile, pathlib, stat
    >>> p = private_file(pathlib.Path(tempfile.mkdtemp()) / "a" / "f")
    >>> oct(stat.S_IMODE(p.stat().st_mode)) if os.name == "posix" else "0o600"
    '0o600'
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        else:  # pragma: no cover - Windows before 3.13 (only the read-only bit exists)
            os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
    finally:
        os.close(fd)
    return p


class SQLiteFile:
    """One SQLite file opened the one right way (see the module doc).

    ``conn`` is an autocommit connection (``isolation_level=None``): open transactions
    explicitly with :meth:`transaction`. Hold ``lock`` around every use of ``conn``.
    ``schema`` (SQL statements, run once at open) creates the tables.

    >>> import tempfile, pathlib
    >>> db = SQLiteFile(pathlib.Path(tempfile.mkdtemp()) / "y.sqlite3", name="Demo")
    >>> db.close(); db.close()            # idempotent
    >>> db.conn
    Traceback (most recent call last):
    RuntimeError: Demo is closed
    """

    def __init__(self, path: PathLike, *, schema: str = "", name: str | None = None) -> None:
        wait_for_deferred()  # what a run left to finish (results, journal) is on disk first
        self.path = private_file(path)
        self.name = name or self.path.name
        self.lock = threading.Lock()
        conn = sqlite3.connect(
            self.path,
            check_same_thread=False,
            timeout=SQLITE_BUSY_TIMEOUT_S,
            isolation_level=None,
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if schema:
                conn.executescript(schema)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection; ``RuntimeError`` once closed."""
        if self._conn is None:
            raise RuntimeError(f"{self.name} is closed")
        return self._conn

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._conn is None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception). Call it with
        ``lock`` held.

        >>> import tempfile, pathlib
        >>> db = SQLiteFile(pathlib.Path(tempfile.mkdtemp()) / "z.sqlite3",
        ...                 schema="CREATE TABLE t (v INTEGER);")
        >>> with db.lock, db.transaction() as conn:
        ...     _ = conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        >>> db.conn.execute("SELECT SUM(v) FROM t").fetchone()
        (3,)
        >>> db.close()
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def erasing(self) -> Iterator[sqlite3.Connection]:
        """For deletes that erase personal data (``forget``, retention): deleted records are
        overwritten with zeros (``secure_delete``), and afterwards the WAL is checkpointed
        into the file and truncated, so no copy of an old page stays in ``-wal`` (best
        effort: a reader in another process can hold the WAL back). Call it with ``lock``
        held.

        >>> import tempfile, pathlib
        >>> db = SQLiteFile(pathlib.Path(tempfile.mkdtemp()) / "e.sqlite3",
        ...                 schema="CREATE TABLE t (v TEXT);")
        >>> with db.lock, db.erasing() as conn:
        ...     _ = conn.execute("DELETE FROM t")
        >>> db.close()
        """
        conn = self.conn
        before = int(conn.execute("PRAGMA secure_delete").fetchone()[0])
        conn.execute("PRAGMA secure_delete=ON")
        try:
            yield conn
        finally:
            conn.execute(f"PRAGMA secure_delete={before}")  # the build's default may be ON
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self, wait: bool = False) -> None:
        """Close the connection (idempotent).

        Everything is committed by then; what is left is SQLite's checkpoint of the
        write-ahead log into the file (~10 ms after a run's 5,000 results), which happens on
        the finisher thread (:func:`defer`) unless ``wait``, so a run returns without
        waiting on it. The next open and the process's exit wait for it; a close lost to a
        crash leaves the WAL, which the next open reads.
        """
        with self.lock:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        if wait:
            conn.close()
        else:
            defer(conn.close)

    def __repr__(self) -> str:
        return f"SQLiteFile({str(self.path)!r}{', closed' if self.closed else ''})"


_deferred: collections.deque[Callable[[], object]] = collections.deque()
_deferred_done = threading.Condition(threading.Lock())
_finisher: threading.Thread | None = None


def defer(work: Callable[[], object]) -> None:
    """Run ``work`` on the finisher thread, after the work deferred before it.

    For what a run still has to do once its frame is built — wait for the result cache's
    last writes, then mark the journal job finished and close its files — so the caller
    gets the frame without waiting on the disk. Every SQLite file opened in this process
    waits for it first (:func:`wait_for_deferred`), so the next call sees the results and
    the finished job; the thread is not a daemon, so the process waits for it at exit, and
    if the process is killed first, the job stays open and the next run reads its
    workflows again (free). An exception in ``work`` is logged.

    >>> done = []; defer(lambda: done.append(1)); _ = wait_for_deferred(); done
    [1]
    """
    global _finisher
    with _deferred_done:
        _deferred.append(work)
        if _finisher is None:
            _finisher = threading.Thread(target=_run_deferred, name="cleanlist-finisher")
            _finisher.start()


def _run_deferred() -> None:
    global _finisher
    while True:
        with _deferred_done:
            if not _deferred:
                _finisher = None
                _deferred_done.notify_all()
                return
            work = _deferred.popleft()
        try:
            work()
        except Exception:
            log.exception("finishing a run in the background failed")


def wait_for_deferred(timeout: float | None = None) -> bool:
    """Wait until the work handed to :func:`defer` is done (False if ``timeout`` passed
    first). From the finisher thread itself, returns at once.

    >>> wait_for_deferred()
    True
    """
    with _deferred_done:
        if _finisher is None or _finisher is threading.current_thread():
            return True
        return _deferred_done.wait_for(lambda: _finisher is None, timeout)


class LockHeldError(RuntimeError):
    """Another process holds the lock (the default error of :meth:`JobLock.acquire`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} is locked by another process")
        self.path = path


class JobLock:
    """A cross-process lock on one file, taken without waiting.

    ``acquire()`` takes it or raises at once — ``busy(path)`` if given, else
    :class:`LockHeldError` — when another process (or another ``JobLock`` on the same path)
    holds it. ``release()`` (also ``close()``, or leaving a ``with`` block) gives it back;
    both are idempotent, and the OS gives it back when the holding process dies, however it
    dies. ``remove()`` releases a held lock and deletes its file (once the job is finished).
    The lock file is created 0600. One ``JobLock`` may be acquired in one thread and
    released in another.

    Built on ``filelock`` rather than hand-written ``fcntl.flock``: the same code guards two
    kernels on Windows too.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "job_1.lock"
    >>> a, b = JobLock(path), JobLock(path, busy=lambda p: TimeoutError(f"busy: {p.name}"))
    >>> a.acquire(); a.acquire(); a.held
    True
    >>> b.acquire()
    Traceback (most recent call last):
    TimeoutError: busy: job_1.lock
    >>> a.release(); a.release(); b.acquire(); b.held
    True
    >>> b.remove(); path.exists()
    False
    """

    def __init__(
        self, path: PathLike, *, busy: Callable[[Path], BaseException] | None = None
    ) -> None:
        import filelock

        self.path = Path(path)
        self._busy: Callable[[Path], BaseException] = busy or LockHeldError
        self._mutex = threading.Lock()
        # thread_local=False: a run may take it in the caller's thread and give it back on
        # the loop thread; mode 0600 like every file of ours.
        self._lock: Any = filelock.FileLock(str(self.path), mode=0o600, thread_local=False)
        self._timeout_error: type[BaseException] = filelock.Timeout

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return bool(self._lock.is_locked)

    def acquire(self) -> None:
        """Take the lock now, or raise (see the class doc). Idempotent while held."""
        with self._mutex:
            if self._lock.is_locked:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                self._lock.acquire(timeout=0)
            except self._timeout_error:
                raise self._busy(self.path) from None

    def release(self) -> None:
        """Give the lock back (idempotent)."""
        with self._mutex:
            if self._lock.is_locked:
                self._lock.release(force=True)

    close = release

    def remove(self) -> None:
        """Once the job is finished: release the lock and delete its file. Does nothing
        unless this object holds the lock (another holder's file is left alone)."""
        with self._mutex:
            if self._lock.is_locked:
                self._lock.release(force=True)
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> JobLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"JobLock({str(self.path)!r}, held={self.held})"
