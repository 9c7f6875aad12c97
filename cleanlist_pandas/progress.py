"""The progress bar of an enrichment job: a tqdm.auto bar fed by the engine's events.

In Jupyter it is a widget, in a terminal a text bar (``tqdm.auto`` decides). It shows the
contacts done of the total, emails found, credits spent, workflows in flight and the ETA,
and says so while the job waits on the rate limit, so a notebook never looks stuck.

>>> from cleanlist_pandas.enrich.events import JobPlanned, ContactsDone
>>> bar = ProgressBar(disable=True)
>>> bar(JobPlanned("job_1", rows=3, unique=3, cached=0, to_send=3, chunks=1,
...                worst_case_credits=3.0))
>>> bar(ContactsDone(done=2, total=3, found=1, credits=1.0, in_flight=1))
>>> bar.done, bar.found
(2, 1)
>>> bar.close()
"""

from __future__ import annotations

import threading
from typing import Any

from cleanlist_pandas.enrich.events import (
    ChunkAmbiguous,
    ContactsDone,
    Event,
    JobFinished,
    JobPlanned,
    RunStopped,
    Waiting,
)


class ProgressBar:
    """A listener of engine events that draws one ``tqdm.auto`` bar.

    ``disable=True`` keeps the counters (for the job's ``progress``) but draws nothing.

    >>> bar = ProgressBar(disable=True)
    >>> bar(JobFinished("job_1", counts={"enriched": 2}, credits=2.0)); bar.finished
    True
    """

    def __init__(
        self,
        *,
        disable: bool = False,
        desc: str = "Enriching",
        draw_on_event: bool = True,
        **tqdm_kwargs: Any,
    ):
        self._lock = threading.Lock()
        self._disable = disable
        # False: events only update the counters and refresh() draws, from the thread that
        # calls it (the caller's thread in a notebook cell, so widget updates stay there).
        self._draw_on_event = draw_on_event
        self._desc = desc
        self._tqdm_kwargs = tqdm_kwargs
        self._bar: Any = None
        self.done = 0
        self.total = 0
        self.found = 0
        self.credits = 0.0
        self.in_flight = 0
        self.note = ""
        self.finished = False
        self.failed = False
        self._last_postfix = ""
        self._closed = False

    def _ensure_bar(self) -> Any:
        if self._bar is None and not self._disable and not self._closed:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total,
                desc=self._desc,
                unit="contact",
                dynamic_ncols=True,
                leave=True,
                **self._tqdm_kwargs,
            )
        return self._bar

    def _postfix(self) -> str:
        parts = [f"found {self.found:,}", f"credits {self.credits:,.0f}"]
        if self.in_flight:
            parts.append(f"{self.in_flight} workflow{'s' if self.in_flight != 1 else ''} running")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, JobPlanned):
                self.total = event.to_send
                if event.cached:
                    self.note = f"{event.cached:,} from cache"
            elif isinstance(event, ContactsDone):
                self.done, self.total = event.done, event.total
                self.found, self.credits = event.found, event.credits
                self.in_flight = event.in_flight
                self.note = ""
            elif isinstance(event, Waiting):
                self.note = f"waiting {event.seconds:.0f}s: {event.reason}"
            elif isinstance(event, ChunkAmbiguous):
                self.note = f"{event.contacts} contacts in an unknown state"
            elif isinstance(event, RunStopped):
                self.note = f"stopped: {event.reason}"
                self.failed = True
            elif isinstance(event, JobFinished):
                self.finished = True
            if self._draw_on_event or self.finished:
                self._draw_locked()

    def refresh(self) -> None:
        """Draw the current counters (called about every 0.1 s by the waiting thread)."""
        with self._lock:
            self._draw_locked()

    def _draw_locked(self) -> None:
        bar = self._ensure_bar()
        if bar is not None:
            if bar.total != self.total:
                bar.total = self.total
            if self.done > bar.n:
                bar.update(self.done - bar.n)
            postfix = self._postfix()
            if postfix != self._last_postfix:
                self._last_postfix = postfix
                bar.set_postfix_str(postfix, refresh=True)
        if self.finished:
            self._close_locked()

    def _close_locked(self) -> None:
        self._closed = True
        if self._bar is not None:
            if self.failed and hasattr(self._bar, "colour"):
                self._bar.colour = "red"
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        """Close the bar (idempotent); called in ``finally`` by the engine's driver."""
        with self._lock:
            self._close_locked()
