"""df.cleanlist.enrich() end to end, against the sandbox on a real socket."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from enrich_helpers import client_for

import cleanlist_pandas as clp
from cleanlist_pandas.errors import CleanlistWarning, EnrichmentInterrupted
from cleanlist_pandas.events import (
    ChunkSubmitted,
    ContactsDone,
    JobFinished,
    JobPlanned,
    WorkflowProgress,
)
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.run.job import enrich
from cleanlist_pandas.run.options import Options
from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.sandbox.config import BALANCE_SHAPES

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def leads(n: int, *, dup_every: int = 0, start: int = 0) -> pd.DataFrame:
    """n valid, distinct leads (first/last/company website)."""
    i = np.arange(start, start + n)
    if dup_every:
        i = i - (i % dup_every)
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in i],
            "Last Name": [f"Lee{k}" for k in i],
            "Company Website": [f"https://www.co{k % 97}.com/about" for k in i],
        }
    )


def run(df: pd.DataFrame, client: Any, **kw: Any) -> Any:
    kw.setdefault("poll", FAST)
    kw.setdefault("progress", False)
    return df.cleanlist.enrich(client=client, **kw)


def bulk_requests(sb: Sandbox) -> int:
    return sum(sb.stats()["by_endpoint"].get("POST /enrich/bulk", {}).values())


def ledger_total(sb: Sandbox) -> float:
    return sum(r["credits"] for r in sb.ledger())


def assert_no_double_charge(sb: Sandbox) -> None:
    fps = Counter(r["fingerprint"] for r in sb.ledger())
    assert not [fp for fp, k in fps.items() if k > 1], "a contact was charged twice"


# -- the basic contract --------------------------------------------------------------------
def test_enrich_returns_new_frame_aligned_and_never_mutates(sandbox: Sandbox, client: Any) -> None:
    df = leads(30)
    df.index = pd.Index(["a", "b", "a"] * 10)  # duplicate labels
    df.attrs["source"] = "crm"
    before = copy.deepcopy(df)
    out = run(df, client)
    pd.testing.assert_frame_equal(df, before)
    assert df.attrs == {"source": "crm"} and list(df.columns) == list(before.columns)
    assert out is not df
    assert out.index.equals(df.index)
    pd.testing.assert_frame_equal(out[df.columns], df)
    for col in ("cl_email", "cl_email_status", "cl_status", "cl_error", "cl_workflow_id"):
        assert col in out.columns
    assert set(out["cl_status"].unique()) <= {"enriched", "not_found", "failed"}
    # every row's result is its own contact's: the echoed input matches the row
    enriched = out[out["cl_status"] == "enriched"]
    assert len(enriched) > 10
    for _, row in enriched.iterrows():
        first, last = row["First Name"].lower(), row["Last Name"].lower()
        assert first in row["cl_email"] or last in row["cl_email"], (first, row["cl_email"])


def test_balance_drop_equals_ledger_and_cl_credits(sandbox: Sandbox, client: Any) -> None:
    start = sandbox.balance()
    out = run(leads(120), client, enrichment_type="full")
    spent = start - sandbox.balance()
    assert spent == pytest.approx(ledger_total(sandbox))
    assert float(out["cl_credits"].fillna(0).sum()) == pytest.approx(spent)


def test_messy_frame(sandbox: Sandbox, client: Any) -> None:
    df = pd.DataFrame(
        {
            "first_name": ["  Ada ", None, np.nan, pd.NA, "", "😀 Zoë", 123, "Bob"],
            "Surname": ["Lovelace", "X", "Y", "Z", "W", "Müller", "Num", None],
            "Company": ["Analytical", "A", "B", "C", "D", "Ünïcode GmbH", "Nums", "Acme"],
            "LinkedIn": [None] * 7 + ["https://www.linkedin.com/in/Bob-Smith/?utm=x"],
        },
        index=pd.MultiIndex.from_tuples([(i // 3, i % 3) for i in range(8)], names=["g", "k"]),
    )
    before = df.copy(deep=True)
    out = run(df, client)
    pd.testing.assert_frame_equal(df, before)
    assert out.index.equals(df.index)
    st = out["cl_status"].tolist()
    assert st[0] in {"enriched", "not_found", "failed"}  # trimmed name, company name
    assert st[1:5] == ["skipped"] * 4  # missing first name
    assert all("first_name" in e for e in out["cl_error"].iloc[1:5])
    assert st[5] != "skipped"  # emoji and unicode are kept
    assert st[6] == "skipped"  # a name made of digits
    assert st[7] != "skipped"  # LinkedIn URL alone suffices


def test_empty_and_one_row(sandbox: Sandbox, client: Any) -> None:
    empty = leads(0)
    out = run(empty, client)
    assert len(out) == 0 and "cl_status" in out.columns
    assert bulk_requests(sandbox) == 0
    one = run(leads(1), client)
    assert len(one) == 1 and one["cl_status"].iloc[0] in {"enriched", "not_found", "failed"}


def test_dedupe_sends_each_contact_once_and_fans_out(sandbox: Sandbox, client: Any) -> None:
    df = leads(300, dup_every=3)  # 100 distinct contacts, each three times
    out = run(df, client)
    assert bulk_requests(sandbox) == 1
    assert sum(len(c) for c in [sandbox.ledger()]) <= 100
    assert_no_double_charge(sandbox)
    # cl_credits is what the run paid per row: the first of the duplicates carries it
    assert float(out["cl_credits"].sum()) == pytest.approx(ledger_total(sandbox))
    cols = [c for c in out.columns if c.startswith("cl_") and c != "cl_credits"]
    for _, grp in out.groupby("First Name"):
        assert len(grp) == 3
        assert (grp[cols].nunique(dropna=False) == 1).all()


def test_cache_hit_costs_nothing_and_sends_no_bulk(sandbox: Sandbox, client: Any) -> None:
    sandbox.config.task_failure_rate = 0.0  # failed look-ups are retried: see the next test
    df = leads(260)
    first = run(df, client)
    bulks, spent = bulk_requests(sandbox), ledger_total(sandbox)
    second = run(df, client)
    assert bulk_requests(sandbox) == bulks, "a re-run sent a bulk request"
    assert ledger_total(sandbox) == spent
    assert (second["cl_credits"] == 0).all()  # nothing paid by the re-run
    pd.testing.assert_frame_equal(
        first.drop(columns="cl_credits"), second.drop(columns="cl_credits")
    )
    # cache=False goes to the API again
    run(df, client, cache=False)
    assert bulk_requests(sandbox) > bulks


def test_rerun_retries_only_failed_lookups(sandbox: Sandbox, client: Any) -> None:
    sandbox.config.task_failure_rate = 0.2
    df = leads(500)
    first = run(df, client)
    failed = int((first["cl_status"] == "failed").sum())
    assert failed > 0
    bulks = bulk_requests(sandbox)
    sandbox.config.task_failure_rate = 0.0
    second = run(df, client)
    # one request with just the failed contacts (failed look-ups are free, so this never
    # pays twice); everything else came from the cache
    assert bulk_requests(sandbox) == bulks + 1
    assert (second["cl_status"] != "failed").all()
    ok = first["cl_status"] != "failed"
    pd.testing.assert_frame_equal(
        first[ok].drop(columns="cl_credits"), second[ok].drop(columns="cl_credits")
    )
    assert_no_double_charge(sandbox)


def test_cache_file_is_private(sandbox: Sandbox, client: Any, _cache_dir: Path) -> None:
    run(leads(3), client)
    files = [p for p in _cache_dir.iterdir() if p.suffix == ".sqlite3"]
    assert files
    for p in files:
        assert (p.stat().st_mode & 0o777) == 0o600, p


@pytest.mark.parametrize("etype", ["none", "partial", "phone_only", "full", "prospecting_only"])
def test_all_enrichment_types(sandbox: Sandbox, client: Any, etype: str) -> None:
    df = leads(40)
    out = run(df, client, enrichment_type=etype)
    spent = 10_000 - sandbox.balance()
    assert float(out["cl_credits"].fillna(0).sum()) == pytest.approx(spent)
    if etype == "none":
        assert spent == 0
    if etype in ("phone_only", "full"):
        assert out["cl_phone"].notna().any()
        assert out.loc[out["cl_phone"].notna(), "cl_phone"].str.startswith("+").all()
    if etype == "partial":
        assert out["cl_phone"].isna().all() and out["cl_email"].notna().any()


def test_prospects_long_frame(sandbox: Sandbox, client: Any) -> None:
    df = leads(20, dup_every=2)
    df.index = [f"r{i}" for i in range(20)]
    long = df.cleanlist.prospects(client=client, poll=FAST, progress=False)
    assert len(long) > 20  # several contacts per input row
    assert {"input_position", "input_index"} <= set(long.columns)
    assert long["input_index"].isin(df.index).all()
    # duplicate rows each get the contacts of their shared input
    a = long[long["input_position"] == 0].drop(columns=["input_position", "input_index"])
    b = long[long["input_position"] == 1].drop(columns=["input_position", "input_index"])
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


# -- spending ------------------------------------------------------------------------------
def test_max_credits_is_never_exceeded(sandbox: Sandbox, client: Any) -> None:
    df = leads(900)
    with pytest.warns(CleanlistWarning, match="not submitted"):
        out = run(df, client, enrichment_type="full", max_credits=3000)
    assert ledger_total(sandbox) <= 3000
    st = out["cl_status"]
    assert (st == "not_submitted").any()
    assert out.loc[st == "not_submitted", "cl_error"].str.contains("max_credits").all()
    # what was submitted is complete
    assert (st.isin(["enriched", "not_found", "failed", "not_submitted"])).all()


@pytest.mark.parametrize("balance_shape", BALANCE_SHAPES)
def test_worst_case_over_balance_warns_or_raises(
    sandbox: Sandbox, client: Any, balance_shape: str
) -> None:
    sandbox.config.balance_shape = balance_shape
    sandbox.set_credits(50)
    with pytest.raises(clp.InsufficientCreditsError):
        run(leads(100), client, errors="raise")
    assert bulk_requests(sandbox) == 0


def test_402_mid_run_keeps_paid_results(make_sandbox: Any) -> None:
    sb = make_sandbox(credits=600.0)
    client = client_for(sb)
    df = leads(1500)  # 6 chunks of 250; worst case 250 each
    with pytest.warns(CleanlistWarning) as rec:
        out = run(df, client)
    text = " ".join(str(w.message) for w in rec)
    assert "InsufficientCreditsError" in text and "run the same call again" in text
    st = out["cl_status"]
    assert (st == "awaiting_credits").any() and (st == "enriched").any()
    assert sb.balance() >= 0
    assert float(out["cl_credits"].fillna(0).sum()) == pytest.approx(600.0 - sb.balance())
    # with errors="raise" the exception carries the partial frame
    # top up and re-run: only the rest is sent, nothing charged twice
    sb.set_credits(10_000)
    final = run(df, client)
    assert not final["cl_status"].isin(["not_submitted", "awaiting_credits"]).any()
    assert_no_double_charge(sb)
    client.close()


def test_402_mid_run_with_errors_raise_carries_partial_result(
    sandbox: Sandbox, client: Any
) -> None:
    # the second bulk request is refused with 402 (e.g. another user spent the credits)
    sandbox.inject_fault("bulk", "slow", delay_s=0.0, times=1)
    sandbox.inject_fault("bulk", "status", status=402, times=1)
    df = leads(1000)
    with pytest.raises(clp.InsufficientCreditsError) as ei:
        run(df, client, errors="raise")
    partial = ei.value.partial_result  # type: ignore[attr-defined]
    assert len(partial) == len(df) and partial.index.equals(df.index)
    st = partial["cl_status"]
    assert (st == "awaiting_credits").sum() >= 250
    assert st.isin(["enriched", "not_found", "failed"]).sum() >= 250
    assert "run the same call again" in " ".join(getattr(ei.value, "__notes__", []))


def test_401_stops_at_once(sandbox: Sandbox) -> None:
    _org, key = sandbox.add_organization(credits=100)
    c = clp.Client(api_key=key, base_url=sandbox.base_url, per=60 * sandbox.config.time_scale)
    sandbox.revoke_key(key)
    with pytest.raises(clp.AuthenticationError):
        run(leads(10), c, errors="raise")
    c.close()


# -- ambiguity, interruption, resume --------------------------------------------------------
def test_ambiguous_submission_is_never_resent(sandbox: Sandbox, client: Any) -> None:
    df = leads(300)  # 2 chunks
    sandbox.inject_fault("bulk", "drop_after", times=1)
    with pytest.warns(CleanlistWarning, match="unknown"):
        out = run(df, client)
    st = out["cl_status"]
    assert (st == "unknown").sum() in (250, 50)
    assert out.loc[st == "unknown", "cl_error"].str.contains("resend_unknown=True").all()
    bulks = bulk_requests(sandbox)
    # a re-run does not resend the ambiguous chunk
    with pytest.warns(CleanlistWarning):
        again = run(df, client)
    assert bulk_requests(sandbox) == bulks
    assert ((again["cl_status"] == "unknown") == (st == "unknown")).all()
    # the user settles it: resend
    run(df, client, resend_unknown=True)
    assert bulk_requests(sandbox) == bulks + 1


def interrupt_after_first_chunk(df: pd.DataFrame, client: Any, **kw: Any) -> EnrichmentInterrupted:
    """Run enrich() and press Ctrl-C (SIGINT) as soon as the first chunk is submitted."""
    fired = threading.Event()

    def listen(event: Any) -> None:
        if isinstance(event, ChunkSubmitted) and not fired.is_set():
            fired.set()
            os.kill(os.getpid(), signal.SIGINT)

    opts = Options(
        progress=False, poll=PollPolicy(first=0.5, min_interval=0.05, max_interval=0.5), **kw
    )
    with pytest.raises(EnrichmentInterrupted) as ei:
        enrich(df, opts, client=client, listeners=[listen])
        time.sleep(5)  # the signal is delivered to the main thread; never reached
    return ei.value


def test_ctrl_c_then_resume_charges_nothing_twice(make_sandbox: Any) -> None:
    sb = make_sandbox(time_scale=0.05)  # workflows take ~0.2 s
    client = client_for(sb)
    df = leads(1000)  # 4 chunks
    exc = interrupt_after_first_chunk(df, client)
    partial = exc.partial_result
    assert len(partial) == len(df) and partial.index.equals(df.index)
    assert "run the same call again" in str(exc)
    st = partial["cl_status"]
    # submitted chunks are 'pending' (collected by the next run), the rest 'not_submitted';
    # a request on the wire at Ctrl-C was given time to answer, so nothing is 'unknown'
    assert set(st.unique()) <= {"pending", "not_submitted", "enriched", "not_found", "failed"}
    assert (st == "pending").sum() >= 250
    submitted = bulk_requests(sb)
    assert 1 <= submitted <= 4
    out = run(df, client, poll=PollPolicy(first=0.2, min_interval=0.05, max_interval=0.5))
    assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    assert_no_double_charge(sb)
    # workflows submitted before Ctrl-C were polled, not resubmitted
    assert bulk_requests(sb) == 4
    assert len(sb.ledger()) == int(out["cl_credits"].gt(0).sum())
    client.close()


def test_killed_process_then_resume(make_sandbox: Any, _cache_dir: Path) -> None:
    sb = make_sandbox(time_scale=0.05)
    script = textwrap.dedent(
        f"""
        import os, sys, numpy as np, pandas as pd
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        os.environ["CLEANLIST_CACHE_DIR"] = {str(_cache_dir)!r}
        import cleanlist_pandas as clp
        from test_enrich_run import leads, PollPolicy
        c = clp.Client(api_key={sb.api_key!r}, base_url={sb.base_url!r}, per=3.0)
        leads(1000).cleanlist.enrich(client=c, progress=False,
                                    poll=PollPolicy(first=30, min_interval=30, max_interval=30))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while bulk_requests(sb) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # while the other process runs the job, the same call here refuses to submit it again
    other = client_for(sb)
    with pytest.raises(clp.JobBusyError, match="another process"):
        run(leads(1000), other)
    other.close()
    proc.kill()
    proc.wait()
    submitted = bulk_requests(sb)
    assert submitted >= 2
    client = client_for(sb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CleanlistWarning)
        out = run(
            leads(1000), client, poll=PollPolicy(first=0.2, min_interval=0.05, max_interval=0.5)
        )
    assert_no_double_charge(sb)
    assert bulk_requests(sb) <= 4  # nothing journaled was sent again
    st = out["cl_status"]
    assert st.isin(["enriched", "not_found", "failed", "unknown"]).all()
    client.close()


