"""One enrichment run from a DataFrame, start to end, and its handle.

:func:`enrich` is what ``df.cleanlist.enrich()`` calls. It checks everything local before
paying (options, output names, configuration), maps and plans (:mod:`.prepare`), attaches to
the same run if it is already going on in this process, opens or resumes the journal's job,
runs the async :class:`~cleanlist_pandas.run.engine.Engine` on the client's loop thread,
then merges and reports (:mod:`.report`). :class:`EnrichmentJob` is the handle of a run
started with ``wait=False``.

The run's state lives in a :class:`~cleanlist_pandas.run.state.RunState` fed by the
engine's and the client's events; views (a progress bar, given by the caller as a factory)
and the job handle only read it. This module imports no UI.

The values of ``cl_status`` (and ``cl_email_status``), what each means and what to do: the
table in README.md, "Status columns" (:data:`~cleanlist_pandas.frame.merge.ROW_STATUSES`
is the list; a test keeps the two in step).

:func:`last_result` is the frame of the run that ended last in this process: finished,
interrupted (the rows so far) or stopped by ``errors="raise"``, so a notebook user reaches
an interrupted run's rows without the exception object.

>>> import pandas as pd, cleanlist_pandas                    # doctest: +SKIP
>>> out = pd.DataFrame({"LinkedIn": ["linkedin.com/in/ada"]}).cleanlist.enrich()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import html
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from cleanlist_pandas._constants import DEFAULT_RATE_LIMIT_PATIENCE
from cleanlist_pandas._perf import freeze_heap, thaw_heap
from cleanlist_pandas.errors import EnrichmentInterrupted
from cleanlist_pandas.events import Event, JobFinished, Listener, RunStopped, View, emit
from cleanlist_pandas.frame.merge import check_output_names
from cleanlist_pandas.run.engine import Engine, EngineOutcome
from cleanlist_pandas.run.options import (
    Options,
    call_text,
    check_options,
)
from cleanlist_pandas.run.prepare import (
    LATER,
    Prepared,
    for_server,
    sync_client_for,
)
from cleanlist_pandas.run.report import (
    abalance_or_none,
    balance_or_none,
    check_balance,
    counts_text,
    finalize,
    report,
)
from cleanlist_pandas.run.spend import SpendMeter, record_run
from cleanlist_pandas.run.state import INTERRUPTED, RunSnapshot, RunState
from cleanlist_pandas.run.summary import RunSummary
from cleanlist_pandas.store.files import defer
from cleanlist_pandas.store.provenance import ascope_of, scope_of

log = logging.getLogger(__name__)

#: Makes the view of a run (e.g. a progress bar) from its state; the bool says whether the
#: view may draw when an event arrives (False: only when the waiting thread refreshes it).
ViewFactory = Callable[[RunState, bool], View]

#: How often a displayed job handle redraws itself from the run's state (seconds).
FOLLOW_INTERVAL_S = 0.5

_running: set[EnrichmentJob] = set()
_running_lock = threading.Lock()

# the frame of the run that ended last (one frame: each run's end replaces it)
_last_result: Any = None
_last_lock = threading.Lock()


def last_result(*, clear: bool = False) -> Any:
    """The frame of the ``enrich()`` run that ended last in this process, or None.

    Whatever the run's end: finished (the frame it returned), interrupted by Ctrl-C /
    Kernel → Interrupt (the rows so far: done rows enriched, the rest ``pending`` or
    ``not_submitted``, as ``EnrichmentInterrupted.partial_result``), or stopped by an error
    with ``errors="raise"`` (its ``partial_result``). A run on a Polars frame gives a Polars
    frame, as the call would have; a pilot gives its enriched sample; a ``wait=False`` job
    ends when its ``result()`` merges it. Only the last frame is kept (each run's end
    replaces it); ``clear=True`` returns it and lets it go. To get an older run's rows,
    run its call again: the cache and the journal serve them for free.

    >>> import cleanlist_pandas as clp
    >>> out = clp.last_result()        # after Kernel → Interrupt   # doctest: +SKIP
    >>> out["cl_status"].value_counts()                              # doctest: +SKIP
    """
    global _last_result
    with _last_lock:
        frame = _last_result
        if clear:
            _last_result = None
    return frame


def remember_result(frame: Any) -> None:
    """Make ``frame`` the :func:`last_result` (the end of a run)."""
    global _last_result
    with _last_lock:
        _last_result = frame


def replace_last_result(old: Any, new: Any) -> None:
    """Put ``new`` in place of ``old`` if ``old`` is still the :func:`last_result`: the
    Polars namespace hands back its own frame for the pandas frame the run made.

    >>> remember_result(a := object()); replace_last_result(a, "b"); last_result(clear=True)
    'b'
    """
    global _last_result
    with _last_lock:
        if _last_result is old:
            _last_result = new


_runs_ended = 0


def runs_ended() -> int:
    """How many runs of this process have ended, blocking or not (the panel reads the
    balance again when it changes).

    >>> isinstance(runs_ended(), int)
    True
    """
    return _runs_ended


def running_jobs() -> list[EnrichmentJob]:
    """Jobs of this process that are still running (for the panel).

    >>> running_jobs()
    []
    """
    with _running_lock:
        return sorted(_running, key=lambda j: j.job_id)


def _running_with_key(key: str) -> EnrichmentJob | None:
    with _running_lock:
        return next((j for j in _running if j.key == key), None)


class _Run:
    """One run's wiring: the prepared plan, the run's state and views, and the listeners on
    the client's events. :meth:`close` releases all of it, once, after writing the run's row
    of the spend ledger (:meth:`record_spend`: on every exit path, Ctrl-C included)."""

    def __init__(
        self,
        prep: Prepared,
        aclient: Any,
        view: ViewFactory | None,
        *,
        draw_on_event: bool,
        listeners: Sequence[Listener],
    ) -> None:
        self.prep = prep
        self.aclient = aclient
        self.state = RunState()
        self.views: list[View] = [view(self.state, draw_on_event)] if view else []
        #: what the run puts on the wire, for the spend ledger
        self.meter = SpendMeter()
        # the state first, so every view draws what the state already knows
        self.listeners: list[Listener] = [self.state, *self.views, self.meter, *listeners]
        for listener in self.listeners:
            aclient.add_listener(listener)
        self._detached = False
        self._closed = False
        self._engine: Engine | None = None
        self._engine_ran = False
        self._started_at = time.time()
        # an exception the caller was already handling when the run began is not the run's
        self._outer_error = sys.exc_info()[1]
        self._spend_lock = threading.Lock()
        self._spend_recorded = False
        self._froze = False  # freeze_heap(): thawed by _release

    def emit(self, event: Event) -> None:
        emit(self.listeners, event)

    def freeze_heap(self) -> None:
        """Keep the heap as it is now out of the collector's scans until the run is
        released (:func:`cleanlist_pandas._perf.freeze_heap`). Only while the caller's
        thread waits for the run: a ``wait=False`` job leaves the session's heap alone
        while the user works on."""
        if not self._froze:
            self._froze = freeze_heap()

    def refresh(self) -> None:
        """Redraw the views (from the thread that waits for the run)."""
        for v in self.views:
            v.refresh()

    def interrupted(self, not_submitted: int) -> None:
        """Tell the state and the views the run was interrupted, and draw them once more
        (a bar's last text says "stopped: interrupted", not "1 workflow running")."""
        emit([self.state, *self.views], RunStopped(INTERRUPTED, not_submitted))
        self.refresh()

    def detach(self) -> None:
        """Stop listening to the client (idempotent)."""
        if not self._detached:
            self._detached = True
            for listener in self.listeners:
                self.aclient.remove_listener(listener)

    def record_spend(self, error: BaseException | None = None) -> None:
        """Append this run's row to the spend ledger, once (the first call wins): what it
        sent, paid and saved, and how it ended (``error``: the exception it ends with)."""
        with self._spend_lock:
            if self._spend_recorded:
                return
            self._spend_recorded = True
        engine = self._engine if self._engine_ran else None
        outcome = engine.outcome if engine is not None else None
        # written by the finisher thread (the caller does not wait on the disk); whatever
        # opens the ledger next in this process waits for it
        defer(
            functools.partial(
                record_run,
                self.prep,
                outcome,
                self.meter,
                started_at=self._started_at,
                error=error,
                ended_at=time.time(),
            )
        )

    def close(self) -> None:
        """Record the run's spend, detach, close the views and the prepared run
        (idempotent). Called on every exit path, inside the handler of the exception the run
        ends with, if any: that is how the ledger tells an interrupted run from a done one."""
        error = sys.exc_info()[1]
        try:
            self.record_spend(None if error is self._outer_error else error)
        finally:  # a second Ctrl-C while recording still releases the job
            self._release()

    def _release(self) -> None:
        self.detach()
        if not self._closed:
            self._closed = True
            for v in self.views:
                v.close()
            self.prep.close()
            thaw_heap(self._froze)
            self._froze = False
            global _runs_ended
            with _running_lock:
                _runs_ended += 1

    def engine(self) -> Engine:
        """The run's engine (made once)."""
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine

    def run_engine(self) -> Any:
        """The coroutine that runs the engine on the prepared plan."""
        self._engine_ran = True
        return self.engine().run(self.prep.to_send, resume_chunks=self.prep.resume_chunks)

    def _make_engine(self) -> Engine:
        o = self.prep.options
        assert self.prep.journal is not None
        return Engine(
            client=self.aclient,
            journal=self.prep.journal,
            job_id=self.prep.job_id,
            enrichment_type=o.enrichment_type,
            webhook_url=o.webhook_url,
            max_credits=o.max_credits,
            poll=o.poll,
            listeners=self.listeners,
            on_results=self.prep.on_results,
            rate_limit_patience=getattr(
                getattr(self.aclient, "settings", None),
                "rate_limit_patience",
                DEFAULT_RATE_LIMIT_PATIENCE,
            ),
        )

    def finish(
        self, df: pd.DataFrame, outcome: EngineOutcome
    ) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, int]]:
        """Merge, say the run is over, and warn or raise per ``errors=``.

        The cache's last write is left to the finisher thread (``Prepared.close``): started
        here, it ran beside the merge and took the interpreter lock from it (the merge of
        5,000 rows took 20-40 ms instead of 10-20)."""
        frame, prospects, counts = finalize(df, self.prep, outcome)
        # the run's frame, before report() may raise with it (errors="raise")
        remember_result(frame)
        self.emit(
            JobFinished(
                self.prep.job_id,
                counts,
                outcome.credits,
                pilot=self.prep.options.pilot,
                workflow_ids=tuple(outcome.workflow_ids),
            )
        )
        report(self.prep, outcome, frame, counts)
        return frame, prospects, counts


