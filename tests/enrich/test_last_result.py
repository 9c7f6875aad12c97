"""Issue 19: ``clp.last_result()`` — an interrupted run's rows without the exception object.

A notebook user who pressed Kernel → Interrupt has no ``except`` block: the rows so far must
be one call away, whatever the run's end (finished, interrupted, stopped by
``errors="raise"``), as the frame the call would have returned (Polars for a Polars frame),
and only the last one may be kept alive.
"""

from __future__ import annotations

import gc
import os
import signal
import time
import warnings
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from enrich_helpers import client_for

import cleanlist_pandas as clp
from cleanlist_pandas.errors import EnrichmentInterrupted
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.sandbox import Sandbox

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


@pytest.fixture(autouse=True)
def _nothing_left_over() -> Iterator[None]:
    clp.last_result(clear=True)
    yield
    clp.last_result(clear=True)


def leads(n: int, start: int = 0) -> pd.DataFrame:
    i = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in i],
            "Last Name": [f"Lee{k}" for k in i],
            "Company Website": [f"https://www.co{k % 97}.com/about" for k in i],
        }
    )


def interrupt_on_first_bulk(client: clp.Client, call: Callable[[], Any]) -> Any:
    """Run ``call()`` and press Ctrl-C (SIGINT) as soon as the first chunk is accepted."""
    fired: list[Any] = []

    def listen(ev: Any) -> None:
        if (
            type(ev).__name__ == "ResponseReceived"
            and ev.method == "POST"
            and ev.path.endswith("/enrich/bulk")
            and not fired
        ):
            fired.append(ev)
            os.kill(os.getpid(), signal.SIGINT)

    client.add_listener(listen)
    try:
        with pytest.raises(EnrichmentInterrupted) as ei:
            call()
            time.sleep(5)  # the signal is delivered to the main thread; never reached
    finally:
        client.remove_listener(listen)
    return ei.value


def charged_twice(sb: Sandbox) -> list[str]:
    return [fp for fp, k in Counter(r["fingerprint"] for r in sb.ledger()).items() if k > 1]


def test_a_finished_run_is_the_last_result_and_only_the_last_is_kept(
    sandbox: Sandbox, client: clp.Client
) -> None:
    assert clp.last_result() is None
    first = leads(30).cleanlist.enrich(client=client, poll=FAST, progress=False)
    assert clp.last_result() is first
    gone = weakref.ref(first)
    del first
    second = leads(20, start=500).cleanlist.enrich(client=client, poll=FAST, progress=False)
    assert clp.last_result() is second
    gc.collect()
    assert gone() is None, "the previous run's frame is still kept alive"
    assert clp.last_result(clear=True) is second
    assert clp.last_result() is None