def test_wait_false_job(sandbox: Sandbox, client: Any) -> None:
    df = leads(600)
    job = df.cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False)
    assert isinstance(job, clp.EnrichmentJob)
    assert job.job_id in repr(job) and "<progress" in job._repr_html_()
    out = job.result(timeout=60)
    assert job.done() and job.progress["done"] == job.progress["total"] == 600
    assert len(out) == 600 and out is job.result()


def test_wait_false_cancel_keeps_paid(make_sandbox: Any) -> None:
    sb = make_sandbox(time_scale=0.05)
    # spaced submissions (burst=1): the cancel lands while chunks still wait for the pacer
    client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=3.0, burst=1)
    job = leads(5000).cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False)
    time.sleep(0.15)
    job.cancel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CleanlistWarning)
        out = job.result(timeout=60)
    st = out["cl_status"]
    assert (st == "not_submitted").any()
    paid = float(out["cl_credits"].fillna(0).sum())
    assert paid == pytest.approx(10_000 - sb.balance())
    client.close()


def test_aenrich(sandbox: Sandbox) -> None:
    async def main() -> pd.DataFrame:
        async with clp.AsyncClient(
            api_key=sandbox.api_key, base_url=sandbox.base_url, per=60 * 0.002
        ) as ac:
            return await leads(30).cleanlist.aenrich(client=ac, poll=FAST, progress=False)

    out = asyncio.run(main())
    assert len(out) == 30 and out["cl_status"].notna().all()


