"""Every number on screen is true (issue 19, finding 4): a resumed run says so and shows
the job's worst case; savings are counted once per contact across a job's runs; found and
credits move as tasks finish, not only when whole workflows do; a small pilot says its
interval is wide."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_enrich_run import client_for, interrupt_after_first_chunk, leads, run

import cleanlist_pandas as clp
from cleanlist_pandas._constants import MAX_UNIT_COST
from cleanlist_pandas.events import ContactsDone, JobPlanned, WorkflowProgress
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.run.state import RunState
from cleanlist_pandas.run.summary import RunSummary
from cleanlist_pandas.sandbox import Sandbox


def test_a_resumed_run_says_so_and_shows_the_jobs_worst_case(
    make_sandbox: Any, _cache_dir: Path
) -> None:
    sb = make_sandbox(time_scale=0.05)  # workflows take ~0.2 s: none is done at Ctrl-C
    client = client_for(sb)
    df = leads(600)  # 3 chunks
    interrupt_after_first_chunk(df, client, enrichment_type="full")
    assert clp.last_result() is not None  # the interrupted run's rows
    resumed = df.cleanlist.enrich(
        "full", client=client, progress=False, wait=False,
        poll=PollPolicy(first=0.2, min_interval=0.05, max_interval=0.5),
    )
    frame = resumed.result()
    snap = resumed.state()
    summary = RunSummary.from_snapshot(snap)
    text = repr(summary)
    # before: "credits 181 of 0 worst case", and nothing said it resumed
    assert ", resumed:" in summary.title()
    assert f"the job's worst case {600 * MAX_UNIT_COST['full']:,}" in text
    assert summary.worst_case_credits > 0 and summary.credits <= summary.worst_case_credits
    assert "resumed" in summary._repr_html_()
    assert float(frame["cl_credits"].sum()) == pytest.approx(summary.credits)
    client.close()


def test_savings_are_counted_once_across_an_interrupted_run_and_its_resume(
    make_sandbox: Any, _cache_dir: Path
) -> None:
    """Before: 70 in the CLI, 187 in the notebook — the same duplicate rows in both runs'
    ledger rows. Now the job's runs add up to what one uninterrupted run records."""
    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    df = leads(900, dup_every=3)  # 300 distinct contacts, 600 duplicate rows
    interrupt_after_first_chunk(df, client)
    run(df, client, poll=PollPolicy(first=0.2, min_interval=0.05, max_interval=0.5))
    runs = clp.spend()
    assert len(runs) == 2 and runs["job_id"].nunique() == 1
    assert runs["saved_duplicates"].sum() == 600 * MAX_UNIT_COST["partial"]
    assert runs["saved_cache"].sum() == 0  # the job's own results are no saving
    assert runs.iloc[1]["saved"] == 0
    client.close()


def test_found_and_credits_move_with_the_status_summaries() -> None:
    """Before: "found 0, credits 0" while 21 of 22 contacts were done — found and credits
    moved only when a whole workflow was read."""
    state = RunState()
    state(JobPlanned("j", rows=20, unique=20, cached=0, to_send=20, chunks=1,
                     worst_case_credits=220.0, enrichment_type="full"))
    state(WorkflowProgress("wf", completed=15, total=20, status="processing",
                           emails_found=12, phones_found=3))
    s = state.snapshot()
    assert (s.found, s.credits) == (12, 12 + 3 * 10)
    state(WorkflowProgress("wf", completed=20, total=20, status="completed"))
    state(ContactsDone(done=20, total=20, found=14, credits=54.0, in_flight=0))
    s = state.snapshot()
    assert (s.found, s.credits) == (14, 54.0)  # the exact figures replace the summary's


def test_found_moves_during_a_real_run(make_sandbox: Any, _cache_dir: Path) -> None:
    sb: Sandbox = make_sandbox(time_scale=0.2)  # a workflow takes ~0.6 s
    sb.config.task_time_sigma = 1.0  # its tasks finish over a while
    sb.config.email_found_rate = 1.0
    client = client_for(sb)
    job = leads(200).cleanlist.enrich(
        client=client, progress=False, wait=False,
        poll=PollPolicy(first=0.05, min_interval=0.05, max_interval=0.1),
    )
    seen: list[tuple[int, int, float]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            s = job.state()
            seen.append((s.done, s.found, s.credits))
            time.sleep(0.01)

    t = threading.Thread(target=watch)
    t.start()
    job.result()
    stop.set()
    t.join()
    # some moment had found and credits moving while the workflow was still running
    assert any(done == 0 and found > 0 and credits > 0 for done, found, credits in seen)
    client.close()


def test_a_small_pilot_says_its_interval_is_wide(sandbox: Sandbox, client: Any) -> None:
    df = leads(400)
    small = df.cleanlist.pilot(10, "full", client=client, progress=False)
    assert small.small_sample
    text = " ".join(repr(small).split())  # the table wraps long values
    assert "a sample of 10 is small: the expected credits' interval is wide" in text
    assert "pilot(200)" in small._repr_html_()
    big = df.cleanlist.pilot(80, "full", client=client, progress=False)
    assert not big.small_sample and "is small" not in repr(big)
