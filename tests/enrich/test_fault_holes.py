"""The money holes an outside run of faults, kills and a first-time user found (issue 7).

Each test here failed on the code before its fix. The SIGKILL variants live in
``test_kill_resume.py``; the short fault matrix in ``test_fault_matrix.py``.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_enrich_run import leads

import cleanlist_pandas as clp
from cleanlist_pandas.errors import CleanlistWarning, OutputColumnCollision
from cleanlist_pandas.events import Event, Waiting
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.run.job import enrich
from cleanlist_pandas.run.options import Options
from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.store.files import journal_path
from cleanlist_pandas.store.journal import Journal

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def run(df: pd.DataFrame, client: Any, **kw: Any) -> Any:
    kw.setdefault("poll", FAST)
    kw.setdefault("progress", False)
    return df.cleanlist.enrich(client=client, **kw)


def bulk_by_status(sb: Sandbox) -> Counter[str]:
    return Counter(sb.stats()["by_endpoint"].get("POST /enrich/bulk", {}))


def ledger_credits(sb: Sandbox) -> float:
    return float(sum(r["credits"] for r in sb.ledger()))


def assert_no_double_charge(sb: Sandbox) -> None:
    fps = Counter(r["fingerprint"] for r in sb.ledger())
    assert not [fp for fp, n in fps.items() if n > 1]


# -- 2. nothing leaves after the first 402 ------------------------------------------------
def test_nothing_is_sent_after_the_first_402(sandbox: Sandbox) -> None:
    # a slow pacer: 5 submissions queue behind it while the first one gets its 402
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, rate=6, per=1.0, burst=1)
    sandbox.inject_fault("bulk", "status", status=402, times=1)
    with pytest.warns(CleanlistWarning, match="awaiting_credits"):
        out = run(leads(1000), c)
    assert bulk_by_status(sandbox) == Counter({"402": 1})  # none accepted after the stop
    assert sandbox.ledger() == []
    assert (out["cl_status"] == "awaiting_credits").all()
    c.close()


# -- 3. cl_credits of a resumed job is what *this* run paid -------------------------------
def test_resumed_job_credits_match_the_ledger(make_sandbox: Any) -> None:
    sb = make_sandbox(credits=10_000.0)
    sb.config.task_failure_rate = 0.2  # finished chunks hold failed (uncached) look-ups
    c = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * sb.config.time_scale)
    sb.inject_fault("bulk", "slow", delay_s=0.05, times=1)
    sb.inject_fault("bulk", "status", status=500, times=1)
    df = leads(500)
    with pytest.warns(CleanlistWarning, match="unknown"):
        first = run(df, c)
    paid_1 = ledger_credits(sb)
    assert float(first["cl_credits"].fillna(0).sum()) == pytest.approx(paid_1)
    assert (first["cl_status"] == "failed").any()
    with pytest.warns(CleanlistWarning, match="unknown"):
        second = run(df, c)  # resumes: the done chunk is read again, nothing is paid
    assert ledger_credits(sb) == pytest.approx(paid_1)
    assert float(second["cl_credits"].fillna(0).sum()) == 0.0
    assert_no_double_charge(sb)
    c.close()


# -- 4. out of credits is a pause ----------------------------------------------------------
def test_out_of_credits_rows_await_and_the_next_call_sends_exactly_them(
    make_sandbox: Any,
) -> None:
    sb = make_sandbox(credits=300.0)
    sb.config.credit_rule = "positive"  # chunks pass while the balance is > 0
    c = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * sb.config.time_scale)
    df = leads(1000)
    with pytest.warns(CleanlistWarning) as rec:
        first = run(df, c)
    text = " ".join(str(w.message) for w in rec)
    awaiting = first["cl_status"] == "awaiting_credits"
    assert awaiting.sum() > 0
    assert "awaiting_credits" in text and "worst case" in text
    assert "df.cleanlist.enrich('partial')" in text
    err = first["cl_error"].fillna("")
    assert not (first["cl_status"].eq("failed") & err.str.contains("nsufficient")).any()
    # both ways of running out: tasks that could not be paid at completion, and the 402
    assert (awaiting & err.str.contains("could not be paid")).any()
    assert (awaiting & err.str.contains("InsufficientCreditsError")).any()
    assert sb.balance() >= 0
    # estimate() sees them
    est = df.cleanlist.estimate(client=c)
    assert est.counts["awaiting_credits"] == int(awaiting.sum())
    assert "awaiting credits" in repr(est)
    # top up: the next identical call sends exactly the awaiting rows
    sb.set_credits(10_000)
    before = ledger_credits(sb)
    second = run(df, c)
    assert not second["cl_status"].isin(["awaiting_credits", "not_submitted"]).any()
    assert_no_double_charge(sb)
    charged = Counter(r["fingerprint"] for r in sb.ledger())
    assert len(charged) == int(second["cl_status"].eq("enriched").sum())
    # what run 2 paid is exactly what its cl_credits says
    assert float(second["cl_credits"].fillna(0).sum()) == pytest.approx(
        ledger_credits(sb) - before
    )
    finished_before = first["cl_status"].isin(["enriched", "not_found"])
    pd.testing.assert_series_equal(
        second["cl_email"][finished_before], first["cl_email"][finished_before]
    )
    c.close()


# -- 5. a 429 storm is waited out ----------------------------------------------------------
def test_a_429_storm_longer_than_the_retries_is_waited_out(sandbox: Sandbox) -> None:
    c = clp.Client(
        api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12, max_retries=1
    )
    sandbox.inject_fault("bulk", "status", status=429, times=4, retry_after=1)
    seen: list[Event] = []
    out = enrich(leads(300), Options(poll=FAST, progress=False), client=c, listeners=[seen.append])
    assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    waits = [e for e in seen if isinstance(e, Waiting) and "rate-limited" in e.reason]
    assert waits and "waiting 1s" in waits[0].reason
    assert_no_double_charge(sandbox)
    c.close()


def test_a_429_storm_stops_after_the_patience(sandbox: Sandbox) -> None:
    c = clp.Client(
        api_key=sandbox.api_key,
        base_url=sandbox.base_url,
        per=0.12,
        max_retries=0,
        rate_limit_patience=0.5,
    )
    sandbox.inject_fault("bulk", "status", status=429, times=None, retry_after=1)
    with pytest.warns(CleanlistWarning, match="RateLimitError"):
        out = run(leads(300), c)
    assert (out["cl_status"] == "not_submitted").all()
    c.close()


# -- 6. a held client raises at once -------------------------------------------------------
def test_a_client_held_by_retry_after_raises_at_once_again(sandbox: Sandbox) -> None:
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url)
    sandbox.inject_fault("balance", "status", status=429, times=1, retry_after=1000)
    with pytest.raises(clp.RateLimitError):
        c.balance()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(c.balance)
        try:
            exc = fut.exception(timeout=20)
        except concurrent.futures.TimeoutError:  # the old client sat in the pacer
            pytest.fail("the second call blocked instead of raising")
    assert isinstance(exc, clp.RateLimitError)
    assert exc.retry_after is not None and 900 < exc.retry_after <= 1000
    assert "Retry after" in str(exc) and "Nothing was sent" in str(exc)
    assert sandbox.stats()["by_endpoint"]["GET /credits/balance"] == {"429": 1}
    c.close()


# -- 7. output-name collisions before paying -----------------------------------------------
@pytest.mark.parametrize(
    "columns",
    [
        ["First Name", "Last Name", "Company Website", "cl_email"],
        pd.MultiIndex.from_tuples(
            [("First Name", ""), ("Last Name", ""), ("Company Website", ""), ("cl_credits", "old")]
        ),
    ],
    ids=["flat", "multiindex"],
)
def test_output_name_collision_is_refused_before_any_request(
    sandbox: Sandbox, columns: Any
) -> None:
    base = leads(11)
    df = pd.DataFrame(
        np.column_stack([base.to_numpy(), np.array(["x"] * 11, dtype=object)]), columns=columns
    )
    if isinstance(columns, pd.MultiIndex):
        mapping = {"first_name": ("First Name", ""), "last_name": ("Last Name", ""),
                   "company_domain": ("Company Website", "")}
    else:
        mapping = None
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url)
    est = df.cleanlist.estimate("full", columns=mapping, client=c)
    assert est.note is not None and "already exist" in est.note
    with pytest.raises(OutputColumnCollision, match="Nothing was sent"):
        run(df, c, enrichment_type="full", columns=mapping)
    assert bulk_by_status(sandbox) == Counter()
    assert sandbox.ledger() == []
    c.close()


# -- 13. no false JobBusyError after a configuration error ---------------------------------
@pytest.mark.parametrize(
    "bad", [{}, {"api_key": "clext_0123456789abcdef"}, {"base_url": "http://example.com"}]
)
def test_configuration_error_then_configure_then_the_same_call_works(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, _cache_dir: Path, bad: dict[str, str]
) -> None:
    monkeypatch.delenv("CLEANLIST_API_KEY", raising=False)
    monkeypatch.delenv("CLEANLIST_BASE_URL", raising=False)
    clp.reset_config()
    df = leads(20)
    try:
        with pytest.raises(clp.ConfigurationError):
            if bad:
                kw = {"api_key": sandbox.api_key, "base_url": sandbox.base_url, **bad}
                df.cleanlist.enrich(progress=False, poll=FAST, **kw)
            else:
                clp.configure(base_url=sandbox.base_url)
                df.cleanlist.enrich(progress=False, poll=FAST)
        journal = Journal(journal_path(_cache_dir))
        assert [j for j in journal.jobs() if j.state == "open"] == []
        journal.close()
        clp.configure(api_key=sandbox.api_key, base_url=sandbox.base_url)
        out = df.cleanlist.enrich(progress=False, poll=FAST)
        assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    finally:
        clp.reset_config()


def test_a_run_that_sends_nothing_leaves_no_open_job(sandbox: Sandbox, _cache_dir: Path) -> None:
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url)
    sandbox.set_credits(5)
    with pytest.raises(clp.InsufficientCreditsError):
        run(leads(100), c, errors="raise")  # the pre-check refuses before the first bulk
    journal = Journal(journal_path(_cache_dir))
    assert journal.jobs() == []
    journal.close()
    c.close()


def test_stop_is_rechecked_right_before_each_send_after_cancel(sandbox: Sandbox) -> None:
    # cancel() while chunks wait behind a slow pacer: none of them may leave afterwards
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, rate=3, per=1.0, burst=1)
    job = leads(1000).cleanlist.enrich(client=c, wait=False, poll=FAST, progress=False)
    deadline = time.monotonic() + 10
    while bulk_by_status(sandbox).total() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.cancel()
    sent_at_cancel = bulk_by_status(sandbox).total()
    with pytest.warns(CleanlistWarning):
        out = job.result(timeout=60)
    assert bulk_by_status(sandbox).total() <= sent_at_cancel + 1  # at most one on the wire
    assert (out["cl_status"] == "not_submitted").sum() >= 500
    assert not (out["cl_status"] == "unknown").any()
    c.close()


# -- results the cache writer could not write are not paid for again ----------------------
def test_a_failed_cache_write_keeps_the_job_open_and_the_rerun_pays_nothing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results go to the cache on a writer thread (issue 10). If that write fails, the job
    must not be marked finished: a finished job is not resumed, so the re-run would send
    (and pay for) every contact again. Open, the re-run reads the workflows again, free."""
    from cleanlist_pandas.store.cache import ResultCache

    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12)
    df = leads(600)
    real_put = ResultCache.put_many

    def broken(self: ResultCache, *a: Any, **kw: Any) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(ResultCache, "put_many", broken)
    first = run(df, c)
    assert (first["cl_status"] == "enriched").sum() > 0
    j = Journal(journal_path())
    assert [job.state for job in j.jobs()] == ["open"]  # not finished: results not cached
    j.close()
    paid = ledger_credits(sandbox)
    bulk = bulk_by_status(sandbox)
    monkeypatch.setattr(ResultCache, "put_many", real_put)
    again = run(df, c)
    assert bulk_by_status(sandbox) == bulk  # nothing submitted again
    assert ledger_credits(sandbox) == paid
    assert_no_double_charge(sandbox)
    pd.testing.assert_series_equal(again["cl_email"], first["cl_email"])
    j = Journal(journal_path())
    assert [job.state for job in j.jobs()] == ["finished"]
    j.close()
    c.close()