def test_an_interrupted_run_rows_are_the_last_result_and_resume_free(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sb = make_sandbox(time_scale=0.05)  # workflows take ~0.2 s: Ctrl-C lands mid-run
    sb.config.task_failure_rate = 0.0
    client = client_for(sb)
    df = leads(1000)  # 4 chunks
    poll = PollPolicy(first=0.5, min_interval=0.05, max_interval=0.5)
    try:
        exc = interrupt_on_first_bulk(
            client, lambda: df.cleanlist.enrich(client=client, poll=poll, progress=False)
        )
        partial = clp.last_result()
        assert partial is exc.partial_result and isinstance(exc, KeyboardInterrupt)
        status = partial["cl_status"]
        assert len(partial) == 1000 and (status == "pending").sum() >= 250
        assert exc.counts == {str(k): int(v) for k, v in status.value_counts().items()}
        # the message and the short form say where the rows are and how to resume
        assert "The rows so far: clp.last_result()" in str(exc)
        lines = exc._render_traceback_()
        text = " ".join(lines)
        done = int(status.isin(["enriched", "not_found", "failed"]).sum())
        assert text.startswith("Interrupted; nothing paid for is lost. Cleanlist job job_")
        assert f"{done:,} of 1,000 rows done" in text, text
        assert f"{(status == 'pending').sum():,} pending" in text, text
        assert "The rows so far:  out = clp.last_result()" in lines
        assert "run the same call again, df.cleanlist.enrich('partial')" in text
        assert len(lines) <= 6 and max(map(len, lines)) <= 100, lines
        assert "Traceback" not in text and 'File "' not in text

        # the same call again: the rows done before cost nothing, the pending are collected
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", clp.CleanlistWarning)
            out = df.cleanlist.enrich(client=client, poll=poll, progress=False)
        assert clp.last_result() is out
        was_done = status.isin(["enriched", "not_found"]).to_numpy()
        assert out["cl_status"].isin(["enriched", "not_found"]).all()
        assert (out.loc[was_done, "cl_credits"].fillna(0) == 0).all()
        assert not charged_twice(sb)
    finally:
        client.close()


def test_an_interrupted_run_bar_ends_on_interrupted(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    """The bar above the message must not read "1 workflow running, ~1s left" forever."""
    from cleanlist_pandas.run.job import enrich
    from cleanlist_pandas.run.options import Options
    from cleanlist_pandas.views.progress import ProgressBar

    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    bars: list[ProgressBar] = []

    def view(state: Any, draw_on_event: bool) -> ProgressBar:
        bars.append(ProgressBar(state, disable=True, draw_on_event=draw_on_event))
        return bars[-1]

    poll = PollPolicy(first=0.5, min_interval=0.05, max_interval=0.5)
    df = leads(600)
    try:
        interrupt_on_first_bulk(
            client, lambda: enrich(df, Options(poll=poll), client=client, view=view)
        )
        (bar,) = bars
        assert bar.closed
        words = bar.postfix()
        assert words.endswith("stopped: interrupted") and "running" not in words, words

        # the resume's summary: its worst case counts the workflows it collects, so it
        # never reads "163 of 0 worst case"
        events: list[Any] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", clp.CleanlistWarning)
            enrich(df, Options(poll=poll, progress=False), client=client,
                   listeners=[events.append])
    finally:
        client.close()
    (planned,) = [e for e in events if type(e).__name__ == "JobPlanned"]
    (finished,) = [e for e in events if type(e).__name__ == "JobFinished"]
    assert planned.resumed_workflows >= 1
    assert planned.worst_case_credits == planned.to_send > 0  # partial: 1 per contact
    assert 0 < finished.credits <= planned.worst_case_credits


def test_a_run_stopped_by_errors_raise_is_the_last_result(
    sandbox: Sandbox, client: clp.Client
) -> None:
    sandbox.inject_fault("bulk", "status", status=402, times=1)
    with pytest.raises(clp.InsufficientCreditsError) as ei:
        leads(30).cleanlist.enrich(client=client, errors="raise", poll=FAST, progress=False)
    assert ei.value.partial_result is not None
    assert clp.last_result() is ei.value.partial_result
    assert "The rows so far: clp.last_result()" in " ".join(ei.value._render_traceback_())


def test_a_wait_false_job_is_the_last_result_once_merged(
    sandbox: Sandbox, client: clp.Client
) -> None:
    before = leads(10, start=700).cleanlist.enrich(client=client, poll=FAST, progress=False)
    job = leads(40).cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False)
    deadline = time.monotonic() + 60
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert clp.last_result() is before  # not merged yet: result() ends the run
    out = job.result(timeout=60)
    assert clp.last_result() is out


def test_a_pilot_leaves_its_enriched_sample(sandbox: Sandbox, client: clp.Client) -> None:
    res = leads(50).cleanlist.pilot(8, client=client, poll=FAST, progress=False)
    assert clp.last_result() is res.enriched and len(res.enriched) == 8


# -- Polars: the frame the call would have returned ------------------------------------------
@pytest.fixture
def pl() -> Any:
    pytest.importorskip("pyarrow")
    return pytest.importorskip("polars")


def test_polars_runs_leave_polars_frames(pl: Any, sandbox: Sandbox, client: clp.Client) -> None:
    pl_df = pl.from_pandas(leads(30))
    out = pl_df.cleanlist.enrich(client=client, poll=FAST, progress=False)
    assert isinstance(out, pl.DataFrame) and clp.last_result() is out

    job = pl.from_pandas(leads(20, start=300)).cleanlist.enrich(
        client=client, wait=False, poll=FAST, progress=False
    )
    got = job.result(timeout=60)
    assert isinstance(got, pl.DataFrame) and clp.last_result() is got

    res = pl_df.cleanlist.pilot(5, client=client, poll=FAST, progress=False)
    assert isinstance(res.enriched, pl.DataFrame) and clp.last_result() is res.enriched

    sandbox.inject_fault("bulk", "status", status=402, times=1)
    with pytest.raises(clp.InsufficientCreditsError) as ei:
        pl.from_pandas(leads(30, start=900)).cleanlist.enrich(
            client=client, errors="raise", poll=FAST, progress=False
        )
    partial = ei.value.partial_result
    assert isinstance(partial, pl.DataFrame) and clp.last_result() is partial

    wide_df = pl.from_pandas(leads(6, start=1200))
    long = wide_df.cleanlist.prospects(client=client, poll=FAST, progress=False)
    wide = clp.last_result()
    assert isinstance(long, pl.DataFrame) and isinstance(wide, pl.DataFrame)
    assert wide.height == wide_df.height and "cl_status" in wide.columns


def test_an_interrupted_polars_run_leaves_a_polars_frame(
    pl: Any, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    pl_df = pl.from_pandas(leads(1000))
    poll = PollPolicy(first=0.5, min_interval=0.05, max_interval=0.5)
    try:
        exc = interrupt_on_first_bulk(
            client, lambda: pl_df.cleanlist.enrich(client=client, poll=poll, progress=False)
        )
        partial = clp.last_result()
        assert isinstance(partial, pl.DataFrame) and partial is exc.partial_result
        assert partial.height == 1000 and (partial["cl_status"] == "pending").sum() >= 250
    finally:
        client.close()


def test_an_interrupted_polars_pilot_leaves_its_sample_as_polars(
    pl: Any, make_sandbox: Callable[..., Sandbox]
) -> None:
    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    pl_df = pl.from_pandas(leads(600)).with_columns(pl.lit("x").alias("Notes"))
    poll = PollPolicy(first=0.5, min_interval=0.05, max_interval=0.5)
    try:
        exc = interrupt_on_first_bulk(
            client,
            lambda: pl_df.cleanlist.pilot(300, client=client, poll=poll, progress=False),
        )
        partial = clp.last_result()
        assert isinstance(partial, pl.DataFrame) and partial is exc.partial_result
        assert partial.height == 300 and "Notes" in partial.columns  # every column, by row
        sample = pl_df.join(partial.select("First Name", "Last Name"), on=["First Name",
                                                                           "Last Name"])
        assert sample.height == 300
    finally:
        client.close()
