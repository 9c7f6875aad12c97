"""Pacing to the rate window (issue 10): behaviour, not speed (the speed is in
``benchmarks/bench_pace.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

import cleanlist_pandas as clp
from cleanlist_pandas.enrich.engine import PollPolicy
from cleanlist_pandas.enrich.job import Options, enrich
from cleanlist_pandas.events import Event, RequestSent, WorkflowProgress
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
