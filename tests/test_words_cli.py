"""Issue 9, items 8 and 9: the command line speaks CLI. Every check runs the installed
command in a subprocess, as a user would, and reads its stdout, stderr, exit status and the
files it writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cleanlist_pandas.sandbox import Sandbox

SEMICOLON_CP1252 = (
    "Vorname;Nachname;Website;LinkedIn\r\n"
    "Zoë;Müller;https://www.acme.de/impressum;\r\n"
    "Bob;;b.com;\r\n"
    "René;Dupont;ecole.fr;\r\n"
    ";;;linkedin.com/in/someone-%2F-else\r\n"
)
LONG_REASON = "invalid linkedin_url: the profile name is blank"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANLIST_")}
    env["CLEANLIST_CACHE_DIR"] = str(tmp_path / "cache")
    env["COLUMNS"] = "80"
    env.update(extra)
    return env


def _restore_sigint() -> None:  # a child of a background job may start with SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanlist_pandas.cli", *args],
        capture_output=True,
        text=True,
        env=env or _env(tmp_path),
        cwd=tmp_path,
        timeout=timeout,
    )


@pytest.fixture
def leads_csv(tmp_path: Path) -> Path:
    src = tmp_path / "leads.csv"
    src.write_bytes(SEMICOLON_CP1252.encode("cp1252"))
    return src


# -- 9. estimate without a key --------------------------------------------------------------
def test_estimate_without_a_key_shows_everything_but_the_balance(
    tmp_path: Path, leads_csv: Path
) -> None:
    p = cli(tmp_path, "estimate", str(leads_csv), "-t", "full")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for line in ("rows", "valid", "to send", "worst-case credits"):
        assert f"  {line} " in out
    lines = out.splitlines()
    assert any(line.split()[:2] == ["balance", "unknown"] for line in lines if line.strip())
    assert any(line.split()[:2] == ["sufficient", "unknown"] for line in lines if line.strip())
    assert "balance not read" in out and "--api-key" in out and "CLEANLIST_API_KEY" in out
    assert "configure(" not in out + p.stderr and "api_key=" not in out + p.stderr


# -- 8. no key, -c, wrapping -----------------------------------------------------------------
def test_no_key_names_the_command_line_options(tmp_path: Path, leads_csv: Path) -> None:
    for args in (["enrich", str(leads_csv)], ["balance"], ["validate-key"]):
        p = cli(tmp_path, *args)
        assert p.returncode == 2, (args, p.stderr)
        err = p.stderr
        assert "--api-key" in err and "CLEANLIST_API_KEY" in err and "--sandbox" in err
        assert "configure(" not in err and "api_key=" not in err
        assert "Traceback" not in err


def test_a_revoked_key_speaks_cli_and_never_shows_the_key(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    key = sandbox.api_key
    sandbox.revoke_key(key)
    p = cli(tmp_path, "balance", "--api-key", key, "--base-url", sandbox.base_url)
    assert p.returncode == 1
    assert "AuthenticationError" in p.stderr and "--api-key" in p.stderr
    assert "configure(" not in p.stderr and key not in p.stdout + p.stderr


def test_column_errors_name_dash_c(tmp_path: Path, leads_csv: Path) -> None:
    p = cli(tmp_path, "estimate", str(leads_csv), "-c", "Vorname=first_name")
    assert p.returncode == 2
    err = " ".join(p.stderr.split())
    assert "did you mean -c first_name=Vorname?" in err
    assert "columns=" not in err and "Traceback" not in err
    p = cli(tmp_path, "estimate", str(leads_csv), "-c", "first_name=Nope")
    assert p.returncode == 2 and "-c first_name=Nope: no column 'Nope'" in p.stderr
    assert "columns=" not in p.stderr
    p = cli(tmp_path, "estimate", str(leads_csv), "-c", "nonsense")
    assert p.returncode == 2 and "-c expects FIELD=COLUMN" in p.stderr
    ambiguous = tmp_path / "two.csv"
    ambiguous.write_text("Website,Domain,First Name,Last Name\na.com,b.com,A,B\n")
    p = cli(tmp_path, "estimate", str(ambiguous))
    err = " ".join(p.stderr.split())
    assert p.returncode == 2 and "-c company_domain=Website" in err and "columns=" not in err
    # FIELD= ignores a field, as the message offers
    p = cli(tmp_path, "estimate", str(ambiguous), "-c", "company_domain=Domain")
    assert p.returncode == 0, p.stderr


def test_estimate_table_fits_80_columns(tmp_path: Path, leads_csv: Path) -> None:
    p = cli(tmp_path, "estimate", str(leads_csv))
    assert p.returncode == 0, p.stderr
    assert LONG_REASON.split(":")[0] in p.stdout
    assert max(len(line) for line in p.stdout.splitlines()) <= 80, p.stdout


def test_cache_info_is_a_readable_table(tmp_path: Path, leads_csv: Path) -> None:
    p = cli(tmp_path, "enrich", str(leads_csv), "--sandbox", "--no-progress")
    assert p.returncode == 0, p.stderr
    p = cli(tmp_path, "cache", "info")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.startswith("Cleanlist result cache")
    assert "  results " in out and "    partial " in out and "KiB" in out
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert f"  oldest     {today}" in out and f"  newest     {today}" in out
    assert "{" not in out and "stored_at" not in out and "size_bytes" not in out


# -- 8. the output CSV keeps the input's format ---------------------------------------------
def test_output_csv_keeps_delimiter_encoding_and_line_endings(
    tmp_path: Path, leads_csv: Path
) -> None:
    out_csv = tmp_path / "out.csv"
    p = cli(tmp_path, "enrich", str(leads_csv), "--sandbox", "--no-progress", "-o", str(out_csv))
    assert p.returncode == 0, p.stderr
    assert "';'-separated, cp1252, CRLF" in p.stdout
    raw = out_csv.read_bytes()
    text = raw.decode("cp1252")  # Excel's own encoding: opens as it was
    assert "Zoë;Müller;" in text and "René;Dupont" in text
    header = text.split("\r\n")[0]
    assert header.startswith("Vorname;Nachname;Website;LinkedIn;cl_email;")
    assert text.count("\r\n") == 5 and "\n" not in text.replace("\r\n", "")
    res = pd.read_csv(out_csv, sep=";", encoding="cp1252", dtype="string")
    assert res["cl_status"].tolist()[1] == "skipped"
    # unless told otherwise
    p = cli(
        tmp_path, "enrich", str(leads_csv), "--sandbox", "--no-progress", "-o", str(out_csv),
        "--output-delimiter", ",", "--output-encoding", "utf-8",
    )
    assert p.returncode == 0, p.stderr
    text = out_csv.read_bytes().decode("utf-8")
    assert text.startswith("Vorname,Nachname,Website,LinkedIn,cl_email,") and "Zoë,Müller" in text


# -- 8. Ctrl-C: the partial CSV's path, "the same command", exit 130 -------------------------
def test_ctrl_c_says_run_the_same_command_and_exits_130(
    tmp_path: Path, make_sandbox: object, leads_csv: Path
) -> None:
    sb: Sandbox = make_sandbox(time_scale=1.0)  # type: ignore[operator]
    out_csv = tmp_path / "partial.csv"
    args = [
        "enrich", str(leads_csv), "--no-progress", "-o", str(out_csv),
        "--api-key", sb.api_key, "--base-url", sb.base_url,
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cleanlist_pandas.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        preexec_fn=_restore_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not sb.stats()["by_endpoint"].get("POST /enrich/bulk"):  # submitted: in flight
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    flat = " ".join(err.split())
    assert "run the same command again" in flat and str(out_csv) in flat
    assert ".partial_result" not in err and "Traceback" not in err
    assert sb.api_key not in out + err and "--api-key KEY" in err
    partial = pd.read_csv(out_csv, sep=";", encoding="cp1252", dtype="string")
    assert len(partial) == 4 and (partial["cl_status"] == "pending").any()


def test_any_keyboard_interrupt_subclass_exits_130(
    tmp_path: Path, leads_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python maps only an uncaught plain KeyboardInterrupt to 130; EnrichmentInterrupted is
    a subclass (a plain script would exit 1), so the command exits 130 itself."""
    from cleanlist_pandas import cli as cli_module
    from cleanlist_pandas.errors import EnrichmentInterrupted

    def interrupted(args: object) -> int:
        raise EnrichmentInterrupted("x", partial_result=pd.DataFrame(), job_id="job_x")

    monkeypatch.setattr(cli_module, "cmd_estimate", interrupted)
    assert cli_module.main(["estimate", str(leads_csv)]) == 130


