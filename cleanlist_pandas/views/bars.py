"""A ``tqdm.auto`` bar that a saved notebook can still show without its kernel.

In Jupyter, tqdm draws a widget, and a widget needs its kernel: a saved notebook reopened
with a new kernel shows "Error displaying widget: model not found" where the bar was, and
the widget's saved text is its *first* state ("0%"). :func:`open_bar` shows the notebook
widget through a display handle, and :func:`close_bar` replaces it with the final bar as
plain text and HTML, then closes the widget. In a terminal both are plain tqdm.

>>> bar, handle = open_bar(total=3, disable=True)
>>> close_bar(bar, handle)
"""

from __future__ import annotations

import html
import re
from typing import Any

from cleanlist_pandas.events import set_wait_view

__all__ = ["WaitBar", "close_bar", "open_bar"]

#: A terminal colour code: tqdm writes them into a coloured bar's text (a stopped run's red).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def open_bar(**tqdm_kwargs: Any) -> tuple[Any, Any]:
    """A ``tqdm.auto`` bar, and its display handle in a notebook (``None`` elsewhere).

    >>> bar, handle = open_bar(total=10, desc="Enriching", disable=True); handle is None
    True
    """
    from tqdm.auto import tqdm

    notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)
    if not notebook or tqdm_kwargs.get("disable"):
        return tqdm(**tqdm_kwargs), None
    bar = tqdm(display=False, **tqdm_kwargs)
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - tqdm.notebook implies IPython
        return bar, None
    return bar, display(bar.container, display_id=True)


def close_bar(bar: Any, handle: Any, failed: bool = False) -> None:
    """Close ``bar``; in a notebook, leave its final state as text and HTML (no widget).

    >>> bar, handle = open_bar(total=1, disable=True); close_bar(bar, handle, failed=True)
    """
    if failed and hasattr(bar, "colour"):
        bar.colour = "red"
    bar.close()
    if handle is not None:
        text = _ANSI.sub("", str(bar))  # an HTML <pre> would show "[31m" as it is
        handle.update(
            {"text/plain": text, "text/html": f"<pre style='margin:0'>{html.escape(text)}</pre>"},
            raw=True,
        )
        bar.container.close()


class WaitBar:
    """The tqdm bar of a ``wait(progress=True)``, created at the first status (when the
    total is known): the :class:`~cleanlist_pandas.events.WaitView` the client drives.

    >>> WaitBar("public_bulk_1").close()
    """

    def __init__(self, workflow_id: str) -> None:
        self._desc = workflow_id[:24]
        self._bar: Any = None
        self._handle: Any = None
        self._note = ""
        self._last: Any = None

    def update(self, wf: Any) -> None:
        self._last = wf
        done, total = wf.progress
        if self._bar is None:
            self._bar, self._handle = open_bar(
                total=total or None, desc=self._desc, unit="contact", leave=True
            )
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        status = wf.status if not self._note else f"{wf.status}, {self._note}"
        self._bar.set_postfix_str(status, refresh=False)
        self._bar.refresh()

    def note(self, text: str) -> None:
        """Show ``text`` next to the status (e.g. "waiting 2.0s on the rate limit")."""
        changed = text != self._note
        self._note = text
        if changed and text and self._last is not None:
            self.update(self._last)

    def close(self) -> None:
        if self._bar is not None:
            close_bar(self._bar, self._handle)
            self._bar = self._handle = None


# how the client's wait(progress=True) is shown (the client only calls events.wait_view)
set_wait_view(WaitBar)