def test_events_and_progress(sandbox: Sandbox, client: Any) -> None:
    seen: list[Any] = []
    opts = Options(poll=FAST, progress=False)
    enrich(leads(600), opts, client=client, listeners=[seen.append])
    kinds = Counter(type(e).__name__ for e in seen)
    assert isinstance(seen[0], JobPlanned) and seen[0].to_send == 600
    assert kinds[ChunkSubmitted.__name__] == 3
    assert kinds[WorkflowProgress.__name__] >= 3
    last = [e for e in seen if isinstance(e, ContactsDone)][-1]
    assert last.done == last.total == 600
    assert isinstance(seen[-1], JobFinished)


@pytest.mark.parametrize("balance_shape", BALANCE_SHAPES)
def test_estimate_sends_no_bulk(sandbox: Sandbox, client: Any, balance_shape: str) -> None:
    sandbox.config.balance_shape = balance_shape  # both documented shapes (spec §3.2)
    df = pd.concat([leads(500), leads(100), pd.DataFrame({"First Name": ["x"]})])
    est = df.cleanlist.estimate("full", client=client)
    assert est.counts["rows"] == 601 and est.counts["duplicates"] == 100
    assert est.counts["invalid"] == 1 and est.counts["to_send"] == 500
    assert est.counts["chunks"] == 2 and est.worst_case_credits == 5500
    assert est.balance == 10_000 and est.sufficient is True
    assert "worst-case credits" in repr(est) and "<table>" in est._repr_html_()
    assert bulk_requests(sandbox) == 0
    json.dumps(est.to_series().astype(str).to_dict())


