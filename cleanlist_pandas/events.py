"""Every event of the package: one vocabulary, one :func:`emit`.

Requests (the client's request loop, ``_http.py``) and runs (the enrichment engine and job)
report what happens as frozen dataclasses. Listeners — the run's state
(:class:`~cleanlist_pandas.run.state.RunState`), the progress bar, the panel, tests — only
listen; none of them is the source of truth, and none is imported by whoever emits. This
module depends on nothing else in the package, so the client, the engine and the views can
all import it (python-bigquery's ``_job_helpers`` / ``_tqdm_helpers`` split).

A listener must be quick and must not raise: :func:`emit` logs and swallows errors, so a
broken view never loses a paid result.

>>> seen = []
>>> emit([seen.append], ChunkSubmitted(number=0, workflow_id="public_bulk_x", contacts=250))
>>> seen[0].contacts
250
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


# -- requests (the client) -------------------------------------------------------------

@dataclass(frozen=True)
class RequestSent:
    """An attempt is about to go on the wire (``attempt`` counts from 1)."""

    method: str
    path: str
    attempt: int


@dataclass(frozen=True)
class ResponseReceived:
    """An answer came back for an attempt."""

    method: str
    path: str
    attempt: int
    status_code: int
    elapsed_s: float


@dataclass(frozen=True)
class RetryScheduled:
    """Attempt ``attempt`` failed with ``reason``; the next one follows in ``delay`` s."""

    method: str
    path: str
    attempt: int
    delay: float
    reason: str
    status_code: int | None = None


@dataclass(frozen=True)
class PacerWait:
    """A request waits ``delay`` s for the client's rate limit (not an error)."""

    method: str
    path: str
    delay: float



# -- runs (the engine and the job) -----------------------------------------------------

@dataclass(frozen=True)
class JobPlanned:
    """The plan is made: how many rows, how many contacts will be sent, in how many chunks."""

    job_id: str
    rows: int
    unique: int
    cached: int
    to_send: int
    chunks: int
    worst_case_credits: float
    resumed_workflows: int = 0
    enrichment_type: str = ""
    #: for a run that resumes a job an earlier run started: the job's worst case then
    job_worst_case: float | None = None
    #: rows ``where=``/``only_missing=`` left out (never sent)
    excluded: int = 0
    #: the run is a pilot (``df.cleanlist.pilot()``), not a full enrichment
    pilot: bool = False


@dataclass(frozen=True)
class ChunkSubmitted:
    """A chunk was accepted by the API as workflow ``workflow_id``."""

    number: int
    workflow_id: str
    contacts: int


@dataclass(frozen=True)
class WorkflowProgress:
    """A status poll of one workflow: ``completed`` of ``total`` tasks are done."""

    workflow_id: str
    completed: int
    total: int
    status: str
    #: the summary's counts so far (a running workflow's found emails and phones)
    emails_found: int = 0
    phones_found: int = 0


@dataclass(frozen=True)
class ContactsDone:
    """Contacts finished (all workflows together), with the running totals of the job."""

    done: int
    total: int
    found: int
    credits: float
    in_flight: int


@dataclass(frozen=True)
class Waiting:
    """The engine is waiting ``seconds`` for ``reason`` (e.g. the rate limit, a retry)."""

    seconds: float
    reason: str


@dataclass(frozen=True)
class ChunkAmbiguous:
    """A chunk may or may not have reached the API (spec §7); its rows end ``unknown``."""

    number: int
    contacts: int
    reason: str


@dataclass(frozen=True)
class RunStopped:
    """Submitting stopped early (budget, 401/402/403, cancel, Ctrl-C); ``reason`` says why."""

    reason: str
    not_submitted: int


@dataclass(frozen=True)
class JobFinished:
    """The job is over: counts by ``cl_status``, the credits spent, whether it was a pilot,
    and the workflows this run submitted."""

    job_id: str
    counts: dict[str, int]
    credits: float
    pilot: bool = False
    workflow_ids: tuple[str, ...] = ()



ClientEvent = RequestSent | ResponseReceived | RetryScheduled | PacerWait
RunEvent = (
    JobPlanned
    | ChunkSubmitted
    | WorkflowProgress
    | ContactsDone
    | Waiting
    | ChunkAmbiguous
    | RunStopped
    | JobFinished
)
Event = ClientEvent | RunEvent
Listener = Callable[[Event], None]


class View(Protocol):
    """A listener that draws something (a bar, a panel): it also redraws on demand, from the
    thread that calls :meth:`refresh`, and closes when the run is over."""

    def __call__(self, event: Event) -> None: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...


class WaitView(Protocol):
    """What shows one workflow's ``wait()``: a status read, a note (a wait for the window, a
    retry), the end. The client drives it and knows nothing of how it draws."""

    def update(self, workflow: Any) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


class _NoWaitView:
    def update(self, workflow: Any) -> None:
        return None

    def note(self, text: str) -> None:
        return None

    def close(self) -> None:
        return None


_wait_view_factory: Callable[[str], WaitView] | None = None


def set_wait_view(factory: Callable[[str], WaitView] | None) -> None:
    """The views layer says how a ``wait(progress=True)`` is shown (a tqdm bar: set by
    :mod:`cleanlist_pandas.views.bars` when the package is imported); the client, below the
    views, only calls :func:`wait_view`.

    >>> set_wait_view(None); wait_view("wf", True).update(None)
    """
    global _wait_view_factory
    _wait_view_factory = factory


def wait_view(workflow_id: str, enabled: bool) -> WaitView:
    """The view of one ``wait()``: the registered one when ``enabled``, else one that does
    nothing.

    >>> wait_view("wf", False).note("x")
    """
    if not enabled or _wait_view_factory is None:
        return _NoWaitView()
    return _wait_view_factory(workflow_id)


def emit(listeners: Sequence[Listener], event: Event) -> None:
    """Call every listener with ``event``; a failing listener is logged, never raised.

    >>> seen = []
    >>> emit([seen.append], Waiting(1.0, "rate limit"))
    >>> seen[0].reason
    'rate limit'
    """
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # a broken view must never lose a paid result
            log.exception("event listener failed on %r", event)
