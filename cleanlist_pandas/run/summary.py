"""The final summary of a run: rows by status, credits spent against the worst case, time and
the job id — as a DataFrame, as text and as HTML with a picture (styled boxes, no script).

It is what a run leaves behind in a notebook: static ``text/html`` and ``text/plain`` that
read right with no kernel (reopened files, ``nbconvert --to html``, GitHub), unlike a widget.
It is built from the run's final :class:`~cleanlist_pandas.run.state.RunSnapshot`; no I/O.

>>> s = RunSummary(job_id="job_1", enrichment_type="partial", rows=10,
...                counts={"enriched": 6, "not_found": 3, "skipped": 1},
...                credits=6.0, worst_case_credits=9.0, elapsed_s=12.5)
>>> print(s)
Cleanlist job job_1 (partial): 10 rows in 12.5 s
  enriched       6
  not found      3
  skipped        1
  credits spent  6 of 9 worst case
>>> "background-color:#1b9e77" in s._repr_html_() and "enriched 6" in s._repr_html_()
True
>>> int(s.to_frame().loc["enriched", "rows"])
6
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from cleanlist_pandas._display import html_box
from cleanlist_pandas.run.state import RunSnapshot

__all__ = ["STATUS_COLORS", "RunSummary"]

#: cl_status values in the order they are drawn, with their colours (colour-blind-safe).
STATUS_COLORS: Mapping[str, str] = {
    "enriched": "#1b9e77",
    "not_found": "#7570b3",
    "skipped": "#bdbdbd",
    "failed": "#d95f02",
    "not_submitted": "#e6ab02",
    "awaiting_credits": "#e7298a",
    "pending": "#66a61e",
    "unknown": "#666666",
}


@dataclass(frozen=True)
class RunSummary:
    """The numbers a finished run leaves behind (see the module's docstring)."""

    job_id: str
    enrichment_type: str
    rows: int
    counts: Mapping[str, int] = field(default_factory=dict)
    credits: float = 0.0
    worst_case_credits: float = 0.0
    elapsed_s: float = 0.0
    #: local date and time the run ended ("" while it runs): a saved output says when
    finished_at: str = ""
    #: workflows an earlier run of the job submitted, collected by this one (a resume)
    resumed_workflows: int = 0
    #: a resumed job: its worst case when the earlier run started it
    job_worst_case_credits: float | None = None

    @classmethod
    def from_snapshot(cls, snap: RunSnapshot) -> RunSummary:
        """The summary of a finished run's state.

        >>> RunSummary.from_snapshot(RunSnapshot(job_id="j", rows=2)).rows
        2
        """
        return cls(
            job_id=snap.job_id,
            enrichment_type=snap.enrichment_type,
            rows=snap.rows,
            counts=dict(snap.counts),
            credits=snap.credits,
            worst_case_credits=snap.worst_case_credits,
            elapsed_s=snap.elapsed,
            finished_at=(datetime.now().strftime("%Y-%m-%d %H:%M") if snap.finished else ""),
            resumed_workflows=snap.resumed_workflows,
            job_worst_case_credits=snap.job_worst_case,
        )

    def _ordered(self) -> list[tuple[str, int]]:
        known = [(s, int(self.counts.get(s, 0))) for s in STATUS_COLORS]
        other = [(s, int(n)) for s, n in self.counts.items() if s not in STATUS_COLORS]
        return [(s, n) for s, n in [*known, *other] if n]

    def to_frame(self) -> pd.DataFrame:
        """Rows by status (with their share), then the credits, as a DataFrame."""
        ordered = self._ordered()
        total = sum(n for _s, n in ordered) or 1
        frame = pd.DataFrame(
            {"rows": [n for _s, n in ordered], "share": [n / total for _s, n in ordered]},
            index=pd.Index([s for s, _n in ordered], name="cl_status"),
        )
        frame.attrs.update(
            job_id=self.job_id,
            credits=self.credits,
            worst_case_credits=self.worst_case_credits,
            elapsed_s=self.elapsed_s,
            finished_at=self.finished_at,
        )
        return frame

    def _lines(self) -> list[tuple[str, str]]:
        rows = [(s.replace("_", " "), f"{n:,}") for s, n in self._ordered()]
        rows.append(
            ("credits spent", f"{self.credits:,.0f} of {self.worst_case_credits:,.0f} worst case")
        )
        if self.resumed:
            n = self.resumed_workflows
            job = (
                f"; the job's worst case {self.job_worst_case_credits:,.0f}"
                if self.job_worst_case_credits is not None
                else ""
            )
            rows.append(
                (
                    "resumed",
                    f"{n:,} workflow{'s' if n != 1 else ''} an earlier run submitted{job}",
                )
            )
        return rows

    @property
    def resumed(self) -> bool:
        """True when this run resumed a job an earlier run started (Ctrl-C, a crash)."""
        return self.resumed_workflows > 0 or self.job_worst_case_credits is not None

    def title(self) -> str:
        """One line: the job, its type, how many rows, how long."""
        return (
            f"Cleanlist job {self.job_id} ({self.enrichment_type})"
            + (", resumed" if self.resumed else "")
            + f": {self.rows:,} rows in {self.elapsed_s:,.1f} s"
            + (f", finished {self.finished_at}" if self.finished_at else "")
        )

    def __repr__(self) -> str:
        width = max((len(k) for k, _ in self._lines()), default=0)
        body = [f"  {k:<{width}}  {v}" for k, v in self._lines()]
        return "\n".join([self.title(), *body])

    def picture(self, width: int = 420) -> str:
        """Two stacked bars with their numbers: rows by status; credits against the worst
        case. Plain HTML with inline styles (:func:`~cleanlist_pandas._display.html_box`), not
        SVG: JupyterLab's sanitizer strips SVG from a reopened (untrusted) notebook, but keeps
        styled boxes, so the picture survives reopened files, static HTML and GitHub alike,
        with no script and no kernel."""
        ordered = self._ordered()
        total = sum(n for _s, n in ordered) or 1
        box = html_box
        rows = "".join(
            box(width * n / total, STATUS_COLORS.get(s, "#999999"), f"{s} {n:,}")
            for s, n in ordered
        )
        legend = " · ".join(f"{s.replace('_', ' ')} {n:,}" for s, n in ordered)
        worst = max(self.worst_case_credits, self.credits, 1e-9)
        spent = width * self.credits / worst
        credits = box(spent, STATUS_COLORS["enriched"], "credits spent") + box(
            width - spent, "#eeeeee", "worst case left"
        )
        line = f"credits {self.credits:,.0f} of {self.worst_case_credits:,.0f} worst case"
        return (
            f"<div style='line-height:0'>{rows}</div><div><small>{html.escape(legend)}"
            f"</small></div><div style='line-height:0'>{credits}</div>"
            f"<div><small>{html.escape(line)}</small></div>"
        )

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='text-align:right'>{html.escape(v)}</td></tr>"
            for k, v in self._lines()
        )
        return (
            f"<div><strong>{html.escape(self.title())}</strong><br>{self.picture()}"
            f"<table>{cells}</table></div>"
        )
