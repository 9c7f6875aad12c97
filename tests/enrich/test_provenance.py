"""Every stored result knows where it came from (issue 19, finding 1): the cache, the
journal and the spend ledger are keyed by the API's origin and the organization that paid,
a sandbox's results never serve a run against another server, and a client pointed at a
sandbox needs no plumbing (its pace, its speed and its scratch directory come from
``/_sandbox/info``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_enrich_run import bulk_requests, leads, ledger_total

import cleanlist_pandas as clp
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.store.cache import UNATTRIBUTED, ResultCache
from cleanlist_pandas.store.files import wait_for_deferred
from cleanlist_pandas.store.journal import Journal
from cleanlist_pandas.store.provenance import Scope

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def run(df: pd.DataFrame, client: Any, **kw: Any) -> pd.DataFrame:
    kw.setdefault("poll", FAST)
    kw.setdefault("progress", False)
    out = df.cleanlist.enrich(client=client, **kw)
    assert isinstance(out, pd.DataFrame)
    return out


def scaled_client(sb: Sandbox) -> clp.Client:
    return clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * sb.config.time_scale)


def test_a_sandboxs_results_never_serve_another_server(
    make_sandbox: Any, _cache_dir: Path
) -> None:
    """The outside try: enrich on a sandbox, then the same rows against a different server
    on the same cache directory. Before: '39 from cache', credits 1. Now every contact is
    sent to the second server and paid there."""
    df = leads(60)
    first, second = make_sandbox(seed=1), make_sandbox(seed=2)
    for sb in (first, second):
        sb.config.task_failure_rate = 0.0  # a failed look-up is tried again by a re-run
    with scaled_client(first) as c1:
        run(df, c1)
    assert bulk_requests(first) == 1 and ledger_total(first) > 0
    with scaled_client(second) as c2:
        out = run(df, c2)
    assert bulk_requests(second) == 1  # nothing served from the first server's results
    sent = sum(len(wf.tasks) for wf in second.state.workflows.values())
    assert sent == 60
    assert float(out["cl_credits"].sum()) == pytest.approx(ledger_total(second))
    # ... while the same server serves its own results again, for free
    with scaled_client(second) as c2:
        again = run(df, c2)
    assert bulk_requests(second) == 1 and float(again["cl_credits"].sum()) == 0
    # the cache holds both servers' results, each attributed
    wait_for_deferred()
    with sqlite3.connect(_cache_dir / "results.sqlite3") as conn:
        scopes = conn.execute(
            "SELECT origin, organization_id, COUNT(*) FROM results GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
    origins = {first.root_url, second.root_url}
    assert {(o, n) for o, _org, n in scopes} == {(o, 60) for o in origins}
    assert {org for _o, org, _n in scopes} == {first.organization_id, second.organization_id}


def test_another_organization_on_the_same_server_pays_for_its_own(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    df = leads(30)
    run(df, client)
    org, key = sandbox.add_organization(credits=1_000)
    other = clp.Client(api_key=key, base_url=sandbox.base_url,
                       per=60 * sandbox.config.time_scale)
    with other:
        out = run(df, other)
    assert bulk_requests(sandbox) == 2
    charged = sum(r["credits"] for r in sandbox.ledger() if r["organization_id"] == org)
    assert float(out["cl_credits"].sum()) == pytest.approx(charged) and charged > 0
    runs = clp.spend()
    assert set(runs["organization_id"]) == {sandbox.organization_id, org}
    assert set(runs["origin"]) == {sandbox.root_url}


def test_the_organization_is_asked_once_per_key_and_server(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    run(leads(5), client)
    run(leads(5, start=100), client)
    asked = sandbox.stats()["by_endpoint"].get("GET /auth/validate-key", {})
    assert sum(asked.values()) == 1  # remembered under the key's fingerprint
    wait_for_deferred()
    with sqlite3.connect(_cache_dir / "spend.sqlite3") as conn:
        rows = conn.execute("SELECT * FROM accounts").fetchall()
    assert len(rows) == 1 and sandbox.api_key not in repr(rows)
    assert (_cache_dir / "spend.sqlite3").read_bytes().find(sandbox.api_key.encode()) < 0


def test_a_resumed_job_of_another_server_is_not_polled_here(
    make_sandbox: Any, _cache_dir: Path
) -> None:
    """An open job (workflows still to collect) at one server is not resumed by the same
    call against another: its workflow ids mean nothing there."""
    sb1, sb2 = make_sandbox(seed=1), make_sandbox(seed=2)
    df = leads(20)
    with scaled_client(sb1) as c1:
        run(df, c1)
    j = Journal(_cache_dir / "journal.sqlite3")
    try:
        job = j.jobs()[0]
        # reopen it, as if the run had been interrupted with its workflow in flight
        with j._file.lock:
            j._db.execute("UPDATE jobs SET state = 'open' WHERE job_id = ?", (job.job_id,))
    finally:
        j.close()
    with scaled_client(sb2) as c2:
        out = run(df, c2)
    status_reads = sb2.stats()["by_endpoint"].get("GET /enrich/status", {})
    assert bulk_requests(sb2) == 1 and sum(status_reads.values()) >= 1
    assert "404" not in status_reads  # sb1's workflow was never asked for at sb2
    assert not out["cl_error"].fillna("").str.contains("not found").any()


def test_a_version_01_cache_is_quarantined_never_served(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    """A cache written before attribution: its results cannot be told apart (a sandbox's
    workflow ids look like the real API's), so they move to results_unattributed, are never
    served, and remain erasable."""
    df = leads(10)
    _cache_dir.mkdir(parents=True, exist_ok=True)
    from cleanlist_pandas.frame.mapping import map_contacts
    from cleanlist_pandas.frame.plan import plan

    fps = [str(f) for f in plan(map_contacts(df), "partial").fingerprints]
    with sqlite3.connect(_cache_dir / "results.sqlite3") as conn:
        conn.executescript(
            "CREATE TABLE results (fingerprint TEXT NOT NULL, enrichment_type TEXT NOT NULL,"
            " result TEXT NOT NULL, workflow_id TEXT, task_id TEXT, stored_at REAL NOT NULL,"
            " PRIMARY KEY (fingerprint, enrichment_type)) WITHOUT ROWID;"
            " PRAGMA user_version=1;"
        )
        import json
        import time

        conn.executemany(
            "INSERT INTO results VALUES (?, 'partial', ?, 'public_bulk_x', 't', ?)",
            [
                (fp, json.dumps({"status": "completed", "primary_email": f"old{i}@x.io"}),
                 time.time())
                for i, fp in enumerate(fps)
            ],
        )
    out = run(df, client)
    assert bulk_requests(sandbox) == 1  # every contact sent: nothing old was served
    assert not out["cl_email"].fillna("").str.startswith("old").any()
    with ResultCache(_cache_dir) as cache:
        stats = cache.stats()
        assert stats["unattributed"] == 10 and stats["entries"] == 10
    gone = clp.forget(email="old3@x.io")
    # erasable like any result: the person's old entry, and (same contact) the new one
    assert gone.cache_entries == 2 and len(gone.fingerprints) == 1
    with sqlite3.connect(_cache_dir / "results.sqlite3") as conn:
        assert conn.execute(f"SELECT COUNT(*) FROM {UNATTRIBUTED}").fetchone()[0] == 9


def test_a_client_pointed_at_a_sandbox_paces_to_it_by_itself(
    make_sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No per=, no poll=, no cache directory: the sandbox says its clock and its scratch
    directory, and the client follows (issue 19, finding 5)."""
    monkeypatch.delenv("CLEANLIST_CACHE_DIR")
    sb = make_sandbox(time_scale=0.01)
    assert sb.cache_dir is not None and Path(sb.cache_dir).is_dir()
    with clp.Client(api_key=sb.api_key, base_url=sb.base_url) as client:
        info = client.sandbox_info()
        assert info is not None and info.time_scale == 0.01
        assert client.pacer.per == pytest.approx(0.6) and client.pacer.rate == 60
        out = leads(300).cleanlist.enrich(client=client, progress=False)
    assert (out["cl_status"].isin(["enriched", "not_found", "failed"])).all()
    # the run's files went to the sandbox's scratch directory, not the user's cache
    wait_for_deferred()
    assert (Path(sb.cache_dir) / "results.sqlite3").exists()
    assert (Path(sb.cache_dir) / "spend.sqlite3").exists()
    # ... which the sandbox removes when it stops
    scratch = Path(sb.cache_dir)
    sb.stop()
    assert not scratch.exists()


def test_a_sandbox_with_a_cache_dir_keeps_it(make_sandbox: Any, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEANLIST_CACHE_DIR")
    keep = tmp_path / "kept"
    sb = make_sandbox(cache_dir=keep)
    with clp.Client(api_key=sb.api_key, base_url=sb.base_url) as client:
        leads(5).cleanlist.enrich(client=client, progress=False)
    sb.stop()
    wait_for_deferred()
    assert (keep / "results.sqlite3").exists()


def test_scope_is_not_the_key(tmp_path: Path) -> None:
    s = Scope("https://api.cleanlist.ai", "org_1")
    assert str(s) == "org_1 at https://api.cleanlist.ai"
    with pytest.raises(ValueError, match="no scope"):
        ResultCache(tmp_path).put_many([("fp", {"status": "completed"}, None, None)], "partial")


def test_resume_refuses_a_job_of_another_server(make_sandbox: Any, _cache_dir: Path) -> None:
    """resume(job_id) at another server would send (and pay for) everything again: it says
    where the job was started instead."""
    sb1, sb2 = make_sandbox(seed=1), make_sandbox(seed=2)
    df = leads(10)
    with scaled_client(sb1) as c1:
        run(df, c1)
        job_id = clp.spend()["job_id"].iloc[0]
    with scaled_client(sb2) as c2, pytest.raises(ValueError, match="was started at") as ei:
        df.cleanlist.resume(job_id, client=c2)
    assert sb1.root_url in str(ei.value) and sb2.root_url in str(ei.value)
    assert bulk_requests(sb2) == 0
