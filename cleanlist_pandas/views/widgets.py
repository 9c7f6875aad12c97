"""The notebook panel: the key (masked), the credit balance and the running jobs.

``cleanlist_pandas.panel()`` returns a :class:`Panel`. In Jupyter it displays as HTML (and
text) through a display handle that it updates in place: the running jobs from their own
state, the balance after each job ends and on :meth:`Panel.refresh`. It is not a widget on
purpose: a widget needs its kernel, so a saved notebook reopened with a new kernel (or turned
into static HTML) would show "Error displaying widget: model not found" where the panel was;
plain HTML reads the same tomorrow, frozen at its last state with the time it was checked.
``panel(button=True)`` adds an ipywidgets Refresh button below it (needs the kernel; a
click is handled when the kernel is not busy running a cell).

Reprs never do I/O: ``refresh()`` is the one method that talks to the API (validate the key,
read the balance); the panel shows what the last refresh saw.

>>> p = Panel(client=None)
>>> "not checked" in repr(p)
True
"""

from __future__ import annotations

import threading
import time
import weakref
from datetime import datetime
from typing import Any

from cleanlist_pandas._display import html_table, text_table
from cleanlist_pandas.run.job import running_jobs, runs_ended


class Panel:
    """Key, balance and running jobs, as a widget (Jupyter) or HTML/text elsewhere.

    >>> from cleanlist_pandas import Sandbox, Client          # doctest: +SKIP
    >>> with Sandbox() as sb:                                 # doctest: +SKIP
    ...     p = Panel(Client(api_key=sb.api_key, base_url=sb.base_url)).refresh()
    ...     p.credits
    10000.0
    """

    def __init__(self, client: Any = None, *, button: bool = False) -> None:
        self._client = client
        self.button = button
        self._handles: list[Any] = []
        self._following = False
        self._lock = threading.Lock()
        self.key_masked: str | None = getattr(client, "api_key_masked", None)
        self.organization_id: str | None = None
        self.key_valid: bool | None = None
        self.credits: float | None = None
        self.error: str | None = None
        self.checked_at: datetime | None = None
        self._widget: Any = None

    def refresh(self) -> Panel:
        """Validate the key and read the balance (free calls), then redraw; returns self."""
        if self._client is None:
            from cleanlist_pandas.client import Client

            self._client = Client()
            self.key_masked = self._client.api_key_masked
        try:
            info = self._client.validate_key()
            bal = self._client.balance()
        except Exception as exc:  # shown in the panel, never raised from a display
            with self._lock:
                self.key_valid = False if type(exc).__name__ == "AuthenticationError" else None
                self.error = f"{type(exc).__name__}: {exc}"
        else:
            with self._lock:
                self.key_valid = bool(info.valid)
                self.organization_id = info.organization_id
                self.credits = float(bal.credits)
                self.error = None
        self.checked_at = datetime.now()
        self._redraw()
        return self

    # -- rendering (no I/O) ---------------------------------------------------------------
    def _jobs(self) -> list[Any]:
        return running_jobs()

    def _rows(self) -> list[tuple[str, str]]:
        key = self.key_masked or "(no key)"
        if self.key_valid is True:
            key += " ✓ valid"
        elif self.key_valid is False:
            key += " ✗ refused"
        elif self.error:
            key += f" (check failed: {self.error})"
        else:
            key += " (not checked — call .refresh())"
        rows = [("API key", key)]
        if self.organization_id:
            rows.append(("Organization", self.organization_id))
        rows.append(("Credits", "—" if self.credits is None else f"{self.credits:,.2f}"))
        if self.error:
            rows.append(("Last error", self.error))
        jobs = self._jobs()
        rows.append(("Running jobs", str(len(jobs)) if jobs else "none"))
        for job in jobs:
            rows.append((job.job_id, job.progress_text()))
        if self.checked_at:
            rows.append(("Balance checked", self.checked_at.strftime("%Y-%m-%d %H:%M:%S")))
        if jobs:  # a saved notebook shows when these counts were true
            rows.append(("As of", datetime.now().strftime("%Y-%m-%d %H:%M:%S")))
        return rows

    def __repr__(self) -> str:
        return text_table("Cleanlist", self._rows())

    def _repr_html_(self) -> str:
        return html_table("Cleanlist", self._rows())

    # -- display (live HTML) -----------------------------------------------------------
    def _bundle(self) -> dict[str, str]:
        return {"text/plain": repr(self), "text/html": self._repr_html_()}

    def follow(self, handle: Any) -> None:
        """Keep ``handle`` (a display handle: anything with ``update(bundle, raw=True)``)
        showing this panel: redrawn when jobs move and after every :meth:`refresh`.

        >>> from IPython.display import display                 # doctest: +SKIP
        >>> p.follow(display(p._bundle(), raw=True, display_id=True))  # doctest: +SKIP
        """
        with self._lock:
            self._handles.append(handle)
            start = not self._following
            self._following = True
        if start:
            _follow(self)

    def widget(self) -> Any:
        """An ipywidgets Refresh button for this panel (built once); ``None`` without
        ipywidgets. The panel itself is HTML (see the module's docs)."""
        if self._widget is None:
            try:
                import ipywidgets as w
            except ImportError:
                return None
            button = w.Button(description="Refresh", icon="refresh", layout={"width": "8em"})
            button.on_click(lambda _b: self.refresh())
            self._widget = button
        return self._widget

    def _redraw(self) -> None:
        bundle = self._bundle()
        with self._lock:
            handles = list(self._handles)
        for handle in handles:
            handle.update(bundle, raw=True)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        handle = display(self._bundle(), raw=True, display_id=True)
        if handle is not None:
            self.follow(handle)
        if self.button and (widget := self.widget()) is not None:
            display(widget)


#: How often a shown panel redraws the running jobs from their state (seconds; no API call).
FOLLOW_INTERVAL_S = 0.5


def _follow(panel: Panel) -> None:
    """Keep a shown panel live: redraw running jobs from their own state (no API cost), and
    read the balance again once after a job ends (one free request). A daemon thread that
    holds the panel weakly, so a forgotten panel stops it."""
    ref = weakref.ref(panel)

    def loop() -> None:
        seen: set[str] = set()
        ended = runs_ended()
        while True:
            time.sleep(FOLLOW_INTERVAL_S)
            p = ref()
            if p is None:
                return
            ids = {job.job_id for job in running_jobs()}
            # a wait=False job whose work is over, or any run that ended (a blocking one
            # is never in running_jobs())
            if seen - ids or runs_ended() != ended:
                ended = runs_ended()
                p.refresh()  # the balance after the run's charges
            elif ids:
                p._redraw()
            seen = ids
            del p

    threading.Thread(target=loop, name="cleanlist-panel", daemon=True).start()


def panel(client: Any = None, *, refresh: bool = True, button: bool = False) -> Panel:
    """Show the key, the balance and the running jobs; call in a notebook cell.

    The panel updates itself in place (jobs from their state, at no API cost; the balance
    after each job and on ``.refresh()``). ``button=True`` adds an ipywidgets Refresh button.

    >>> import cleanlist_pandas as clp                        # doctest: +SKIP
    >>> p = clp.panel()                                       # doctest: +SKIP
    >>> p.refresh()                                           # doctest: +SKIP
    """
    p = Panel(client, button=button)
    return p.refresh() if refresh else p
