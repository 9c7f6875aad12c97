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

__all__ = ["close_bar", "open_bar"]

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
