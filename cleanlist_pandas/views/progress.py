"""The progress bar of an enrichment run: a ``tqdm.auto`` bar that draws the run's state.

In Jupyter it is a widget, in a terminal a text bar (``tqdm.auto`` decides). It shows the
contacts done of the total, emails found, credits spent, workflows in flight and the ETA,
and says so while the run waits on the rate limit, so a notebook never looks stuck. It keeps
no counters: it draws :class:`~cleanlist_pandas.run.state.RunState` snapshots, when an
event arrives (``draw_on_event``) or when the waiting thread calls :meth:`refresh`.

>>> from cleanlist_pandas.run.state import RunState
>>> from cleanlist_pandas.events import ChunkSubmitted, ContactsDone, JobPlanned
>>> state = RunState()
>>> bar = ProgressBar(state, disable=True)
>>> for ev in (JobPlanned("job_1", rows=3, unique=3, cached=0, to_send=3, chunks=1,
...                       worst_case_credits=3.0),
...            ChunkSubmitted(number=0, workflow_id="wf", contacts=3),
...            ContactsDone(done=2, total=3, found=1, credits=1.0, in_flight=1)):
...     state(ev); bar(ev)
>>> bar.postfix()
'1 workflow running, found 1, credits 1'
>>> bar.close()
"""

from __future__ import annotations

import threading
from typing import Any

from cleanlist_pandas.events import Event, JobFinished
from cleanlist_pandas.run.job import EnrichmentJob
from cleanlist_pandas.run.state import RunSnapshot, RunState
from cleanlist_pandas.run.summary import RunSummary
from cleanlist_pandas.views.bars import close_bar, open_bar

__all__ = ["ProgressBar", "progress_view", "show_job"]


class ProgressBar:
    """A view of one run's :class:`RunState` as a ``tqdm.auto`` bar.

    ``disable=True`` draws nothing. Subscribe it after the state, so it draws what the state
    already knows.

    >>> bar = ProgressBar(RunState(), disable=True); bar.close(); bar.closed
    True
    """

    def __init__(
        self,
        state: RunState,
        *,
        disable: bool = False,
        desc: str = "Enriching",
        draw_on_event: bool = True,
        **tqdm_kwargs: Any,
    ):
        self.state = state
        self._lock = threading.Lock()
        self._disable = disable
        # False: events do not draw; refresh() does, from the thread that calls it (the
        # caller's thread in a notebook cell, so widget updates stay there).
        self._draw_on_event = draw_on_event
        self._desc = desc
        self._tqdm_kwargs = tqdm_kwargs
        self._bar: Any = None
        self._last_postfix = ""
        self._notebook = False
        self._handle: Any = None
        self.closed = False

    def _ensure_bar(self, total: int, initial: int = 0) -> Any:
        if self._bar is None and not self._disable and not self.closed:
            # rows served from the cache start the bar: they count as done, but not in the
            # rate (tqdm leaves ``initial`` out of it), so no "388740 contact/s" at once
            self._bar, self._handle = open_bar(
                total=total,
                initial=initial,
                desc=self._desc,
                unit="contact",
                dynamic_ncols=True,
                leave=True,
                **self._tqdm_kwargs,
            )
            # a notebook: the bar's widget is replaced by its final text when the run ends,
            # and the run also leaves a static summary (rows by status, credits, time, id)
            self._notebook = self._handle is not None
        return self._bar

    def postfix(self, snap: RunSnapshot | None = None) -> str:
        """The words after the bar: the phase, found, credits, cache hits, the latest note.

        >>> from cleanlist_pandas.events import JobFinished, JobPlanned
        >>> st = RunState(); bar = ProgressBar(st, disable=True)
        >>> st(JobPlanned("j", rows=3, unique=3, cached=3, to_send=0, chunks=0,
        ...               worst_case_credits=0.0))
        >>> st(JobFinished("j", counts={"enriched": 3}, credits=0.0)); bar.postfix()
        'found 0, credits 0, 3 from cache, no request sent: the key was not checked'
        """
        s = snap or self.state.snapshot()
        parts = [s.phase()] if not s.finished else []
        parts += [f"found {s.found:,}", f"credits {s.credits:,.0f}"]
        if s.cached:
            parts.append(f"{s.cached:,} from cache")
        if s.note:
            parts.append(s.note)
        if s.finished and s.requests == 0:
            parts.append("no request sent: the key was not checked")
        return ", ".join(p for p in parts if p)

    def __call__(self, event: Event) -> None:
        if self._draw_on_event or isinstance(event, JobFinished):
            with self._lock:
                self._draw_locked(self.state.snapshot())

    def refresh(self) -> None:
        """Draw the current state (called about every 0.1 s by the waiting thread)."""
        with self._lock:
            self._draw_locked(self.state.snapshot())

    def _draw_locked(self, s: RunSnapshot) -> None:
        # cached rows count as done; tasks the status summaries report finished move the
        # bar before their whole workflow ends
        total = s.rows_total
        bar = self._ensure_bar(total, s.cached)
        if bar is not None:
            if bar.total != total:
                bar.total = total
            done = s.rows_done
            if done > bar.n:
                bar.update(done - bar.n)
            postfix = self.postfix(s)
            if postfix != self._last_postfix:
                self._last_postfix = postfix
                bar.set_postfix_str(postfix, refresh=True)
            else:
                bar.refresh()  # the elapsed clock ticks even when nothing else moved
        if s.finished:
            self._close_locked(failed=bool(s.stopped))
            if self._notebook:
                self._notebook = False
                _display_static(RunSummary.from_snapshot(s))

    def _close_locked(self, failed: bool = False) -> None:
        self.closed = True
        if self._bar is not None:
            close_bar(self._bar, self._handle, failed)
            self._bar = self._handle = None

    def close(self) -> None:
        """Close the bar (idempotent)."""
        with self._lock:
            self._close_locked(failed=bool(self.state.snapshot().stopped))


def _display_widget(widget: Any) -> Any:
    """Display a widget with a display id; the handle, or None outside IPython."""
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - notebook bars imply IPython
        return None
    return display(widget, display_id=True)


def _display_static(summary: RunSummary) -> None:
    """Show the final numbers as static text/html + text/plain output (no widget)."""
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - notebook bars imply IPython
        return
    display(summary)


def show_job(job: EnrichmentJob) -> None:
    """Show a ``wait=False`` job in a notebook as a display that updates itself in place
    (from the run's state, no API call) and ends on the final numbers.

    >>> show_job(df.cleanlist.enrich(wait=False))     # doctest: +SKIP
    """
    from IPython.display import display

    handle = display(job._repr_mimebundle_(), raw=True, display_id=True)
    if handle is not None and not job.done():
        threading.Thread(target=job.follow, args=(handle,), name="cleanlist-job",
                         daemon=True).start()


def progress_view(state: RunState, draw_on_event: bool) -> ProgressBar:
    """The view ``df.cleanlist.enrich(progress=True)`` attaches to a run.

    >>> progress_view(RunState(), True).closed
    False
    """
    return ProgressBar(state, draw_on_event=draw_on_event)