class EnrichmentJob:
    """The handle of a run started with ``wait=False``; the work goes on in the background.

    ``progress`` (a :class:`~cleanlist_pandas.run.state.RunSnapshot` as a dict),
    ``state()`` (the snapshot itself), ``done()``, ``result(timeout=None)`` (blocks, returns
    the frame), ``cancel()`` (stop submitting; what is in flight is still collected and paid
    results are kept), ``prospects`` (``prospecting_only``: the long frame of discovered
    contacts), ``job_id`` (resume with ``df.cleanlist.resume(job_id)``).

    >>> job = df.cleanlist.enrich(wait=False)     # doctest: +SKIP
    >>> job.progress                              # doctest: +SKIP
    {'done': 250, 'total': 1000, 'found': 201, 'credits': 201.0, 'in_flight': 3, ...}
    >>> out = job.result()                        # doctest: +SKIP
    """

    def __init__(
        self,
        df: pd.DataFrame,
        run: _Run,
        engine: Engine,
        future: concurrent.futures.Future[EngineOutcome],
        loop: asyncio.AbstractEventLoop,
        release_client: Callable[[], None],
        job_view: Callable[[EnrichmentJob], None] | None = None,
    ) -> None:
        self.job_id = run.prep.job_id
        self.key = run.prep.key
        self.enrichment_type = run.prep.options.enrichment_type
        self._df: pd.DataFrame | None = df
        self._run = run
        self._engine = engine
        self._future = future
        self._loop = loop
        self._release_client = release_client
        self._job_view = job_view
        self._lock = threading.Lock()
        self._frame: pd.DataFrame | None = None
        self._error: BaseException | None = None
        self.prospects: pd.DataFrame | None = None
        self.counts: dict[str, int] = {}
        with _running_lock:
            _running.add(self)
        future.add_done_callback(lambda _f: self._forget())
        # the spend is recorded when the work ends, even if result() is never called
        future.add_done_callback(lambda f: run.record_spend(_future_error(f)))

    def _forget(self) -> None:
        with _running_lock:
            _running.discard(self)

    def state(self) -> RunSnapshot:
        """The run's state now (readable from any thread, with or without a progress bar)."""
        return self._run.state.snapshot()

    def summary(self) -> pd.DataFrame:
        """Rows by status and their share (so far, or final once the run is over); the
        credits, the worst case, the time and the job id are in ``.attrs``.

        >>> job.summary()                            # doctest: +SKIP
        """
        return RunSummary.from_snapshot(self.state()).to_frame()

    @property
    def progress(self) -> dict[str, Any]:
        """Counters so far: contacts done/total, found, credits, workflows in flight."""
        s = self.state()
        return {
            "done": s.done,
            "total": s.total,
            "found": s.found,
            "credits": s.credits,
            "in_flight": s.in_flight,
            "note": s.note,
            "finished": self._future.done(),
        }

    def progress_text(self) -> str:
        """One line for the panel and the repr: the same numbers and phase as the bar.

        >>> job.progress_text()                      # doctest: +SKIP
        'running: 120/250 contacts, 98 found, 130 credits (1 workflow running, ~4s left)'
        """
        s = self.state()
        state, note = "running", s.note or s.phase()
        if self._future.done():
            state = "finished" if s.finished else "done (call .result())"
            note = s.note
        return (
            f"{state}: {s.rows_done:,}/{s.rows_total:,} contacts, {s.found:,} found, "
            f"{s.credits:,.0f} credits" + (f" ({note})" if note else "")
        )

    def done(self) -> bool:
        """True when nothing more will happen in the background."""
        return self._future.done()

    def cancel(self) -> None:
        """Stop submitting; in-flight workflows are still collected (paid results kept)."""
        self._loop.call_soon_threadsafe(self._engine.stop, "cancelled by the user")

    def result(self, timeout: float | None = None) -> pd.DataFrame:
        """Wait for the end and return the enriched frame (raises/warns per ``errors=``)."""
        with self._lock:
            if self._frame is not None:
                return self._frame
            if self._error is not None:
                raise self._error
            try:
                outcome = self._future.result(timeout)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(
                    f"job {self.job_id} still running after {timeout} s: {self.progress_text()}"
                ) from None
            finally:
                if self._future.done():
                    self._run.detach()
                    self._release_client()
            assert self._df is not None
            try:
                frame, self.prospects, self.counts = self._run.finish(self._df, outcome)
                self._frame = frame
                self._df = None  # do not keep the caller's frame alive
            except BaseException as exc:
                self._error = exc
                raise
            finally:
                self._run.close()
            return frame

    def is_running_on(self, df: pd.DataFrame) -> bool:
        """Whether this job was started on ``df`` itself (not a copy) and has not merged yet."""
        return self._df is df

    def merge_onto(self, df: pd.DataFrame, prep: Prepared) -> pd.DataFrame:
        """Wait for the end, then merge this job's results onto ``df``: another frame with
        the same contacts (``prep`` is its plan), e.g. the same rows in another order. The
        job's own frame is merged first (it warns or raises per ``errors=``).

        >>> frame = job.merge_onto(rows, Prepared(rows, options))   # doctest: +SKIP
        """
        self.result()
        outcome = self._future.result()
        prep.adopt(outcome.results)
        frame, _prospects, _counts = finalize(df, prep, outcome)
        remember_result(frame)  # what the attached call returns
        return frame

    def __repr__(self) -> str:
        return f"<EnrichmentJob {self.job_id} {self.enrichment_type}: {self.progress_text()}>"

    def _repr_mimebundle_(self, **_kw: Any) -> dict[str, str]:
        if self.state().finished:  # the final numbers, readable with no kernel
            summary = RunSummary.from_snapshot(self.state())
            return {"text/plain": repr(summary), "text/html": summary._repr_html_()}
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    @property
    def _ipython_display_(self) -> Callable[[], None]:
        # Shown in a notebook through the view the caller gave (the accessor's: a display
        # that updates itself in place); without one IPython falls back to the reprs.
        job_view = self._job_view
        if job_view is None:
            raise AttributeError("_ipython_display_")
        return lambda: job_view(self)

    def follow(self, handle: Any) -> None:
        """Keep a display ``handle`` (anything with ``update(bundle, raw=True)``) up to date
        from the run's state while the job runs (no API call), then show the final numbers.
        Blocks: run it on a thread.

        >>> threading.Thread(target=job.follow, args=(h,), daemon=True).start()  # doctest: +SKIP
        """
        while not self._future.done():
            time.sleep(FOLLOW_INTERVAL_S)
            handle.update(self._repr_mimebundle_(), raw=True)
        # the engine is done: the counts by status come when result() merges; until then
        # the last counters stay, marked finished
        deadline = time.monotonic() + 30
        while not self.state().finished and time.monotonic() < deadline:
            time.sleep(FOLLOW_INTERVAL_S)
            if self._error is not None:
                break
        handle.update(self._repr_mimebundle_(), raw=True)

    def _repr_html_(self) -> str:
        if self.state().finished:
            return RunSummary.from_snapshot(self.state())._repr_html_()
        p = self.progress
        pct = 100.0 * p["done"] / p["total"] if p["total"] else 100.0
        return (
            f"<div><strong>Cleanlist job</strong> <code>{html.escape(self.job_id)}</code> "
            f"({html.escape(self.enrichment_type)})<br>"
            f"<progress value='{pct:.0f}' max='100'></progress> "
            f"{html.escape(self.progress_text())}</div>"
        )