def test_ten_thousand_rows(sandbox: Sandbox, client: Any) -> None:
    df = leads(10_000, dup_every=2)  # 5,000 distinct contacts -> 20 chunks
    out = run(df, client)
    assert len(out) == 10_000 and out.index.equals(df.index)
    assert bulk_requests(sandbox) == 20
    assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    assert float(out["cl_credits"].sum()) == pytest.approx(ledger_total(sandbox))
    assert_no_double_charge(sandbox)


def test_resume_by_job_id(make_sandbox: Any) -> None:
    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    df = leads(1000)
    job_id = interrupt_after_first_chunk(df, client).job_id
    with pytest.raises(ValueError, match="other rows"):
        leads(999).cleanlist.resume(job_id, client=client)
    with pytest.raises(KeyError):
        df.cleanlist.resume("job_nope", client=client)
    # enrich() takes no cache_dir=: said before the journal is looked up anywhere else
    with pytest.raises(TypeError, match="CLEANLIST_CACHE_DIR"):
        df.cleanlist.resume(job_id, client=client, cache_dir="/elsewhere")
    out = df.cleanlist.resume(
        job_id,
        client=client,
        poll=PollPolicy(first=0.2, min_interval=0.05, max_interval=0.5),
        progress=False,
    )
    assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    assert bulk_requests(sb) == 4
    assert_no_double_charge(sb)
    client.close()


