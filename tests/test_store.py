"""The one home of local persistence: SQLite files opened alike, the job lock, the paths."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from cleanlist_pandas.store.cache import ResultCache
from cleanlist_pandas.store.files import (
    JobLock,
    LockHeldError,
    SQLiteFile,
    default_cache_dir,
    journal_path,
    private_file,
    wait_for_deferred,
)
from cleanlist_pandas.store.journal import Journal
from cleanlist_pandas.store.provenance import Scope

SCOPE = Scope("https://api.cleanlist.ai", "org_test")

POSIX = os.name == "posix"

# A child process that takes the lock, says so, and holds it until stdin closes or it is
# killed.
HOLDER = textwrap.dedent(
    """
    import sys
    from cleanlist_pandas.store.files import JobLock
    lock = JobLock(sys.argv[1])
    lock.acquire()
    print("held", flush=True)
    sys.stdin.read()
    """
)
# A child process that tries the lock once: exit 0 if it got it, 3 if it is held elsewhere.
TRIER = textwrap.dedent(
    """
    import sys
    from cleanlist_pandas.store.files import JobLock, LockHeldError
    try:
        JobLock(sys.argv[1]).acquire()
    except LockHeldError:
        sys.exit(3)
    """
)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _start_holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _try_in_child(path: Path) -> int:
    return subprocess.run([sys.executable, "-c", TRIER, str(path)], timeout=60).returncode


# -- SQLite files ----------------------------------------------------------------------------
@pytest.mark.skipif(not POSIX, reason="POSIX file modes")
def test_sqlite_file_is_private_from_the_start_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the most permissive umask: the modes must not depend on it
    try:
        db = SQLiteFile(tmp_path / "new" / "f.sqlite3", schema="CREATE TABLE t (v);")
        with db.lock:
            db.conn.execute("INSERT INTO t VALUES (1)")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "new") == 0o700
    assert _mode(db.path) == 0o600
    for side in ("-wal", "-shm"):  # SQLite gives its side files the database's mode
        p = Path(str(db.path) + side)
        assert not p.exists() or _mode(p) == 0o600
    db.close()


@pytest.mark.skipif(not POSIX, reason="POSIX file modes")
def test_an_existing_world_readable_file_is_made_private(tmp_path: Path) -> None:
    p = tmp_path / "old.sqlite3"
    p.touch(mode=0o644)
    os.chmod(p, 0o644)
    private_file(p)
    assert _mode(p) == 0o600


def test_cache_and_journal_open_their_files_the_same_way(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path, scope=SCOPE)
    journal = Journal(journal_path(tmp_path))
    try:
        for f in (cache._file, journal._file):
            assert isinstance(f, SQLiteFile)
            with f.lock:
                assert f.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
                assert f.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
                assert f.conn.isolation_level is None
        assert cache._lock is cache._file.lock and journal._lock is journal._file.lock
    finally:
        cache.close()
        journal.close()
    # closing twice is harmless, and a closed file says so
    cache.close()
    journal.close()
    with pytest.raises(RuntimeError, match="ResultCache is closed"):
        cache.get_many(["x"], "partial")
    with pytest.raises(RuntimeError, match="Journal is closed"):
        journal.jobs()


def test_a_failed_transaction_rolls_back(tmp_path: Path) -> None:
    db = SQLiteFile(tmp_path / "t.sqlite3", schema="CREATE TABLE t (v INTEGER UNIQUE);")
    with pytest.raises(Exception, match="UNIQUE"), db.lock, db.transaction() as conn:
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (1,)])
    assert db.conn.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    db.close()


def test_journal_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert journal_path(tmp_path) == tmp_path / "journal.sqlite3"
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "env"))
    assert journal_path() == default_cache_dir() / "journal.sqlite3" == (
        tmp_path / "env" / "journal.sqlite3"
    )


# -- the job lock ----------------------------------------------------------------------------
def test_job_lock_guards_against_another_process(tmp_path: Path) -> None:
    path = tmp_path / "job_1.lock"
    holder = _start_holder(path)
    try:
        mine = JobLock(path)
        with pytest.raises(LockHeldError, match="another process"):
            mine.acquire()
        assert not mine.held
        assert _try_in_child(path) == 3  # a third process is refused too
    finally:
        holder.communicate("")  # the holder exits normally: the lock goes with it
    mine.acquire()
    assert mine.held
    assert _try_in_child(path) == 3  # now this process holds it
    mine.release()
    assert _try_in_child(path) == 0


def test_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "job_2.lock"
    holder = _start_holder(path)
    assert _try_in_child(path) == 3
    holder.kill()  # SIGKILL on POSIX, TerminateProcess on Windows: no clean-up runs
    holder.wait()
    lock = JobLock(path, busy=lambda p: AssertionError(f"still held: {p}"))
    lock.acquire()  # the OS dropped the dead process's lock
    lock.remove()
    assert not path.exists()


def test_job_lock_error_factory_and_idempotence(tmp_path: Path) -> None:
    class Busy(Exception):
        pass

    path = tmp_path / "sub" / "job_3.lock"  # a missing directory is created
    a = JobLock(path)
    b = JobLock(path, busy=lambda p: Busy(p.name))
    a.acquire()
    a.acquire()  # idempotent while held
    with pytest.raises(Busy, match=r"job_3\.lock"):
        b.acquire()  # another JobLock of the same process is refused as well
    a.release()
    a.release()  # idempotent
    a.close()
    with b:
        assert b.held and "held=True" in repr(b)
        a.remove()  # not held by `a`: leaves b's file alone
        assert path.exists()
    assert not b.held
    if POSIX:
        assert _mode(path) == 0o600


def test_job_lock_may_be_released_by_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "job_4.lock"
    lock = JobLock(path)
    lock.acquire()
    t = threading.Thread(target=lock.release)
    t.start()
    t.join()
    assert not lock.held
    assert _try_in_child(path) == 0


@pytest.mark.parametrize("erase", [True, False])
def test_erasing_overwrites_deleted_records(tmp_path: Path, erase: bool) -> None:
    """What ``forget`` and retention delete is overwritten, in the file and its WAL, even
    where SQLite's build does not zero deleted records by default (the control, without
    ``erasing()``, shows the bytes would otherwise stay)."""
    db = SQLiteFile(tmp_path / "e.sqlite3", schema="CREATE TABLE t (v TEXT);")
    secret = "ada.lovelace@analytical.example"
    with db.lock:
        db.conn.execute("PRAGMA secure_delete=OFF")  # a build whose default is off
        db.conn.executemany("INSERT INTO t VALUES (?)", [(secret,), ("someone else",)])
        with db.erasing() if erase else contextlib.nullcontext(db.conn) as conn:
            conn.execute("DELETE FROM t WHERE v = ?", (secret,))
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert db.conn.execute("PRAGMA secure_delete").fetchone()[0] == 0  # restored
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("e.sqlite3*"))
    assert (secret.encode() in raw) is not erase
    assert b"someone else" in raw
    db.close()


def _filled(path: Path) -> SQLiteFile:
    db = SQLiteFile(path, schema="CREATE TABLE t (v INTEGER);")
    with db.lock, db.transaction() as conn:
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)])
    return db


def test_close_leaves_the_checkpoint_to_a_background_thread(tmp_path: Path) -> None:
    db = _filled(tmp_path / "c.sqlite3")
    wal = Path(str(db.path) + "-wal")
    assert wal.exists() and wal.stat().st_size > 0
    db.close()
    assert db.closed
    with pytest.raises(RuntimeError, match="closed"):
        _ = db.conn
    assert wait_for_deferred()
    assert not wal.exists()  # the last connection closed: checkpointed, WAL removed
    again = SQLiteFile(db.path)
    assert again.conn.execute("SELECT COUNT(*) FROM t").fetchone() == (2000,)
    again.close(wait=True)
    db2 = _filled(tmp_path / "d.sqlite3")
    db2.close(wait=True)
    assert not Path(str(db2.path) + "-wal").exists()


def test_closes_left_to_the_background_thread_are_done_before_the_process_exits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.sqlite3"
    code = textwrap.dedent(
        f"""
        from cleanlist_pandas.store.files import SQLiteFile
        db = SQLiteFile({str(path)!r}, schema="CREATE TABLE t (v INTEGER);")
        with db.lock, db.transaction() as conn:
            conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)])
        db.close()
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert path.exists() and not Path(str(path) + "-wal").exists()
