"""Issue 19: the command line checks everything local before it sends anything, never loses
the rows it paid for when the output cannot be written, and answers a user's mistake with
a message, never a Python traceback.

The user errors run the installed command in a subprocess, against the session sandbox, and
check its request counter: a refused command sent nothing. A write that fails *after* the
run paid is simulated in-process (a writer that raises, as a full disk would).
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cleanlist_pandas as clp
from cleanlist_pandas import _csvio
from cleanlist_pandas._constants import ENRICHMENT_TYPES, MAX_UNIT_COST
from cleanlist_pandas.cli import build_parser, main
from cleanlist_pandas.sandbox import Sandbox

LEADS = "First Name,Last Name,Website\nAda,Lovelace,acme.com\nBob,Chen,initech.com\n"
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def _command() -> list[str]:
    """The installed console script (the real entry point), else the module."""
    script = Path(sys.executable).with_name("cleanlist-pandas")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cleanlist_pandas.cli"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANLIST_")}
    env["CLEANLIST_CACHE_DIR"] = str(tmp_path / "cache")
    env["COLUMNS"] = "80"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    )
    return env


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )


def _files(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text(LEADS)
    (tmp_path / "adir").mkdir()
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(b"First Name\n\x81\x8d\x8f\x90\x9d\xff\n")
    (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04\x81\x8d\x8f\x90\x9d")
    (tmp_path / "old.csv").write_text(LEADS.replace("Website\n", "Website,cl_email\n"))


# (arguments, a piece of the message); every one exits 2 with nothing sent
USER_ERRORS: list[tuple[list[str], str]] = [
    (["enrich", "nope.csv"], "error: nope.csv: no such file"),
    (["estimate", "nope.csv"], "error: nope.csv: no such file"),
    (["pilot", "nope.csv"], "error: nope.csv: no such file"),
    (["enrich", "adir"], "adir is a directory"),
    (["enrich", "empty.csv"], "empty.csv is empty"),
    (["enrich", "binary.csv"], "binary.csv: not UTF-8 nor cp1252 text"),
    (["enrich", "book.xlsx"], "looks like an Excel workbook"),
    (["enrich", "leads.csv", "--output-encoding", "klingon"], "--output-encoding 'klingon'"),
    (["enrich", "leads.csv", "--output-encoding", "rot13"], "not a text encoding"),
    (["enrich", "leads.csv", "--output-delimiter", "ab"], "--output-delimiter 'ab'"),
    (["enrich", "leads.csv", "--output-delimiter", '"'], "--output-delimiter '\"'"),
    (["enrich", "leads.csv", "-o", "/nonexistent/dir/out.csv"],
     "-o /nonexistent/dir/out.csv: the directory /nonexistent/dir does not exist"),
    (["enrich", "leads.csv", "-o", "adir"], "-o adir: adir is a directory"),
    (["enrich", "leads.csv", "-o", "./leads.csv"], "is the input file"),
    (["enrich", "old.csv"], "['cl_email'] already exist in the input file"),
    (["enrich", "leads.csv", "-c", "first_name=Nope"], "-c first_name=Nope: no column 'Nope'"),
    (["enrich", "leads.csv", "--max-credits", "-1"], "--max-credits must be >= 0"),
    (["pilot", "leads.csv", "-c", "first_name=Nope"], "-c first_name=Nope: no column 'Nope'"),
    (["pilot", "leads.csv", "-o", "/nonexistent/dir/s.csv"], "the directory /nonexistent/dir"),
    (["pilot", "leads.csv", "-n", "0"], "-n 0: the sample needs at least 1 contact"),
    (["spend", "--csv", "/nonexistent/dir/s.csv"], "--csv /nonexistent/dir/s.csv"),
]  # fmt: skip


def test_user_errors_are_messages_found_before_anything_is_sent(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    _files(tmp_path)
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url]
    for args, words in USER_ERRORS:
        full = args if args[0] == "spend" else [*args, *conn]
        p = run_cli(tmp_path, *full)
        err = " ".join(p.stderr.split())
        assert p.returncode == 2, (args, p.stderr)
        assert words in err, (args, p.stderr)
        assert err.startswith("error: ") and "Traceback" not in p.stderr, (args, p.stderr)
        assert "[Errno" not in p.stderr, (args, p.stderr)
        assert sandbox.api_key not in p.stdout + p.stderr
        assert sandbox.stats()["total"] == 0, (args, sandbox.stats())  # nothing sent
    assert sandbox.ledger() == []  # nothing paid
    made = {"adir", "binary.csv", "book.xlsx", "empty.csv", "leads.csv", "old.csv"}
    assert {p.name for p in tmp_path.iterdir()} - {"cache"} == made  # no output, no probe
    assert not list((tmp_path / "adir").iterdir())


@pytest.mark.skipif(ROOT or os.name != "posix", reason="permissions do not bind root")
def test_unreadable_input_and_unwritable_output_directory(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    _files(tmp_path)
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url]
    locked = tmp_path / "locked.csv"
    locked.write_text(LEADS)
    locked.chmod(0)
    p = run_cli(tmp_path, "enrich", "locked.csv", *conn)
    assert p.returncode == 2 and "locked.csv: permission denied" in p.stderr
    (tmp_path / "adir").chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        p = run_cli(tmp_path, "enrich", "leads.csv", "-o", "adir/out.csv", *conn)
    finally:
        (tmp_path / "adir").chmod(0o700)
    assert p.returncode == 2 and "cannot create a file in adir" in p.stderr
    assert "Traceback" not in p.stderr and "[Errno" not in p.stderr
    assert sandbox.stats()["total"] == 0


def test_unreadable_input_and_unwritable_output_directory_in_process(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same two cases where permissions cannot be taken away (root, Windows): the
    file system's answer is simulated."""
    _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url]
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "leads.csv":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read(self)

    with monkeypatch.context() as m:
        m.setattr(Path, "read_bytes", read_bytes)
        assert main(["enrich", "leads.csv", *conn]) == 2
    assert "error: leads.csv: permission denied, cannot read it" in capsys.readouterr().err

    real_mkstemp = _csvio.tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if Path(kwargs.get("dir") or ".").name == "adir":
            raise PermissionError(errno.EACCES, "Permission denied", "adir/x")
        return real_mkstemp(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(_csvio.tempfile, "mkstemp", mkstemp)
        assert main(["enrich", "leads.csv", "-o", "adir/out.csv", *conn]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "-o adir/out.csv: cannot create a file in adir (permission denied)" in err
    assert sandbox.stats()["total"] == 0


# -- after paying, the rows are never lost ---------------------------------------------------
def _failing_writes(
    monkeypatch: pytest.MonkeyPatch, fails: Any, code: int = errno.ENOSPC
) -> list[Path]:
    """Make ``write_csv`` raise (disk full) for the paths ``fails(path)`` picks, as a disk
    that fills up during the run would; returns the paths it was asked to write."""
    real = _csvio.write_csv
    asked: list[Path] = []

    def write_csv(df: Any, path: Any, fmt: _csvio.CsvFormat) -> _csvio.CsvFormat:
        asked.append(Path(path) if isinstance(path, str | Path) else path)
        if isinstance(path, str | Path) and fails(Path(path)):
            Path(path).write_text("trunc")  # a partial file, as a full disk leaves one
            raise OSError(code, os.strerror(code), str(path))
        return real(df, path, fmt)

    monkeypatch.setattr(_csvio, "write_csv", write_csv)
    return asked


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_failed_write_after_paying_saves_a_private_fallback_next_to_it(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src, out = tmp_path / "leads.csv", tmp_path / "out" / "enriched.csv"
    src.write_text(LEADS)
    out.parent.mkdir()
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "cache"))
    _failing_writes(monkeypatch, lambda p: p == out)
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url, "--no-progress"]
    code = main(["enrich", str(src), "-t", "full", "-o", str(out), *conn])
    captured = capsys.readouterr()
    assert code == 1
    assert sandbox.ledger(), "the run paid"
    assert not out.exists()  # the truncated file the failed write left is gone
    rescued = list(out.parent.glob("enriched.rescued-*.csv"))
    assert len(rescued) == 1
    fallback = rescued[0]
    if os.name == "posix":
        assert _mode(fallback) == 0o600  # personal data: only its owner reads it
    res = pd.read_csv(fallback, dtype="string")
    assert len(res) == 2 and res["First Name"].tolist() == ["Ada", "Bob"]
    assert res["cl_status"].notna().all() and "cl_email" in res.columns
    paid = sum(r["credits"] for r in sandbox.ledger())
    assert float(res["cl_credits"].astype(float).sum()) == paid
    err = captured.err
    flat = " ".join(err.split())
    assert f"could not write {out} (no space left on device)" in flat
    assert f"saved in {fallback} instead" in flat and "readable only by you" in flat
    assert f"\n  mv {fallback} {out}\n" in err  # one line, ready to paste
    assert f"Wrote 2 rows to {fallback}" in captured.out
    assert "Traceback" not in err and "[Errno" not in err