def test_progress_bar_notes_the_rate_limit_wait(sandbox: Sandbox) -> None:
    from cleanlist_pandas.events import PacerWait
    from cleanlist_pandas.views.progress import ProgressBar

    # a pacer of 5 requests per 2 s: the run must wait on it, and the bar says so
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, rate=5, per=2.0, burst=1)
    bars: list[ProgressBar] = []
    notes: list[str] = []

    def view(state: Any, draw_on_event: bool) -> ProgressBar:
        bars.append(ProgressBar(state, disable=True, draw_on_event=draw_on_event))
        return bars[0]

    def listen(e: Any) -> None:  # subscribed after the state and the view
        if isinstance(e, PacerWait) and bars:
            notes.append(bars[0].postfix())

    enrich(leads(1000), Options(poll=FAST), client=c, listeners=[listen], view=view)
    assert any("rate limit: waiting" in n for n in notes)
    s = bars[0].state.snapshot()
    assert s.done == s.total == 1000 and s.finished
    c.close()


def test_estimate_leaves_no_job_and_reports_resumable(make_sandbox: Any, _cache_dir: Path) -> None:
    from cleanlist_pandas.store.files import journal_path
    from cleanlist_pandas.store.journal import Journal

    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    df = leads(1000)
    df.cleanlist.estimate(client=client)
    j = Journal(journal_path(_cache_dir))
    assert j.jobs() == []
    interrupt_after_first_chunk(df, client)
    est = df.cleanlist.estimate(client=client)
    assert est.resumable_workflows >= 1 and "resumable workflows" in repr(est)
    assert len(j.jobs()) == 1
    j.close()
    client.close()


