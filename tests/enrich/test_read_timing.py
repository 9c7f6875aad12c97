"""When the engine reads its workflows (issue 10): against a scripted service whose workflows
take exactly the durations a test gives, through a real :class:`Pacer`, so each test says
which reads were spent and when. Behaviour, not speed (``benchmarks/bench_pace.py``)."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from cleanlist_pandas._perf import freeze_heap, thaw_heap
from cleanlist_pandas.client.http import Pacer, SendHooks
from cleanlist_pandas.run.engine import Engine, PollPolicy
from cleanlist_pandas.store.journal import Journal
from cleanlist_pandas.store.provenance import Scope
from cleanlist_pandas.types import StatusSnapshot, Submission

CHUNK = 20  # contacts per workflow: enough for "nearly done" (99 %, out of 20 or more)


class Scripted:
    """Workflow ``i`` (in submission order) takes ``durations[i]`` s; its tasks finish
    evenly over the first 60 % of that time, but for the last one, a straggler. Answers
    take ``answer_delay`` s and describe the workflow as it is when they are sent back (a
    busy service answers late, about a later moment)."""

    def __init__(
        self, durations: Sequence[float], *, rate: int, per: float, answer_delay: float = 0.0
    ) -> None:
        self.pacer = Pacer(rate=rate, per=per)
        self.durations = list(durations)
        self.answer_delay = answer_delay
        self.created: dict[str, tuple[float, float, int]] = {}
        #: (workflow, age when the read left, age when answered, done)
        self.reads: list[tuple[str, float, float, bool]] = []
        self.requests = 0

    async def submit(
        self,
        contacts: Sequence[Mapping[str, Any]],
        enrichment_type: str = "partial",
        webhook_url: str | None = None,
        *,
        send_hooks: SendHooks | None = None,
    ) -> Submission:
        slot = await self.pacer.acquire(urgent=True)
        try:
            if send_hooks is not None:
                send_hooks.before_send()
                send_hooks.on_wire()
            self.requests += 1
            wid = f"wf{len(self.created)}"
            self.created[wid] = (time.monotonic(), self.durations[len(self.created)], len(contacts))
            return Submission(
                workflow_id=wid,
                status="processing",
                message=None,
                task_ids=tuple(f"{wid}-{k}" for k in range(len(contacts))),
                total_contacts=len(contacts),
                enrichment_type=enrichment_type,
            )
        finally:
            self.pacer.release(slot)

    async def status_snapshot(
        self, workflow_id: str, *, send_hooks: SendHooks | None = None
    ) -> StatusSnapshot:
        slot = await self.pacer.acquire()
        try:
            if send_hooks is not None:
                send_hooks.before_send()
            self.requests += 1
            created, took, n = self.created[workflow_id]
            left = time.monotonic() - created
            if self.answer_delay:
                await asyncio.sleep(self.answer_delay)
            age = time.monotonic() - created
            done = age >= took
            self.reads.append((workflow_id, left, age, done))
            if not done:
                done_tasks = min(n - 1, int(n * age / (0.6 * took)))
                return StatusSnapshot(workflow_id, "processing", done_tasks, n)
            results = [
                {"task_id": f"{workflow_id}-{k}", "status": "completed", "credits_charged": 1,
                 "primary_email": f"p{k}@x.io"}
                for k in range(n)
            ]
            return StatusSnapshot(workflow_id, "completed", n, n, results, run_seconds=took)
        finally:
            self.pacer.release(slot)


def _run(service: Scripted, tmp: Path, poll: PollPolicy) -> Engine:
    journal = Journal(tmp / "journal.sqlite3")
    rows = CHUNK * len(service.durations)
    job = journal.open_job("k", "partial", rows=rows, scope=Scope("https://a.io", "org_test"))
    engine = Engine(client=service, journal=journal, job_id=job.job_id,
                    enrichment_type="partial", poll=poll, chunk_size=CHUNK)
    to_send = [(f"fp{i}", {"linkedin_url": f"https://linkedin.com/in/u{i}"})
               for i in range(CHUNK * len(service.durations))]
    outcome = asyncio.run(engine.run(to_send))
    assert len(outcome.results) == len(to_send)
    journal.close()
    return engine


POLL = PollPolicy(first=0.1, min_interval=0.01, max_interval=2.0, eager=0.02)


def test_surely_done_does_not_come_down_as_the_fast_ones_finish(tmp_path: Path) -> None:
    # the first workflows to finish are the fastest: a margin that shrank with each sample
    # called the slow ones done at 0.96 s when they took up to 1.13 s
    e = Engine(client=None, journal=Journal(tmp_path / "j.sqlite3"), job_id="j",
               enrichment_type="partial")
    e._durations.append(0.75)
    first = e._surely_done()
    assert first == pytest.approx(1.125)
    for d in (0.70, 0.72, 0.74, 0.76, 0.78, 0.80):
        e._durations.append(d)
        assert e._surely_done() == pytest.approx(first)
    e._durations.append(1.0)  # a slower one raises it
    assert e._surely_done() == pytest.approx(1.0 * (1 + 0.5 / math.sqrt(8)))


def test_slow_workflows_behind_fast_ones_fit_the_window(tmp_path: Path) -> None:
    # 12 submissions + 12 final reads in a window of 29: 5 reads to spare (less the
    # reserve), fewer than the workflows. The fast half finish first; if their durations
    # set "surely done", every slow one is read too soon, misses, and the misses take the
    # places of final reads: the last would wait 30 s for the next window (before: 38
    # requests for a window of 29)
    fast, slow = [0.30, 0.31, 0.32, 0.33, 0.34, 0.35], [0.50, 0.52, 0.53, 0.54, 0.55, 0.56]
    durations = [*fast, *slow]
    service = Scripted(durations, rate=30, per=30.0)
    t0 = time.monotonic()
    _run(service, tmp_path, POLL)
    assert time.monotonic() - t0 < 10
    assert service.requests <= 29


def test_a_miss_when_surely_done_moves_the_bar_for_the_others(tmp_path: Path) -> None:
    # the scout (0.3 s) says "surely done" at 0.45 s; the other five take 0.5 s. After the
    # scout's own miss, a read that takes the last place the window has for its workflow
    # waits until the workflow is twice as old as the oldest seen running when surely
    # done: the five do not all miss at the same wrong guess, and the run fits the window
    # (before: 20 requests for a window of 15)
    service = Scripted([0.3, 0.5, 0.5, 0.5, 0.5, 0.5], rate=16, per=30.0)
    t0 = time.monotonic()
    engine = _run(service, tmp_path, POLL)
    assert time.monotonic() - t0 < 10
    assert service.requests <= 15
    assert engine._missed_sure > 0.25  # what moved it
    assert engine._surely_done() >= 1.1 * engine._missed_sure


def test_nearly_done_is_dated_by_the_answer(tmp_path: Path) -> None:
    # answers take 0.15 s: a read that left at 0.25 s describes the workflow at 0.40 s
    service = Scripted([0.5] * 6, rate=16, per=30.0, answer_delay=0.15)
    engine = _run(service, tmp_path, POLL)
    assert engine._nearly is not None
    # the first read that found the scout at 19 of 20 tasks (from 0.57 x 0.5 s)
    first = min((r for r in service.reads if not r[3] and r[2] >= 0.285), key=lambda r: r[2])
    assert engine._nearly == pytest.approx(first[2], abs=0.02)  # the answer's age
    assert engine._nearly > first[1] + 0.1  # not the leaving one's


def test_a_sleeping_read_is_replanned_when_a_workflow_is_collected(tmp_path: Path) -> None:
    e = Engine(client=None, journal=Journal(tmp_path / "j.sqlite3"), job_id="j",
               enrichment_type="partial")

    async def scenario() -> tuple[float, float]:
        e._freed = asyncio.Event()
        t0 = time.monotonic()
        # planned 5 s ahead; once a workflow is collected, the plan is 0.05 s from now
        nap = asyncio.create_task(e._nap(t0 + 5.0, lambda: time.monotonic() + 0.05))
        await asyncio.sleep(0.05)
        freed, e._freed = e._freed, asyncio.Event()
        freed.set()
        await nap
        woke = time.monotonic() - t0
        t1 = time.monotonic()
        await e._nap(t1 + 0.1, None)  # nothing to replan: the plan holds
        return woke, time.monotonic() - t1

    woke, held = asyncio.run(scenario())
    assert woke < 2.0
    assert held >= 0.09


def test_a_straggler_far_beyond_every_estimate_costs_at_most_one_place(tmp_path: Path) -> None:
    # 8 submissions + 8 final reads in a window of 20: the straggler takes 2.5 x the others.
    # The places beyond the job's needs go on misses; then a read that takes a workflow's
    # last place waits until the workflow is twice as old as when last seen running (or
    # as the job's oldest miss at "surely done"). The straggler may still miss once there:
    # its final read then waits for the next window (4 s here), but no other read does
    # (before: 26 requests for a window of 20)
    service = Scripted([0.3] * 7 + [0.75], rate=21, per=4.0)
    t0 = time.monotonic()
    _run(service, tmp_path, POLL)
    assert time.monotonic() - t0 < 10
    assert service.requests <= 21
    assert [r[3] for r in service.reads if r[0] == "wf7"][-1]
    late = [r for r in service.reads if r[1] > 3.0]
    assert {r[0] for r in late} <= {"wf7"}


def test_a_run_keeps_the_heap_frozen_and_thaws_it(tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    seen: list[int] = []

    class Counting(Scripted):
        async def status_snapshot(self, workflow_id: str, **kw: Any) -> StatusSnapshot:
            seen.append(gc.get_freeze_count())
            return await super().status_snapshot(workflow_id, **kw)

    froze = freeze_heap()  # as _Run does for the run
    try:
        _run(Counting([0.05] * 2, rate=30, per=30.0), tmp_path, POLL)
    finally:
        thaw_heap(froze)
    assert froze and seen and min(seen) > 0
    assert gc.get_freeze_count() == 0


def test_enrich_freezes_the_heap_only_while_the_caller_waits(client: Any) -> None:
    import pandas as pd

    from cleanlist_pandas.events import WorkflowProgress
    from cleanlist_pandas.run.job import enrich
    from cleanlist_pandas.run.options import Options

    df = pd.DataFrame({"LinkedIn": [f"linkedin.com/in/gc-{i}" for i in range(300)]})
    during: list[int] = []

    def seen(e: Any) -> None:
        if isinstance(e, WorkflowProgress):
            during.append(gc.get_freeze_count())

    poll = PollPolicy(first=0.05, min_interval=0.02, max_interval=0.5, eager=0.02)
    enrich(df, Options(progress=False, poll=poll), client=client, listeners=[seen])
    assert during and min(during) > 0  # frozen while the caller's thread waited
    assert gc.get_freeze_count() == 0  # and thawed when the run ended
    during.clear()
    job = enrich(df.iloc[:100], Options(progress=False, poll=poll, cache=False),
                 client=client, wait=False, listeners=[seen])
    job.result()
    assert during and max(during) == 0  # a background job leaves the user's heap alone


def test_runs_share_one_freeze_and_leave_the_processes_own_alone() -> None:
    a, b = freeze_heap(), freeze_heap()
    thaw_heap(a)
    assert gc.get_freeze_count() > 0  # b still runs
    thaw_heap(b)
    assert gc.get_freeze_count() == 0
    gc.freeze()  # the process's own (before forking workers, say)
    try:
        c = freeze_heap()
        thaw_heap(c)
        assert not c and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