def test_fallback_goes_to_the_cache_directory_then_stdout(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src, out = tmp_path / "leads.csv", tmp_path / "out" / "enriched.csv"
    src.write_text(LEADS)
    out.parent.mkdir()
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(cache))
    _failing_writes(monkeypatch, lambda p: p.parent == out.parent)  # that whole disk is full
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url, "--no-progress"]
    assert main(["enrich", str(src), "-o", str(out), *conn]) == 1
    rescued = list(cache.glob("enriched.rescued-*.csv"))
    assert len(rescued) == 1 and not list(out.parent.iterdir())
    if os.name == "posix":
        assert _mode(rescued[0]) == 0o600
    assert len(pd.read_csv(rescued[0])) == 2
    assert f"saved in {rescued[0]}" in " ".join(capsys.readouterr().err.split())

    # nowhere at all: with the cache on, the same command serves the paid rows for free
    calls = sandbox.stats()["total"]
    _failing_writes(monkeypatch, lambda p: True)
    assert main(["enrich", str(src), "-o", str(out), *conn]) == 1
    captured = capsys.readouterr()
    flat = " ".join(captured.err.split())
    assert "nor a fallback file" in flat and "results are in the local cache" in flat
    assert "run the same command again" in flat.lower()
    assert sandbox.stats()["total"] == calls  # served from the cache: nothing sent
    # and with --no-cache, the last place left is standard output
    assert main(["enrich", str(src), "-o", str(out), "--no-cache", *conn]) == 1
    captured = capsys.readouterr()
    assert "the rows follow on standard output" in " ".join(captured.err.split())
    assert captured.out.startswith("First Name,Last Name,Website,cl_email")
    assert "Ada,Lovelace,acme.com" in captured.out