def _future_error(future: concurrent.futures.Future[Any]) -> BaseException | None:
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception()


def enrich(
    df: pd.DataFrame,
    options: Options,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: Any = None,
    wait: bool = True,
    listeners: Sequence[Listener] = (),
    prospects_out: list[pd.DataFrame | None] | None = None,
    view: ViewFactory | None = None,
    job_view: Callable[[EnrichmentJob], None] | None = None,
) -> pd.DataFrame | EnrichmentJob:
    """Run a whole enrichment from synchronous code (script, IPython, Jupyter).

    See :meth:`cleanlist_pandas.accessor.CleanlistAccessor.enrich` for the parameters.
    ``listeners`` receive every event of the run; ``view`` makes the run's view (e.g.
    :func:`cleanlist_pandas.views.progress.progress_view`) when ``options.progress``; ``job_view``
    shows a ``wait=False`` job in a notebook (:func:`cleanlist_pandas.views.progress.show_job`);
    ``prospects_out``, if given, receives the long frame of discovered contacts.

    >>> out = enrich(df, Options("partial"), client=client)   # doctest: +SKIP
    """
    from cleanlist_pandas.client.runner import get_loop_thread, run_sync

    # Check before paying: options, output names and configuration (key, base URL) fail
    # here, before any journal row or job lock exists.
    check_options(options)
    check_output_names(df, options.enrichment_type, options.prefix)
    sync_client, owned = sync_client_for(api_key, base_url, client)

    def release_client() -> None:
        if owned:
            sync_client.close()

    try:
        options, cache_dir = for_server(options, sync_client.sandbox_info())
        prep = Prepared(
            df, options, cache_dir=cache_dir, scope=lambda d: scope_of(sync_client, d)
        )
        running = _running_with_key(prep.key)
        if running is not None:
            # The same call is still running in the background (a re-run cell): attach to
            # it rather than submit the same contacts a second time.
            log.info("attaching to the running job %s", running.job_id)
            if not wait or running.is_running_on(df):
                prep.close()
                release_client()
                return running.result() if wait else running
            # the same contacts in another frame (rows reordered, other columns): its own
            # merge of the running job's results, so this frame's rows and columns come back
            try:
                return running.merge_onto(df, prep)
            finally:
                prep.close()
                release_client()
        prep.open_job(create=True)
    except BaseException:
        release_client()
        raise
    # wait=True: the caller's thread draws the view (run_sync's tick), never the loop thread
    run = _Run(
        prep,
        sync_client.aio,
        view if options.progress else None,
        draw_on_event=not wait,
        listeners=listeners,
    )
    # The balance pre-check: with errors="raise" it may stop the run, so it comes first;
    # otherwise it can only warn, and is read while the first chunks go out (one round
    # trip less before the first submission), its warning given within a tick.
    balance: concurrent.futures.Future[float | None] | None = None
    try:
        run.emit(prep.planned_event())
        engine = run.engine()
        if prep.to_send and (not wait or options.errors == "raise"):
            check_balance(prep, balance_or_none(sync_client.balance))
        elif prep.to_send:
            balance = asyncio.run_coroutine_threadsafe(
                abalance_or_none(sync_client.aio.balance), get_loop_thread().loop
            )
    except BaseException:
        run.close()
        release_client()
        raise

    def coro() -> Any:
        return run.run_engine()

    if not wait:
        lt = get_loop_thread()
        future = asyncio.run_coroutine_threadsafe(coro(), lt.loop)
        return EnrichmentJob(df, run, engine, future, lt.loop, release_client, job_view)

    def tick() -> None:
        nonlocal balance
        if balance is not None and balance.done():
            read, balance = balance, None
            check_balance(prep, read.result())
        # flatten what arrived (woken by each arrival, see below) here, so the loop is free
        # for the reads that are due
        prep.flat.flush()
        run.refresh()

    # results are flattened by this thread as soon as they arrive, not at the next tick: so
    # when the last workflow comes in, only its own results are left to flatten (the rest
    # of a tick's worth took 8-40 ms at 5,000 rows)
    wake = threading.Event()
    prep.flat.on_add = wake.set
    run.freeze_heap()
    try:
        outcome = run_sync(coro, tick=tick, wake=wake)
        if balance is not None:
            check_balance(prep, balance.result())
    except KeyboardInterrupt:
        run.detach()
        release_client()
        note = (
            "submitted, but the run was interrupted before the result came back; run the "
            "same call again to collect it (no new charge)"
        )
        try:
            frame, _, counts = finalize(df, prep, engine.outcome, in_flight_note=note)
            remember_result(frame)
            run.interrupted(counts.get("not_submitted", 0))
        finally:
            run.close()
        raise EnrichmentInterrupted(
            f"Interrupted. Cleanlist job {prep.job_id}: {counts_text(counts)}. The rows so "
            "far: clp.last_result() (or this exception's .partial_result). Every submitted "
            "workflow is journaled: run the same call again to resume without paying twice.",
            partial_result=frame,
            job_id=prep.job_id,
            counts=counts,
            call=call_text(options),
        ) from None
    except BaseException:
        run.close()
        release_client()
        raise
    run.detach()
    release_client()
    if prep.cache is not None:
        prep.cache.hold_writes()  # the rest is written after the merge, by the finisher
    try:
        frame, prospects, _counts = run.finish(df, outcome)
        if prospects_out is not None:
            prospects_out.append(prospects)
    finally:
        run.close()
    return frame


