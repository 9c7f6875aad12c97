"""The notebook panel: the key (masked), the credit balance and the running jobs.

``cleanlist_pandas.panel()`` returns a :class:`Panel`. In Jupyter it displays as a live
ipywidgets panel; everywhere else (VS Code without widgets, GitHub, nbconvert, a terminal)
as HTML or text, because display emits ``text/plain`` and ``text/html`` beside the widget.
ipywidgets is imported lazily, only when a widget is actually shown.

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
from cleanlist_pandas.enrich.job import running_jobs


class Panel:
    """Key, balance and running jobs, as a widget (Jupyter) or HTML/text elsewhere.

    >>> from cleanlist_pandas import Sandbox, Client          # doctest: +SKIP
    >>> with Sandbox() as sb:                                 # doctest: +SKIP
    ...     p = Panel(Client(api_key=sb.api_key, base_url=sb.base_url)).refresh()
    ...     p.credits
    10000.0
    """

    def __init__(self, client: Any = None) -> None:
        self._client = client
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
        self._update_widget()
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
            rows.append(("Checked", self.checked_at.strftime("%H:%M:%S")))
        return rows

    def __repr__(self) -> str:
        return text_table("Cleanlist", self._rows())

    def _repr_html_(self) -> str:
        return html_table("Cleanlist", self._rows())

    # -- widget ---------------------------------------------------------------------------
    def widget(self) -> Any:
        """The ipywidgets panel (built once); ``None`` if ipywidgets is not installed."""
        if self._widget is None:
            try:
                import ipywidgets as w
            except ImportError:
                return None
            body = w.HTML(self._repr_html_())
            button = w.Button(description="Refresh", icon="refresh", layout={"width": "8em"})
            button.on_click(lambda _b: self.refresh())
            self._widget = w.VBox([body, button])
            _follow(self)
        return self._widget

    def _update_widget(self) -> None:
        if self._widget is not None:
            self._widget.children[0].value = self._repr_html_()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        bundle: dict[str, Any] = {}
        widget = self.widget()
        if widget is not None:
            bundle.update(widget._repr_mimebundle_() or {})
        # Frontends without widgets (GitHub, nbconvert, VS Code without the extension) show
        # these instead of "VBox(...)".
        bundle.update({"text/plain": repr(self), "text/html": self._repr_html_()})
        display(bundle, raw=True)


#: How often a shown panel redraws the running jobs from their state (seconds; no API call).
FOLLOW_INTERVAL_S = 0.5


def _follow(panel: Panel) -> None:
    """Keep a shown panel live: redraw running jobs from their own state (no API cost), and
    read the balance again once after a job ends (one free request). A daemon thread that
    holds the panel weakly, so a forgotten panel stops it."""
    ref = weakref.ref(panel)

    def loop() -> None:
        seen: set[str] = set()
        while True:
            time.sleep(FOLLOW_INTERVAL_S)
            p = ref()
            if p is None:
                return
            ids = {job.job_id for job in running_jobs()}
            ended = seen - ids
            seen = ids
            if ended:
                p.refresh()  # the balance after the job's charges
            elif ids:
                p._update_widget()
            del p

    threading.Thread(target=loop, name="cleanlist-panel", daemon=True).start()


def panel(client: Any = None, *, refresh: bool = True) -> Panel:
    """Show the key, the balance and the running jobs; call in a notebook cell.

    >>> import cleanlist_pandas as clp                        # doctest: +SKIP
    >>> clp.panel()                                           # doctest: +SKIP
    """
    p = Panel(client)
    return p.refresh() if refresh else p