def test_rerunning_a_cell_attaches_to_the_running_job(make_sandbox: Any) -> None:
    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    df = leads(1000)
    job = df.cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False)
    again = df.cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False)
    assert again is job  # not a second submission of the same contacts
    out = df.cleanlist.enrich(client=client, poll=FAST, progress=False)  # waits for it
    assert out is job.result()
    assert bulk_requests(sb) == 4
    assert_no_double_charge(sb)
    client.close()


@pytest.mark.parametrize("cache", [True, False])
def test_another_frame_with_the_same_contacts_gets_its_own_rows_from_the_running_job(
    make_sandbox: Any, cache: bool
) -> None:
    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    df = leads(600)
    job = df.cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False, cache=cache)
    other = df.iloc[::-1].assign(Owner="me")  # the same contacts: rows reversed, a new column
    out = other.cleanlist.enrich(client=client, poll=FAST, progress=False, cache=cache)
    first = job.result()
    assert bulk_requests(sb) == 3  # attached: nothing submitted twice
    assert_no_double_charge(sb)
    assert list(out.index) == list(other.index) and "Owner" in out.columns
    pd.testing.assert_frame_equal(out.drop(columns="Owner"), first.iloc[::-1])
    client.close()


@pytest.mark.parametrize(
    ("status", "expected"),
    [(503, "not_submitted"), (500, "unknown"), (502, "unknown")],
)
def test_submission_failures_are_sorted(sandbox: Sandbox, status: int, expected: str) -> None:
    # the client retries 429/503 on a bulk request; with retries off, the answer reaches the
    # engine, which must tell "not processed" (503) from "may exist" (500, 502); a 429 is
    # waited out (tests/enrich/test_fault_holes.py)
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12, max_retries=0)
    sandbox.inject_fault("bulk", "status", status=status, times=1)
    with pytest.warns(CleanlistWarning):
        out = run(leads(10), c)
    assert (out["cl_status"] == expected).all()
    c.close()


def test_status_endpoint_down_leaves_rows_pending_then_resume(sandbox: Sandbox) -> None:
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12, max_retries=0)
    sandbox.inject_fault("status", "status", status=500, times=None)
    with pytest.warns(CleanlistWarning, match="run the same call again to collect"):
        out = run(leads(300), c)
    assert (out["cl_status"] == "pending").all()
    assert out["cl_error"].str.contains("re-run the same call").all()
    sandbox.clear_faults()
    again = run(leads(300), c)
    assert again["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    assert bulk_requests(sandbox) == 2  # collected, not resubmitted
    c.close()


def test_job_prospects_and_errors_ignore(sandbox: Sandbox, client: Any) -> None:
    job = leads(30).cleanlist.enrich(
        "prospecting_only", client=client, wait=False, poll=FAST, progress=False
    )
    job.result(timeout=60)
    assert job.prospects is not None and len(job.prospects) > 30
    assert job.prospects["input_position"].between(0, 29).all()
    # errors="ignore": rows left over, no warning, no exception
    sandbox.set_credits(100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = run(leads(600, start=1000), client, errors="ignore")
    assert (out["cl_status"] == "awaiting_credits").any()


def test_cli_cache_clear_makes_the_next_run_pay(sandbox: Sandbox, client: Any) -> None:
    from cleanlist_pandas.cli import main

    df = leads(20)
    run(df, client)
    bulks = bulk_requests(sandbox)
    run(df, client)
    assert bulk_requests(sandbox) == bulks  # cached
    assert main(["cache", "clear"]) == 0
    run(df, client)
    assert bulk_requests(sandbox) == bulks + 1


def test_job_state_is_readable_from_another_thread_without_a_bar(make_sandbox: Any) -> None:
    """The run's state lives in the job (fed by events), not in a progress bar: with
    progress=False a watcher thread sees it advance while the run goes on."""
    sb = make_sandbox(time_scale=0.05)
    client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=3.0, burst=1)
    job = leads(2000).cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False)
    seen: list[tuple[int, int, int]] = []

    def watch() -> None:
        while not job.done():
            s = job.state()
            seen.append((s.submitted, s.done, s.requests))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out = job.result(timeout=60)
    watcher.join()
    assert len(out) == 2000
    submitted = [s for s, _d, _r in seen]
    assert submitted == sorted(submitted) and 0 < max(submitted) <= 8
    assert len({r for _s, _d, r in seen}) > 3  # requests counted as they went
    final = job.state()
    assert final.finished and final.done == final.total == 2000 and final.submitted == 8
    assert job.progress["done"] == 2000 and job.progress["finished"]
    client.close()


