"""Pacing to the rate window (issue 10): behaviour, not speed (the speed is in
``benchmarks/bench_pace.py``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

import cleanlist_pandas as clp
from cleanlist_pandas.client.http import reset_shared_pacers
from cleanlist_pandas.events import Event, RequestSent, WorkflowProgress
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.run.job import enrich
from cleanlist_pandas.run.options import Options
from cleanlist_pandas.sandbox import Sandbox


def leads(n: int) -> pd.DataFrame:
    i = np.arange(n)
    return pd.DataFrame(
        {
            "First Name": [f"Lou{k}" for k in i],
            "Last Name": [f"Ray{k}" for k in i],
            "Company Website": [f"https://www.shop{k % 71}.net" for k in i],
        }
    )


def _traced(client: clp.Client) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    client.aio.add_listener(
        lambda e: seen.append((e.method, e.path)) if isinstance(e, RequestSent) else None
    )
    return seen


def test_clients_of_one_key_share_one_window(sandbox: Sandbox) -> None:
    a = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url)
    b = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url)
    _org, other_key = sandbox.add_organization(credits=10)
    c = clp.Client(api_key=other_key, base_url=sandbox.base_url)
    assert a.pacer is b.pacer and a.pacer is not c.pacer
    for x in (a, b, c):
        x.close()


def test_a_jobs_submissions_leave_at_once_while_the_window_has_room(sandbox: Sandbox) -> None:
    # the API's real window (60 per 60 s): 10 chunks all leave before the first status read;
    # a steady 1-per-second pacer would still be submitting when the first poll is due
    client = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url)
    seen = _traced(client)
    out = enrich(
        leads(2500),
        Options(progress=False, poll=PollPolicy(first=1.0, min_interval=0.05, eager=0.05)),
        client=client,
    )
    assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    posts = [i for i, (m, _p) in enumerate(seen) if m == "POST"]
    first_get = next(i for i, (m, p) in enumerate(seen) if m == "GET" and "status" in p)
    assert len(posts) == 10 and max(posts) < first_get
    client.close()


def test_while_the_window_binds_one_workflow_scouts_and_the_others_wait(
    sandbox: Sandbox,
) -> None:
    # 9 requests per window: 1 balance + 3 submissions + 3 final reads leave 2 to spare,
    # fewer than the workflows in flight: until one workflow has finished, only it is read
    client = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, rate=10, per=6.0)
    events: list[Event] = []
    poll = PollPolicy(first=0.05, min_interval=0.02, max_interval=5.0, eager=0.02)
    out = enrich(
        leads(750), Options(progress=False, poll=poll), client=client, listeners=[events.append]
    )
    assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    reads = [e for e in events if isinstance(e, WorkflowProgress)]
    first_done = next(i for i, e in enumerate(reads) if e.status != "processing")
    assert {e.workflow_id for e in reads[: first_done + 1]} == {reads[0].workflow_id}
    stats: dict[str, Any] = sandbox.stats()["by_endpoint"]
    assert stats.get("GET /enrich/status", {}).get("429") is None
    client.close()


def test_while_the_window_binds_every_submission_goes_before_the_status_reads(
    sandbox: Sandbox,
) -> None:
    # 9 requests per 2 s: 12 chunks need two windows of submissions. The best schedule
    # submits them all as early as the window allows and reads after; reads that were due
    # early (first=0.01) wait for the chunks still to submit instead of taking their places
    client = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, rate=10, per=2.0)
    seen = _traced(client)
    poll = PollPolicy(first=0.01, min_interval=0.01, max_interval=2.0, eager=0.01)
    out = enrich(leads(3000), Options(progress=False, poll=poll), client=client)
    assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    posts = [i for i, (m, _p) in enumerate(seen) if m == "POST"]
    first_read = next(i for i, (m, p) in enumerate(seen) if m == "GET" and "status" in p)
    assert len(posts) == 12 and max(posts) < first_read
    assert client.pacer.kept() == 0  # the run gave its places back
    client.close()


def test_spare_reads_never_push_a_final_read_into_the_next_window(make_sandbox: Any) -> None:
    # 15 requests per 30 s; 6 chunks need 1 balance + 6 submissions + 6 final reads, so 2
    # reads are spare, fewer than the workflows. Every read that may miss is re-checked
    # right before it leaves (the scout's too, before anything is learnt), so the run fits
    # one window: an overspent window would hold the last final read for 30 s
    sb = make_sandbox(time_scale=0.03)  # workflows of ~0.3 s
    poll = PollPolicy(first=0.15, min_interval=0.03, max_interval=1.0, eager=0.015)
    for k in range(3):  # the scout's timing varies from run to run
        reset_shared_pacers()  # a fresh window each time
        client = clp.Client(api_key=sb.api_key, base_url=sb.base_url, rate=16, per=30.0)
        seen = _traced(client)
        df = leads(1500)
        df["First Name"] += f"x{k}"  # other contacts: nothing cached
        t0 = time.monotonic()
        out = enrich(df, Options(progress=False, poll=poll), client=client)
        took = time.monotonic() - t0
        client.close()
        assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
        assert len(seen) <= 15 and took < 15, (k, len(seen), took)


def test_the_benchmarks_bound_is_the_best_window_schedule() -> None:
    # bench_pace.py reports every way against this bound: it must respect the window and
    # be the earliest such schedule
    import doctest
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    try:
        bench = importlib.import_module("bench_pace")
    finally:
        sys.path.pop(0)
    assert doctest.testmod(bench, verbose=False).failed == 0
    bound = bench.physical_bound
    assert bound([5.0, 5.0], window=60.0, limit=60) == 5.0
    # 2 submissions + 1 read fill a window of 3: the second read waits for the window
    assert bound([1.0, 1.0], window=10.0, limit=3) == 10.0
    # the later submission waits for the window, its read comes 2 s after it
    assert bound([1.0, 2.0], window=10.0, limit=1) == 30.0