async def aenrich(
    df: pd.DataFrame,
    options: Options,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: Any = None,
    listeners: Sequence[Listener] = (),
    view: ViewFactory | None = None,
) -> pd.DataFrame:
    """The async twin of :func:`enrich`, for code already running in an event loop.

    >>> out = await aenrich(df, Options("partial"))   # doctest: +SKIP
    """
    from cleanlist_pandas.client import AsyncClient

    check_options(options)
    check_output_names(df, options.enrichment_type, options.prefix)
    owned = client is None
    aclient = client if client is not None else AsyncClient(api_key=api_key, base_url=base_url)
    try:
        options, cache_dir = for_server(options, await aclient.sandbox_info())
        prep = Prepared(df, options, cache_dir=cache_dir, scope=LATER)
        # every local check has passed (in Prepared): now whose results may serve the run
        prep.bind(await ascope_of(aclient, prep.cache_dir) if prep.sendable else None)
        running = _running_with_key(prep.key)
        if running is not None:
            try:
                if running.is_running_on(df):
                    return await asyncio.to_thread(running.result)
                return await asyncio.to_thread(running.merge_onto, df, prep)
            finally:
                prep.close()
                if owned:
                    await aclient.aclose()
        prep.open_job(create=True)
    except BaseException:
        if owned:
            await aclient.aclose()
        raise
    run = _Run(
        prep,
        aclient,
        view if options.progress else None,
        draw_on_event=True,
        listeners=listeners,
    )
    try:
        run.emit(prep.planned_event())
        if prep.to_send:
            check_balance(prep, await abalance_or_none(aclient.balance))
        outcome = await run.run_engine()
        run.detach()
        frame, _p, _counts = run.finish(df, outcome)
        return frame
    finally:
        run.close()
        if owned:
            await aclient.aclose()


__all__ = [
    "EnrichmentJob",
    "ViewFactory",
    "aenrich",
    "enrich",
    "last_result",
    "remember_result",
    "replace_last_result",
    "running_jobs",
    "runs_ended",
]