SCRIPT = """
import sys
import pandas as pd
import cleanlist_pandas as clp

df = pd.DataFrame({"First Name": ["Ada", "Bob"], "Last Name": ["L", "M"],
                   "Website": ["acme.com", "b.com"]})
df.cleanlist.enrich(api_key=sys.argv[1], base_url=sys.argv[2], progress=False)
print("not reached")
"""


def test_ctrl_c_in_a_plain_script_ends_it_as_python_does(
    tmp_path: Path, make_sandbox: object
) -> None:
    """Python ends a script by SIGINT (130 in the shell) only for an uncaught *plain*
    KeyboardInterrupt; EnrichmentInterrupted, a subclass, gets the same ending."""
    sb: Sandbox = make_sandbox(time_scale=1.0)  # type: ignore[operator]
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), sb.api_key, sb.base_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        preexec_fn=_restore_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not sb.stats()["by_endpoint"].get("POST /enrich/bulk"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGINT, err  # the shell shows 130
    assert "EnrichmentInterrupted" in err and "run the same call again" in err
    assert "not reached" not in out


def test_credit_warnings_speak_cli(tmp_path: Path, make_sandbox: object) -> None:
    sb: Sandbox = make_sandbox(credits=20.0)  # type: ignore[operator]
    src = tmp_path / "three.csv"
    src.write_text("First Name,Last Name,Website\nAda,L,acme.com\nBob,M,b.com\n")
    p = cli(
        tmp_path, "enrich", str(src), "-t", "full", "--no-progress",
        "--api-key", sb.api_key, "--base-url", sb.base_url,
    )
    assert p.returncode == 0, p.stderr
    err = " ".join(p.stderr.split())
    assert "accepts a request only if the balance covers that request's worst case" in err
    assert "pass --max-credits 20 to spend only the balance" in err
    assert "run the same command again (cleanlist-pandas enrich" in err
    assert "--api-key KEY" in err and sb.api_key not in p.stdout + p.stderr
    for python in ("max_credits=", "df.cleanlist", "the same call", "enrichment_type"):
        assert python not in err, python
    assert max(len(line) for line in p.stderr.splitlines()) <= 80


# -- issue 12: --only-missing, --fill, and the pilot command ---------------------------------
SELECT_CSV = "First Name,Last Name,Website,E-mail,Mobile\n" + "".join(
    f"Ann{k},Lee{k},co{k % 5}.com,{f'own{k}@co.com' if k % 3 == 0 else ''},\n" for k in range(30)
)


def test_only_missing_and_fill_on_the_command_line(tmp_path: Path, sandbox: Sandbox) -> None:
    src = tmp_path / "leads.csv"
    src.write_text(SELECT_CSV)
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url]
    p = cli(tmp_path, "estimate", str(src), "-t", "full", "--only-missing", "email")
    assert p.returncode == 0, p.stderr
    assert "by only_missing=" in p.stdout and "credits saved" in p.stdout
    out_csv = tmp_path / "out.csv"
    p = cli(
        tmp_path, "enrich", str(src), "-t", "full", "--only-missing", "email", "--fill",
        "--no-progress", "-o", str(out_csv), *conn,
    )
    assert p.returncode == 0, p.stderr
    out = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    had = out.index % 3 == 0
    assert (out.loc[had, "cl_status"] == "skipped").all()
    assert (out.loc[had, "cl_error"] == "has email (column 'E-mail')").all()
    assert (out.loc[had, "E-mail"] == [f"own{k}@co.com" for k in range(0, 30, 3)]).all()
    filled = ~had & (out["cl_email"] != "")
    assert filled.any() and (out.loc[filled, "E-mail"] == out.loc[filled, "cl_email"]).all()
    phones = out["cl_phone"] != ""
    assert phones.any() and (out.loc[phones, "Mobile"] == out.loc[phones, "cl_phone"]).all()
    sent = {t.contact["first_name"] for wf in sandbox.state.workflows.values() for t in wf.tasks}
    assert sent == {f"Ann{k}" for k in range(30) if k % 3}
    # the command line's words for a column it cannot find
    p = cli(tmp_path, "estimate", str(src), "--only-missing", "phone=Phone")
    assert p.returncode == 2 and "--only-missing phone=Phone: no column 'Phone'" in p.stderr
    p = cli(tmp_path, "estimate", str(src), "--only-missing", "fax")
    assert p.returncode == 2 and "--only-missing takes email or phone" in p.stderr
    assert "only_missing=" not in p.stderr and "Traceback" not in p.stderr


