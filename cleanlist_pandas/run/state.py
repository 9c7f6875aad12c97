"""The live state of one enrichment run, owned by its job and fed only by events.

Every view — the progress bar, the panel, the job handle's display, a final summary, the
tests — reads a :class:`RunSnapshot` from the job's :class:`RunState`; none of them keeps
counters of its own, so they never disagree, and a run with ``progress=False`` is just as
observable. ``RunState`` is a listener: the job subscribes it (first) to the engine's and the
client's events. It is thread-safe: the loop thread writes, any thread reads.

>>> from cleanlist_pandas.events import ChunkSubmitted, ContactsDone, JobPlanned
>>> state = RunState()
>>> state(JobPlanned("job_1", rows=5, unique=4, cached=1, to_send=3, chunks=1,
...                  worst_case_credits=3.0))
>>> state(ChunkSubmitted(number=0, workflow_id="wf", contacts=3))
>>> state(ContactsDone(done=3, total=3, found=2, credits=2.0, in_flight=0))
>>> s = state.snapshot()
>>> (s.done, s.total, s.found, s.credits, s.submitted, s.cached)
(3, 3, 2, 2.0, 1, 1)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from cleanlist_pandas.events import (
    ChunkAmbiguous,
    ChunkSubmitted,
    ContactsDone,
    Event,
    JobFinished,
    JobPlanned,
    PacerWait,
    RequestSent,
    ResponseReceived,
    RetryScheduled,
    RunStopped,
    Waiting,
    WorkflowProgress,
)
from cleanlist_pandas.types import found_so_far

__all__ = ["INTERRUPTED", "RunSnapshot", "RunState"]

#: ``RunStopped.reason`` of a run interrupted by Ctrl-C (Kernel → Interrupt): its views'
#: last words say so, not "2 workflows running".
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class RunSnapshot:
    """What a run has done so far (a copy: reading it never blocks the run).

    ``done``/``total`` count unique contacts sent this run; ``tasks_completed`` also counts
    tasks the status summaries report finished in workflows still running, so a view can
    move before whole workflows end; ``found`` and ``credits`` likewise add what those
    summaries say was found so far, and what it is charged
    (:func:`~cleanlist_pandas.types.found_so_far`), replaced by the exact figures when the
    workflow's results are read. ``note`` is the latest wait or warning in words.
    """

    job_id: str = ""
    enrichment_type: str = ""
    rows: int = 0
    unique: int = 0
    cached: int = 0
    to_send: int = 0
    chunks: int = 0
    worst_case_credits: float = 0.0
    resumed_workflows: int = 0
    submitted: int = 0
    ambiguous: int = 0
    in_flight: int = 0
    done: int = 0
    total: int = 0
    found: int = 0
    credits: float = 0.0
    tasks_completed: int = 0
    requests: int = 0
    retries: int = 0
    note: str = ""
    started: float = 0.0
    last_event: str = ""
    last_event_at: float = 0.0
    stopped: str | None = None
    finished: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    #: when every running workflow should be done (monotonic; extrapolated from the status
    #: summaries; 0.0 while some workflow has no finished task yet)
    expected_end_at: float = 0.0
    #: rows ``where=``/``only_missing=`` left out
    excluded: int = 0
    #: a pilot run (``df.cleanlist.pilot()``)
    pilot: bool = False
    #: the workflows this run submitted (set when it finishes)
    workflow_ids: tuple[str, ...] = ()
    #: a resumed job: its worst case when an earlier run started it (else None)
    job_worst_case: float | None = None

    @property
    def rows_done(self) -> int:
        """Contacts finished so far, cached ones included; moves with the status summaries
        (tasks finished in workflows still running), not only when whole workflows end."""
        return self.cached + max(self.done, self.tasks_completed)

    @property
    def rows_total(self) -> int:
        """Unique contacts of the run: those to send and those served from the cache."""
        return self.total + self.cached

    def phase(self) -> str:
        """What the run is doing now, in words (the first note of the bar and the panel).

        >>> RunSnapshot(chunks=4, submitted=1).phase()
        'submitting 1/4 chunks'
        >>> RunSnapshot(chunks=4, submitted=4, in_flight=4).phase()
        '4 workflows running, waiting for the first results'
        >>> RunSnapshot(chunks=4, submitted=4, in_flight=4, stopped=INTERRUPTED).phase()
        ''
        """
        if self.finished:
            return "finished"
        if self.stopped == INTERRUPTED:  # nothing runs for it any more: the note says so
            return ""
        if not self.job_id and not self.chunks and not self.submitted:
            return "planning"
        if self.chunks and self.submitted < self.chunks and not self.stopped:
            return f"submitting {self.submitted}/{self.chunks} chunks"
        if self.in_flight:
            running = f"{self.in_flight} workflow{'s' if self.in_flight != 1 else ''} running"
            if self.rows_done <= self.cached:
                return f"{running}, waiting for the first results"
            if self.expected_end_at:
                left = self.expected_end_at - time.monotonic()
                return f"{running}, ~{max(left, 1):.0f}s left"
            return running
        return "collecting" if self.submitted else ""

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (to its end once finished)."""
        end = self.last_event_at if self.finished else time.monotonic()
        return max(0.0, end - self.started) if self.started else 0.0