def test_the_frame_comes_back_before_the_last_cache_write_and_the_next_call_sees_it(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run returns its frame without waiting for the cache writer's last write: that
    wait, finishing the journal job and closing the files happen on the finisher thread.
    Whatever opens the cache or the journal next in the process waits for it, so a re-run
    is served from the cache and the job reads finished."""
    from cleanlist_pandas.store.cache import ResultCache

    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12)
    df = leads(600)
    real_put = ResultCache.put_many
    slow_s = 1.5

    def slow(self: ResultCache, *a: Any, **kw: Any) -> int:
        time.sleep(slow_s)
        return real_put(self, *a, **kw)

    monkeypatch.setattr(ResultCache, "put_many", slow)
    t0 = time.monotonic()
    first = run(df, c)
    returned = time.monotonic() - t0
    assert (first["cl_status"] == "enriched").sum() > 0
    t1 = time.monotonic()
    j = Journal(journal_path())  # waits for the finisher
    waited = time.monotonic() - t1
    assert [job.state for job in j.jobs()] == ["finished"]
    j.close()
    assert waited > 0.2 or returned < slow_s  # the last write was still going on at return
    monkeypatch.setattr(ResultCache, "put_many", real_put)
    again = run(df, c)
    # every row found by the first run is served from the cache (free); only the rows
    # whose look-up failed are tried again
    found = first["cl_status"] == "enriched"
    assert (again.loc[found, "cl_status"] == "enriched").all()
    assert (again.loc[found, "cl_credits"] == 0).all()
    pd.testing.assert_series_equal(again.loc[found, "cl_email"], first.loc[found, "cl_email"])
    c.close()