@pytest.mark.parametrize("etype", ["none", "partial", "full"])
def test_the_found_counter_and_cl_status_agree(sandbox: Sandbox, etype: str) -> None:
    """One rule decides "found" per type (models.is_found): the progress counter and the
    cl_status column never disagree (for 'none' the counter used to say 0)."""
    client = client_for(sandbox)
    job = leads(300).cleanlist.enrich(etype, client=client, wait=False, poll=FAST,
                                      progress=False)
    out = job.result(timeout=60)
    assert job.state().found == int((out["cl_status"] == "enriched").sum()) > 0
    client.close()


def test_job_summary_gives_the_final_numbers(sandbox: Sandbox) -> None:
    """job.summary(): rows by status as a DataFrame, credits against the worst case in
    .attrs; the finished job's HTML is the static summary with its picture."""
    client = client_for(sandbox)
    df = pd.concat([leads(300), pd.DataFrame({"First Name": ["x"]})], ignore_index=True)
    job = df.cleanlist.enrich("full", client=client, wait=False, poll=FAST, progress=False)
    out = job.result(timeout=60)
    summary = job.summary()
    expected = out["cl_status"].value_counts()
    assert {k: int(v) for k, v in summary["rows"].items()} == {
        str(k): int(v) for k, v in expected.items()
    }
    assert summary["share"].sum() == pytest.approx(1.0)
    spent = sum(r["credits"] for r in sandbox.ledger())
    assert summary.attrs["credits"] == pytest.approx(spent)
    assert summary.attrs["worst_case_credits"] == 300 * 11
    assert summary.attrs["job_id"] == job.job_id
    page = job._repr_html_()
    assert "background-color:#1b9e77" in page and job.job_id in page
    assert f"{spent:,.0f} of 3,300" in page
    client.close()


class _FakeHandle:
    def __init__(self) -> None:
        self.shown: list[dict[str, str]] = []

    def update(self, obj: dict[str, str], raw: bool = False) -> None:
        self.shown.append(obj)


def test_a_displayed_job_updates_in_place_then_shows_the_final_numbers(
    make_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import IPython.display

    import cleanlist_pandas.run.job as job_module

    handle = _FakeHandle()

    def fake_display(obj: Any, raw: bool = False, display_id: bool = False) -> _FakeHandle:
        handle.shown.append(obj)
        return handle

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(job_module, "FOLLOW_INTERVAL_S", 0.02)
    sb = make_sandbox(time_scale=0.05)
    client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=3.0, burst=1)
    job = leads(1000).cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False)
    job._ipython_display_()
    job.result(timeout=60)
    deadline = time.monotonic() + 10
    picture = "background-color:#1b9e77"
    while picture not in handle.shown[-1]["text/html"] and time.monotonic() < deadline:
        time.sleep(0.05)
    texts = [b["text/plain"] for b in handle.shown]
    assert texts[0].endswith("0/1,000 contacts, 0 found, 0 credits") or "running" in texts[0]
    assert len({t for t in texts}) > 2  # it moved while it ran
    assert "background-color:#1b9e77" in handle.shown[-1]["text/html"]  # the final numbers, static
    client.close()
