"""A run's row of the spend ledger: what it put on the wire (:class:`SpendMeter`, a
listener), how it ended (:func:`ended_as`) and what it paid and saved
(:func:`run_record`), appended by :func:`record_run` when the run ends, however it ends. The
ledger itself — the file, ``clp.spend()`` and its chart — is
:mod:`cleanlist_pandas.store.ledger`.

>>> m = SpendMeter()
>>> m(ChunkSubmitted(number=0, workflow_id="wf", contacts=250))
>>> m.sent
250
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cleanlist_pandas._constants import MAX_UNIT_COST
from cleanlist_pandas.events import ChunkAmbiguous, ChunkSubmitted, Event
from cleanlist_pandas.store.ledger import RunRecord, SpendLedger

if TYPE_CHECKING:
    from cleanlist_pandas.run.engine import EngineOutcome
    from cleanlist_pandas.run.prepare import Prepared

__all__ = ["SpendMeter", "ended_as", "record_run", "run_record"]

log = logging.getLogger(__name__)


class SpendMeter:
    """A run's listener: the contacts it put on the wire, per workflow (accepted chunks) and
    in doubt (ambiguous chunks, which may have reached the API).

    >>> m = SpendMeter()
    >>> m(ChunkSubmitted(number=0, workflow_id="wf", contacts=250))
    >>> m(ChunkAmbiguous(number=1, contacts=10, reason="timeout"))
    >>> m.sent, dict(m.workflows)
    (260, {'wf': 250})
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.workflows: dict[str, int] = {}
        self.ambiguous = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, ChunkSubmitted):
            with self._lock:
                self.workflows[event.workflow_id] = (
                    self.workflows.get(event.workflow_id, 0) + event.contacts
                )
        elif isinstance(event, ChunkAmbiguous):
            with self._lock:
                self.ambiguous += event.contacts

    @property
    def sent(self) -> int:
        """Contacts accepted by the API in this run, plus those in doubt."""
        with self._lock:
            return sum(self.workflows.values()) + self.ambiguous


def ended_as(outcome: EngineOutcome | None, error: BaseException | None) -> str:
    """How a run ended, in one word (see the module doc).

    >>> ended_as(None, None), ended_as(None, KeyboardInterrupt())
    ('error', 'interrupted')
    """
    from cleanlist_pandas.errors import CleanlistError, InsufficientCreditsError
    from cleanlist_pandas.store.journal import AWAITING_CREDITS

    interrupt = isinstance(error, KeyboardInterrupt | asyncio.CancelledError)
    if outcome is None:  # the engine never ran
        if isinstance(error, InsufficientCreditsError):
            return "no_credits"
        return "interrupted" if interrupt else "error"
    if outcome.interrupted or interrupt:
        return "interrupted"
    stop = outcome.stop_error
    reason = outcome.stop_reason or ""
    if isinstance(stop, InsufficientCreditsError) or any(
        status == AWAITING_CREDITS for status, _ in list(outcome.missing.values())
    ):
        return "no_credits"
    if reason.startswith("max_credits") or reason == "budget":
        return "max_credits"
    if reason.startswith("cancelled"):
        return "cancelled"
    if stop is not None or reason:
        return "stopped"
    if error is not None and not isinstance(error, CleanlistError):
        return "error"
    return "done"


