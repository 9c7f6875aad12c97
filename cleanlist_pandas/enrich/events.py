"""Events the enrichment engine emits; the progress bar, the widget panel and tests listen.

The engine never imports a UI. It calls ``on_event(event)`` with one of the frozen
dataclasses below; a listener must be quick and must not raise (errors are logged and
swallowed so a broken bar never loses a paid result).

>>> from cleanlist_pandas.enrich.events import ChunkSubmitted
>>> ChunkSubmitted(chunk=0, workflow_id="public_bulk_x", contacts=250).contacts
250
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class ChunkSubmitted:
    """A chunk was accepted by the API as workflow ``workflow_id``."""

    chunk: int
    workflow_id: str
    contacts: int


@dataclass(frozen=True)
class WorkflowProgress:
    """A status poll of one workflow: ``completed`` of ``total`` tasks are done."""

    workflow_id: str
    completed: int
    total: int
    status: str


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

    chunk: int
    contacts: int
    reason: str


@dataclass(frozen=True)
class RunStopped:
    """Submitting stopped early (budget, 401/402/403, cancel, Ctrl-C); ``reason`` says why."""

    reason: str
    not_submitted: int


@dataclass(frozen=True)
class JobFinished:
    """The job is over: counts by ``cl_status`` and the credits spent."""

    job_id: str
    counts: dict[str, int]
    credits: float


Event = (
    JobPlanned
    | ChunkSubmitted
    | WorkflowProgress
    | ContactsDone
    | Waiting
    | ChunkAmbiguous
    | RunStopped
    | JobFinished
)
Listener = Callable[[Event], None]


def emit(listeners: list[Listener], event: Event) -> None:
    """Call every listener with ``event``; a failing listener is logged, never raised.

    >>> seen = []
    >>> emit([seen.append], Waiting(1.0, "rate limit"))
    >>> seen[0].reason
    'rate limit'
    """
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # a broken UI must never lose a paid result
            log.exception("event listener failed on %r", event)