def test_ctrl_c_partial_rows_get_the_same_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cleanlist_pandas.errors import EnrichmentInterrupted
    from cleanlist_pandas.run import job

    src, out = tmp_path / "leads.csv", tmp_path / "partial.csv"
    src.write_text(LEADS)
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "cache"))
    partial = pd.read_csv(src, dtype="string").assign(cl_status=["enriched", "pending"])

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise EnrichmentInterrupted("x", partial_result=partial, job_id="job_x")

    monkeypatch.setattr(job, "enrich", interrupted)
    _failing_writes(monkeypatch, lambda p: p == out, errno.EACCES)
    code = main(["enrich", str(src), "-o", str(out), "--sandbox", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 130
    rescued = list(tmp_path.glob("partial.rescued-*.csv"))
    assert len(rescued) == 1 and not out.exists()
    assert pd.read_csv(rescued[0], dtype="string")["cl_status"].tolist() == [
        "enriched", "pending",
    ]  # fmt: skip
    flat = " ".join(err.split())
    assert f"could not be written to {out} (permission denied)" in flat
    assert f"\n  mv {rescued[0]} {out}\n" in err
    assert "run the same command again to resume" in flat and "Traceback" not in err


def test_pilot_sample_output_gets_the_same_fallback(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src, out = tmp_path / "leads.csv", tmp_path / "sample.csv"
    src.write_text(LEADS)
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "cache"))
    _failing_writes(monkeypatch, lambda p: p == out)
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url, "--no-progress"]
    assert main(["pilot", str(src), "-n", "2", "-o", str(out), *conn]) == 1
    captured = capsys.readouterr()
    rescued = list(tmp_path.glob("sample.rescued-*.csv"))
    assert len(rescued) == 1 and len(pd.read_csv(rescued[0])) == 2
    assert "Cleanlist pilot" in captured.out  # the measured rates are shown all the same
    assert "The sampled rows (2) are saved in" in " ".join(captured.err.split())


# -- --version, and help for every option ----------------------------------------------------
def test_version(tmp_path: Path) -> None:
    p = run_cli(tmp_path, "--version")
    assert p.returncode == 0 and p.stdout == f"cleanlist-pandas {clp.__version__}\n"


def _parsers(
    parser: argparse.ArgumentParser, name: str = "cleanlist-pandas"
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                found += _parsers(p, f"{name} {sub}")
    return found


def test_every_option_of_every_subcommand_has_help() -> None:
    missing = []
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                missing += [f"{name} {c}" for c in action.choices if c not in helped]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_type_help_lists_every_type_with_its_worst_case_cost() -> None:
    for name in ("enrich", "estimate", "pilot"):
        sub = dict(_parsers(build_parser()))[f"cleanlist-pandas {name}"]
        (action,) = [a for a in sub._actions if "-t" in a.option_strings]
        assert action.help
        for t in ENRICHMENT_TYPES:
            assert f"{t} {MAX_UNIT_COST[t]:g}" in action.help, t
        assert "worst-case credits per contact" in action.help