def test_pilot_command_prints_rates_and_estimate_then_shows_them(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    src = tmp_path / "leads.csv"
    src.write_text(SELECT_CSV)
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url]
    sample_csv = tmp_path / "sample.csv"
    p = cli(
        tmp_path, "pilot", str(src), "-n", "12", "-t", "full", "--seed", "4", "--no-progress",
        "-o", sample_csv.name, *conn,  # (the command runs in tmp_path)
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.startswith("Cleanlist pilot (full): 12 of 30 contacts (seed 4)")
    for words in ("email found", "phone found", "95% CI", "expected credits", "worst case"):
        assert words in out, words
    assert max(len(line) for line in out.splitlines()) <= 80
    assert len(pd.read_csv(sample_csv)) == 12
    assert sandbox.api_key not in out + p.stderr
    # no key: the one organization this machine used at that server (the sandbox)
    p = cli(tmp_path, "estimate", str(src), "-t", "full", "--base-url", sandbox.base_url)
    assert p.returncode == 0 and "expected (from pilot)" in p.stdout and "pilot of 12" in p.stdout
    # ... and none of it at another server (here the real API, the default)
    p = cli(tmp_path, "estimate", str(src), "-t", "full")
    assert p.returncode == 0 and "expected (from pilot)" not in p.stdout
