"""The progress bar of an enrichment run: a ``tqdm.auto`` bar that draws the run's state.

In Jupyter it is a widget, in a terminal a text bar (``tqdm.auto`` decides). It shows the
contacts done of the total, emails found, credits spent, workflows in flight and the ETA,
and says so while the run waits on the rate limit, so a notebook never looks stuck. It keeps
no counters: it draws :class:`~cleanlist_pandas.enrich.state.RunState` snapshots, when an
event arrives (``draw_on_event``) or when the waiting thread calls :meth:`refresh`.

>>> from cleanlist_pandas.enrich.state import RunState
>>> from cleanlist_pandas.events import JobPlanned, ContactsDone
>>> state = RunState()
>>> bar = ProgressBar(state, disable=True)
>>> for ev in (JobPlanned("job_1", rows=3, unique=3, cached=0, to_send=3, chunks=1,
...                       worst_case_credits=3.0),
...            ContactsDone(done=2, total=3, found=1, credits=1.0, in_flight=1)):
...     state(ev); bar(ev)
>>> bar.postfix()
'found 1, credits 1, 1 workflow running'
>>> bar.close()
"""

from __future__ import annotations

import threading
from typing import Any

from cleanlist_pandas.enrich.state import RunSnapshot, RunState
from cleanlist_pandas.events import Event, JobFinished

__all__ = ["ProgressBar", "progress_view"]


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
        self.closed = False

    def _ensure_bar(self, total: int) -> Any:
        if self._bar is None and not self._disable and not self.closed:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                desc=self._desc,
                unit="contact",
                dynamic_ncols=True,
                leave=True,
                **self._tqdm_kwargs,
            )
        return self._bar

    def postfix(self, snap: RunSnapshot | None = None) -> str:
        """The words after the bar: found, credits, workflows running, the latest note."""
        s = snap or self.state.snapshot()
        parts = [f"found {s.found:,}", f"credits {s.credits:,.0f}"]
        if s.in_flight:
            parts.append(f"{s.in_flight} workflow{'s' if s.in_flight != 1 else ''} running")
        note = s.note or (f"{s.cached:,} from cache" if s.cached and not s.done else "")
        if note:
            parts.append(note)
        return ", ".join(parts)

    def __call__(self, event: Event) -> None:
        if self._draw_on_event or isinstance(event, JobFinished):
            with self._lock:
                self._draw_locked(self.state.snapshot())

    def refresh(self) -> None:
        """Draw the current state (called about every 0.1 s by the waiting thread)."""
        with self._lock:
            self._draw_locked(self.state.snapshot())

    def _draw_locked(self, s: RunSnapshot) -> None:
        bar = self._ensure_bar(s.total)
        if bar is not None:
            if bar.total != s.total:
                bar.total = s.total
            if s.done > bar.n:
                bar.update(s.done - bar.n)
            postfix = self.postfix(s)
            if postfix != self._last_postfix:
                self._last_postfix = postfix
                bar.set_postfix_str(postfix, refresh=True)
        if s.finished:
            self._close_locked(failed=bool(s.stopped))

    def _close_locked(self, failed: bool = False) -> None:
        self.closed = True
        if self._bar is not None:
            if failed and hasattr(self._bar, "colour"):
                self._bar.colour = "red"
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        """Close the bar (idempotent)."""
        with self._lock:
            self._close_locked(failed=bool(self.state.snapshot().stopped))


def progress_view(state: RunState, draw_on_event: bool) -> ProgressBar:
    """The view ``df.cleanlist.enrich(progress=True)`` attaches to a run.

    >>> progress_view(RunState(), True).closed
    False
    """
    return ProgressBar(state, draw_on_event=draw_on_event)