def run_record(
    prep: Prepared,
    outcome: EngineOutcome | None,
    meter: SpendMeter,
    *,
    started_at: float,
    error: BaseException | None = None,
    ledger: SpendLedger | None = None,
    ended_at: float | None = None,
) -> RunRecord:
    """The ledger row of a run that is over (``outcome`` None: the engine never ran);
    ``ended_at`` (Unix time) defaults to now.

    The options the issue-12 selection adds are read defensively, so this works before and
    after they exist: ``pilot`` from ``getattr(prep.options, "pilot", False)`` and the rows
    excluded by ``where=``/``only_missing=`` from ``getattr(prep.plan, "n_excluded", 0)``.
    ``ledger`` answers which cache hits a pilot run paid for.
    """
    options, plan = prep.options, prep.plan
    etype = options.enrichment_type
    unit = float(MAX_UNIT_COST[etype])
    kind = "pilot" if options.pilot else "run"
    scope = prep.scope
    origin = scope.origin if scope is not None else None
    org = scope.organization_id if scope is not None else None
    # What earlier runs of this job recorded: a resumed job counts each saving once, and
    # the results its earlier runs paid for (cached by them) are no saving of this run.
    earlier: dict[str, float] = {}
    own: set[str] = set()
    if ledger is not None and prep.job_id:
        earlier, own = ledger.earlier_runs(prep.job_id, origin, org)
    hit_workflows = [getattr(v, "workflow_id", None) for v in plan.cached.values()]
    n_own = sum(1 for w in hit_workflows if w in own)
    # cache hits whose entry came from a workflow a pilot run paid for
    n_pilot = 0
    if plan.cached and ledger is not None:
        pilots = ledger.pilot_workflows(w for w in hit_workflows if w and w not in own)
        n_pilot = sum(1 for w in hit_workflows if w in pilots and w not in own)
    workflows: dict[str, tuple[int, float]] = {
        wf: (n, 0.0) for wf, n in dict(meter.workflows).items()
    }
    credits, paid = 0.0, 0
    if outcome is not None:
        for fp, (result, wf) in list(outcome.results.items()):
            if fp in outcome.prepaid:
                continue  # an earlier run collected (and paid) it
            charged = float(result.get("credits_charged") or 0)
            if charged > 0:
                paid += 1
                credits += charged
            n, c = workflows.get(wf, (0, 0.0))
            workflows[wf] = (n, c + charged)
        for wf in outcome.workflow_ids:
            workflows.setdefault(wf, (0, 0.0))
    return RunRecord(
        job_id=prep.job_id,
        enrichment_type=etype,
        kind=kind,
        started_at=started_at,
        ended_at=time.time() if ended_at is None else ended_at,
        ended=ended_as(outcome, error),
        rows=plan.n_rows,
        sent=meter.sent,
        paid=paid,
        credits=float(credits),
        unit_cost=unit,
        **_once(
            earlier,
            saved_duplicates=plan.n_duplicates * unit,
            saved_cache=(plan.n_cached - n_pilot - n_own) * unit,
            saved_pilot=n_pilot * unit,
            # the unique contacts where=/only_missing= left out that the run would have sent
            saved_excluded=float(plan.credits_saved),
            saved_invalid=plan.n_invalid * unit,
        ),
        workflows=workflows,
        origin=origin,
        organization_id=org,
    )


def _once(earlier: Mapping[str, float], **saved: float) -> dict[str, float]:
    """A run's savings by cause, less what earlier runs of its job already counted: over a
    job's runs each saving is counted once (a resumed job sees the same duplicates, the
    same invalid rows and the same cache hits again).

    >>> _once({"saved_cache": 5.0}, saved_cache=7.0, saved_duplicates=2.0)
    {'saved_cache': 2.0, 'saved_duplicates': 2.0}
    """
    return {c: max(0.0, float(v) - earlier.get(c, 0.0)) for c, v in saved.items()}


def record_run(
    prep: Prepared,
    outcome: EngineOutcome | None,
    meter: SpendMeter,
    *,
    started_at: float,
    error: BaseException | None = None,
    ended_at: float | None = None,
) -> RunRecord | None:
    """Append the run's row to the ledger in the run's cache directory; return it. Never
    raises: a ledger that cannot be written is logged, and the run's results are kept."""
    try:
        with SpendLedger(prep.cache_dir) as ledger:
            record = run_record(
                prep,
                outcome,
                meter,
                started_at=started_at,
                error=error,
                ledger=ledger,
                ended_at=ended_at,
            )
            ledger.append(record)
        return record
    except Exception as exc:  # the ledger is bookkeeping: never lose a run's results over it
        log.warning(
            "the spend ledger was not written for job %s: %s: %s",
            prep.job_id,
            type(exc).__name__,
            exc,
        )
        return None