class RunState:
    """The run's state, updated only from events (a listener), read as snapshots.

    >>> RunState().snapshot().finished
    False
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._s = RunSnapshot(started=time.monotonic())
        self._running: dict[str, int] = {}  # workflow id -> tasks completed so far
        # workflow id -> (found, credits) its summary reported so far; collected figures
        self._running_found: dict[str, tuple[int, float]] = {}
        self._found = 0
        self._credits = 0.0
        # workflow id -> when it was accepted, and its extrapolated end (0.0: unknown yet)
        self._since: dict[str, float] = {}
        self._ends: dict[str, float] = {}

    def snapshot(self) -> RunSnapshot:
        """A consistent copy of the state, from any thread."""
        with self._lock:
            return self._s

    def __call__(self, event: Event) -> None:
        with self._lock:
            s = self._s
            now = time.monotonic()
            upd: dict[str, Any] = {"last_event": type(event).__name__, "last_event_at": now}
            if isinstance(event, JobPlanned):
                upd.update(
                    job_id=event.job_id,
                    rows=event.rows,
                    unique=event.unique,
                    cached=event.cached,
                    to_send=event.to_send,
                    total=event.to_send,
                    chunks=event.chunks,
                    worst_case_credits=event.worst_case_credits,
                    resumed_workflows=event.resumed_workflows,
                    enrichment_type=event.enrichment_type,
                    excluded=event.excluded,
                    pilot=event.pilot,
                    job_worst_case=event.job_worst_case,
                )
            elif isinstance(event, ChunkSubmitted):
                self._running[event.workflow_id] = 0
                self._since[event.workflow_id] = now
                self._ends[event.workflow_id] = 0.0
                upd.update(submitted=s.submitted + 1, in_flight=len(self._running), note="",
                           expected_end_at=0.0)
            elif isinstance(event, WorkflowProgress):
                wid = event.workflow_id
                if event.status == "processing":
                    self._running[wid] = event.completed
                    self._running_found[wid] = found_so_far(
                        s.enrichment_type, event.emails_found, event.phones_found
                    )
                    if event.completed and wid in self._since:
                        # tasks run side by side: the rate so far, extrapolated
                        took = now - self._since[wid]
                        self._ends[wid] = self._since[wid] + took * event.total / event.completed
                else:
                    self._running.pop(wid, None)
                    self._running_found.pop(wid, None)
                    self._since.pop(wid, None)
                    self._ends.pop(wid, None)
                upd.update(tasks_completed=s.done + sum(self._running.values()),
                           expected_end_at=self._expected_end(), **self._found_now())
            elif isinstance(event, ContactsDone):
                self._found, self._credits = event.found, event.credits
                upd.update(
                    done=event.done,
                    total=event.total,
                    in_flight=event.in_flight,
                    tasks_completed=event.done + sum(self._running.values()),
                    note="",
                    **self._found_now(),
                )
            elif isinstance(event, Waiting):
                upd.update(note=event.reason)
            elif isinstance(event, ChunkAmbiguous):
                upd.update(
                    ambiguous=s.ambiguous + 1,
                    note=f"{event.contacts} contacts in an unknown state",
                )
            elif isinstance(event, RunStopped):
                upd.update(stopped=event.reason, note=f"stopped: {event.reason}")
            elif isinstance(event, JobFinished):
                upd.update(
                    finished=True,
                    counts=dict(event.counts),
                    credits=event.credits,
                    workflow_ids=tuple(event.workflow_ids),
                )
            elif isinstance(event, RequestSent):
                upd.update(requests=s.requests + 1)
            elif isinstance(event, RetryScheduled):
                upd.update(
                    retries=s.retries + 1, note=f"retry in {event.delay:.0f}s ({event.reason})"
                )
            elif isinstance(event, PacerWait):
                if event.delay >= 1.0:
                    upd.update(note=f"rate limit: waiting {event.delay:.0f}s")
            elif isinstance(event, ResponseReceived):
                pass
            self._s = replace(s, **upd)

    def _found_now(self) -> dict[str, Any]:
        """found and credits: the collected workflows' exact figures plus what the running
        ones' summaries said so far."""
        running = self._running_found.values()
        return {
            "found": self._found + sum(f for f, _c in running),
            "credits": self._credits + sum(c for _f, c in running),
        }

    def _expected_end(self) -> float:
        ends = [self._ends.get(w, 0.0) for w in self._running]
        return max(ends) if ends and all(ends) else 0.0
