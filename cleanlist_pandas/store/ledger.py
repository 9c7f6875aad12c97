"""The spend ledger: what this machine's runs paid, and what they did not have to pay.

One row per **run** — one ``enrich()`` call that reached the planning stage; a resumed job is
a new run with the same ``job_id`` — appended to ``spend.sqlite3`` next to the result cache
(:func:`~cleanlist_pandas.store.files.spend_path`, opened like every local file: 0600, WAL) when
the run ends, however it ends: finished, interrupted (Ctrl-C), stopped by a 402, by
``max_credits``, by an error. The ledger is append-only (nothing here updates or deletes a
row) and holds ids and numbers only — job and workflow ids, counts, credits — never a name,
an e-mail address, a phone or a URL, so it is kept when personal data is erased
(``clp.forget``, retention, ``cache clear``).

What a row says:

* ``sent`` — contacts this run put on the wire (accepted by the API, or in doubt after a
  dropped connection); ``paid`` — contacts whose result this run collected and was charged
  for; ``credits`` — what those results cost. A result is counted by the run that collects
  it, exactly like the ``cl_credits`` column: a workflow charged after a Ctrl-C is paid by
  the run that resumes the job and reads it. So ``credits`` equals the sum of the run's
  ``cl_credits`` (its ``partial_result``'s, when interrupted), and over a job's runs the sum
  equals the API's ledger. Per workflow, the side table (:meth:`SpendLedger.workflows`)
  splits it further.
* ``saved`` — credits the run did not spend, at the **worst case per contact** of its
  enrichment type (``MAX_UNIT_COST``: partial 1, phone_only 10, full 11, prospecting_only 5,
  none 0), because a contact was: a ``duplicate`` of an earlier row (``saved_duplicates``),
  answered by the local ``cache`` (``saved_cache``), ``invalid`` and skipped
  (``saved_invalid``), ``excluded`` by ``where=``/``only_missing=`` (``saved_excluded``), or
  a cache hit whose result a **pilot** run paid for (``saved_pilot``, not also in
  ``saved_cache``). The worst case is what the API reserves per contact and what a run
  would have risked; what it would really have cost depends on what is found.
* ``kind`` — ``run`` or ``pilot``; ``ended`` — ``done``, ``interrupted``, ``no_credits``
  (a 402, or tasks that could not be paid), ``max_credits``, ``cancelled``, ``stopped``
  (401/403, a 429 storm, an outage), or ``error``.

:func:`spend` (``clp.spend``) reads it as a DataFrame (per run, or by day, job or type)
and :func:`spend_chart` draws it as styled HTML boxes that survive a reopened notebook. (The
module is not called ``spend``: importing it would then shadow ``clp.spend``, the function.)

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> ledger = SpendLedger(d)
>>> _ = ledger.append(RunRecord(job_id="job_1", enrichment_type="full", rows=10, sent=6,
...     paid=4, credits=15.0, unit_cost=11, saved_duplicates=22.0, saved_cache=22.0,
...     workflows={"public_bulk_1": (6, 15.0)}))
>>> ledger.close()
>>> spend(cache_dir=d)[["job_id", "sent", "paid", "credits", "saved"]].to_dict("records")
[{'job_id': 'job_1', 'sent': 6, 'paid': 4, 'credits': 15.0, 'saved': 44.0}]
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from cleanlist_pandas._display import html_box
from cleanlist_pandas.errors import UserTypeError, UserValueError, did_you_mean
from cleanlist_pandas.store.files import SQLiteFile, spend_path

__all__ = [
    "SAVINGS",
    "RunRecord",
    "SpendChart",
    "SpendLedger",
    "spend",
    "spend_chart",
    "spend_text",
]

log = logging.getLogger(__name__)

By = Literal["run", "day", "job", "type"]
_BYS: tuple[str, ...] = ("run", "day", "job", "type")

#: The savings columns, in the order they are drawn, with their colours.
SAVINGS: Mapping[str, str] = {
    "saved_duplicates": "#7570b3",
    "saved_cache": "#66a61e",
    "saved_pilot": "#e7298a",
    "saved_excluded": "#e6ab02",
    "saved_invalid": "#bdbdbd",
}
_SPENT_COLOR = "#d95f02"
_NUMBERS = ("rows", "sent", "paid", "credits", "saved", *SAVINGS)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    enrichment_type TEXT NOT NULL,
    ended TEXT NOT NULL,
    rows INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    paid INTEGER NOT NULL,
    credits REAL NOT NULL,
    unit_cost REAL NOT NULL,
    saved_duplicates REAL NOT NULL,
    saved_cache REAL NOT NULL,
    saved_invalid REAL NOT NULL,
    saved_excluded REAL NOT NULL,
    saved_pilot REAL NOT NULL,
    origin TEXT,
    organization_id TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE TABLE IF NOT EXISTS run_workflows (
    run_id INTEGER NOT NULL,
    workflow_id TEXT NOT NULL,
    contacts INTEGER NOT NULL,
    credits REAL NOT NULL,
    PRIMARY KEY (workflow_id, run_id)
) WITHOUT ROWID;
PRAGMA user_version=1;
"""
# after the columns an old ledger lacks were added
_POST_SCHEMA = """
CREATE INDEX IF NOT EXISTS runs_job ON runs(job_id, origin, organization_id);
"""
_RUN_COLUMNS = (
    "job_id",
    "kind",
    "started_at",
    "ended_at",
    "enrichment_type",
    "ended",
    "rows",
    "sent",
    "paid",
    "credits",
    "unit_cost",
    *SAVINGS,
    "origin",
    "organization_id",
)


@dataclass(frozen=True)
class RunRecord:
    """One run, as the ledger stores it (ids and numbers only).

    ``workflows`` maps each workflow the run submitted or collected to ``(contacts it sent
    in it, credits it paid for it)``.
    """

    job_id: str
    enrichment_type: str
    kind: str = "run"
    started_at: float = field(default_factory=time.time)
    ended_at: float = field(default_factory=time.time)
    ended: str = "done"
    rows: int = 0
    sent: int = 0
    paid: int = 0
    credits: float = 0.0
    unit_cost: float = 0.0
    saved_duplicates: float = 0.0
    saved_cache: float = 0.0
    saved_pilot: float = 0.0
    saved_excluded: float = 0.0
    saved_invalid: float = 0.0
    workflows: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    #: where it was paid: the API's origin and the organization (None: not recorded, a
    #: ledger row written before attribution)
    origin: str | None = None
    organization_id: str | None = None

    @property
    def saved(self) -> float:
        """All the savings together."""
        return float(sum(getattr(self, c) for c in SAVINGS))


class SpendLedger:
    """The append-only SQLite ledger of this machine's runs (see the module doc).

    >>> import tempfile
    >>> with SpendLedger(tempfile.mkdtemp()) as ledger:
    ...     run_id = ledger.append(RunRecord("job_1", "partial", kind="pilot",
    ...                                      workflows={"wf_a": (250, 180.0)}))
    ...     sorted(ledger.pilot_workflows(["wf_a", "wf_b"]))
    ['wf_a']
    """

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self._file = SQLiteFile(spend_path(cache_dir), schema=_SCHEMA, name="SpendLedger")
        self.path = self._file.path
        with self._file.lock:
            conn = self._file.conn
            cols = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
            for col in ("origin", "organization_id"):
                if col not in cols:  # a ledger written before attribution: NULL
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {col} TEXT")
            conn.executescript(_POST_SCHEMA)

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> SpendLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SpendLedger({str(self.path)!r})"

    def append(self, record: RunRecord) -> int:
        """Add one run (and its workflows) in one transaction; return its ``run_id``."""
        values = [getattr(record, c) for c in _RUN_COLUMNS]
        with self._file.lock, self._file.transaction() as conn:
            cur = conn.execute(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)})"
                f" VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
                values,
            )
            run_id = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO run_workflows VALUES (?, ?, ?, ?)",
                [(run_id, wf, int(n), float(c)) for wf, (n, c) in record.workflows.items()],
            )
        return run_id

    def earlier_runs(
        self, job_id: str, origin: str | None, organization_id: str | None
    ) -> tuple[dict[str, float], set[str]]:
        """What earlier runs of a job (in the same scope) recorded: the savings by cause,
        summed, and the workflows they submitted or collected — so a resumed job's savings
        are counted once per contact, and its own results, cached by an earlier run, are
        not counted as savings at all.

        >>> import tempfile
        >>> with SpendLedger(tempfile.mkdtemp()) as ledger:
        ...     _ = ledger.append(RunRecord("j", "full", saved_duplicates=11.0,
        ...                                 workflows={"wf": (3, 12.0)}))
        ...     ledger.earlier_runs("j", None, None)[0]["saved_duplicates"]
        11.0
        """
        sums = {c: 0.0 for c in SAVINGS}
        with self._file.lock:
            conn = self._file.conn
            row = conn.execute(
                "SELECT " + ", ".join(f"COALESCE(SUM({c}), 0)" for c in SAVINGS) + " FROM runs"
                " WHERE job_id = ? AND origin IS ? AND organization_id IS ?",
                (job_id, origin, organization_id),
            ).fetchone()
            workflows = {
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT w.workflow_id FROM run_workflows w JOIN runs r"
                    " ON r.run_id = w.run_id WHERE r.job_id = ? AND r.origin IS ?"
                    " AND r.organization_id IS ?",
                    (job_id, origin, organization_id),
                )
            }
        sums.update(zip(SAVINGS, (float(v) for v in row), strict=True))
        return sums, workflows

    def pilot_workflows(self, workflow_ids: Iterable[str]) -> set[str]:
        """Those of ``workflow_ids`` that belong to a run of kind ``pilot``."""
        ids = sorted({w for w in workflow_ids if w})
        found: set[str] = set()
        with self._file.lock:
            for i in range(0, len(ids), 900):
                part = ids[i : i + 900]
                found.update(
                    r[0]
                    for r in self._file.conn.execute(
                        "SELECT DISTINCT w.workflow_id FROM run_workflows w JOIN runs r"
                        " ON r.run_id = w.run_id WHERE r.kind = 'pilot'"
                        f" AND w.workflow_id IN ({','.join('?' * len(part))})",
                        part,
                    )
                )
        return found

    def runs(self, since: float | None = None, until: float | None = None) -> pd.DataFrame:
        """The runs started in ``[since, until)`` (Unix times), as stored, oldest first."""
        where, params = _where(since, until)
        with self._file.lock:
            cur = self._file.conn.execute(
                "SELECT r.run_id, " + ", ".join(f"r.{c}" for c in _RUN_COLUMNS) + ","
                " (SELECT COUNT(*) FROM run_workflows w WHERE w.run_id = r.run_id)"
                f" FROM runs r{where} ORDER BY r.started_at, r.run_id",
                params,
            )
            rows = cur.fetchall()
        return pd.DataFrame.from_records(
            rows, columns=["run_id", *_RUN_COLUMNS, "workflows"], coerce_float=True
        )

    def workflows(self, run_id: int | None = None) -> pd.DataFrame:
        """The side table: per run and workflow, the contacts sent in it and the credits
        paid for it (``run_id=None``: every run).

        >>> import tempfile
        >>> with SpendLedger(tempfile.mkdtemp()) as ledger:
        ...     rid = ledger.append(RunRecord("j", "full", workflows={"wf": (3, 12.0)}))
        ...     ledger.workflows(rid).to_dict("records")
        [{'run_id': 1, 'workflow_id': 'wf', 'contacts': 3, 'credits': 12.0}]
        """
        sql = "SELECT run_id, workflow_id, contacts, credits FROM run_workflows"
        params: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE run_id = ?"
            params = (int(run_id),)
        with self._file.lock:
            rows = self._file.conn.execute(
                sql + " ORDER BY run_id, workflow_id", params
            ).fetchall()
        return pd.DataFrame.from_records(
            rows, columns=["run_id", "workflow_id", "contacts", "credits"], coerce_float=True
        )


def _where(since: float | None, until: float | None) -> tuple[str, tuple[float, ...]]:
    clauses, params = [], []
    if since is not None:
        clauses.append("r.started_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("r.started_at < ?")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


# -- reading it -------------------------------------------------------------------------------
def _instant(value: Any, name: str, *, end: bool) -> float | None:
    """A ``since``/``until`` bound as a Unix time. A date (or ``"YYYY-MM-DD"``) means its
    whole UTC day: ``since`` from its start, ``until`` through its end; a datetime is taken
    as it is (naive ones as UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(
                text
            )
        except ValueError:
            raise UserValueError(
                f"{name}={value!r} is not a date: use 'YYYY-MM-DD' (a whole UTC day) or an "
                "ISO datetime such as '2026-05-01T14:00'"
            ) from None
    if isinstance(value, pd.Timestamp):
        return float((value if value.tzinfo else value.tz_localize("UTC")).timestamp())
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        day = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return (day + dt.timedelta(days=1) if end else day).timestamp()
    raise UserTypeError(
        f"{name} must be a date, a datetime or a 'YYYY-MM-DD' string, not {type(value).__name__}"
    )


def _check_by(by: str | None) -> str:
    by = "run" if by is None else by
    if by not in _BYS:
        raise UserValueError(
            f"by={by!r}: use one of {list(_BYS)} (or None, one row per run)"
            + did_you_mean(by, _BYS)
        )
    return by


def _by_run(raw: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "time": pd.to_datetime(raw["started_at"].astype("float64"), unit="s", utc=True),
            "job_id": raw["job_id"],
            "kind": raw["kind"],
            "enrichment_type": raw["enrichment_type"],
            "ended": raw["ended"],
            "rows": raw["rows"].astype("int64"),
            "sent": raw["sent"].astype("int64"),
            "paid": raw["paid"].astype("int64"),
            "credits": raw["credits"].astype("float64"),
            "saved": raw[list(SAVINGS)].astype("float64").sum(axis=1),
            **{c: raw[c].astype("float64") for c in SAVINGS},
            "unit_cost": raw["unit_cost"].astype("float64"),
            "workflows": raw["workflows"].astype("int64"),
            "seconds": (raw["ended_at"] - raw["started_at"]).astype("float64").round(3),
            "origin": raw["origin"].astype("string"),
            "organization_id": raw["organization_id"].astype("string"),
        }
    )
    out.index = pd.Index(raw["run_id"].astype("int64"), name="run_id")
    return out


def _aggregate(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    sums = ["sent", "paid", "credits", "saved", *SAVINGS]
    if by == "day":
        key = runs["time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize().rename("day")
    elif by == "job":
        key = runs["job_id"]
    else:
        key = runs["enrichment_type"]
    g = runs.groupby(key, sort=True)
    out = pd.DataFrame({"runs": g.size().astype("int64")})
    if by == "job":
        out.insert(0, "time", g["time"].min())
        out.insert(1, "kind", g["kind"].first())
        out.insert(2, "enrichment_type", g["enrichment_type"].first())
        out["rows"] = g["rows"].max().astype("int64")  # the same rows, run again
    else:
        out["rows"] = g["rows"].sum().astype("int64")
    for c in sums:
        out[c] = g[c].sum()
    if by == "job":
        out = out.sort_values("time", kind="stable")
    out.index.name = {"day": "day", "job": "job_id", "type": "enrichment_type"}[by]
    return out


def spend(
    by: By | None = None,
    *,
    since: dt.date | dt.datetime | str | None = None,
    until: dt.date | dt.datetime | str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """This machine's enrichment spend, from the local ledger, as a plain DataFrame.

    Args:
        by: ``None`` or ``"run"`` — one row per run (index ``run_id``): ``time`` (start,
            UTC), ``job_id``, ``kind`` (``run``/``pilot``), ``enrichment_type``, ``ended``,
            ``rows``, ``sent``, ``paid``, ``credits``, ``saved`` and its parts
            ``saved_duplicates``, ``saved_cache``, ``saved_pilot``, ``saved_excluded``,
            ``saved_invalid``, ``unit_cost``, ``workflows``, ``seconds``, and where it was
            paid: ``origin`` (the API's, or a sandbox's) and ``organization_id`` (``<NA>``
            for runs recorded before version 0.2). ``"day"`` (UTC
            day), ``"job"`` or ``"type"`` add the runs up (``runs`` counts them).
        since, until: only runs started from ``since`` (included) until ``until``
            (excluded); a date or ``"YYYY-MM-DD"`` is a whole UTC day, so both days are
            included; a datetime (naive: UTC) or Timestamp is an instant.
        cache_dir: the directory of the ledger (default: the cache directory).

    ``credits`` is what each run was charged (it equals the run's ``cl_credits``); savings
    are credits at the worst case per contact of the run's enrichment type (see
    :mod:`cleanlist_pandas.store.ledger`).

    >>> import cleanlist_pandas as clp
    >>> clp.spend(by="day", since="2026-05-01")            # doctest: +SKIP
                runs   rows  sent  paid  credits   saved  saved_duplicates ...
    day
    2026-05-01     3  1,200   800   612    612.0   400.0             150.0 ...
    """
    group = _check_by(by)
    lo = _instant(since, "since", end=False)
    hi = _instant(until, "until", end=True)
    with SpendLedger(cache_dir) as ledger:
        runs = _by_run(ledger.runs(lo, hi))
    return runs if group == "run" else _aggregate(runs, group)


# -- showing it -------------------------------------------------------------------------------
def _int(v: float) -> str:
    return f"{v:,.0f}"


#: per ``by``: the table's columns, most important first (a column that does not fit 80
#: characters is left out, from the end)
_TEXT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "run": ("time", "job_id", "enrichment_type", "ended", "credits", "saved", "sent", "paid"),
    "day": ("day", "runs", "credits", "saved", "sent", "paid", "rows"),
    "job": ("job_id", "time", "enrichment_type", "runs", "credits", "saved", "sent", "paid"),
    "type": ("enrichment_type", "runs", "credits", "saved", "sent", "paid", "rows"),
}
_HEADERS = {"enrichment_type": "type", "job_id": "job", "time": "started (UTC)"}


def _cells(frame: pd.DataFrame, column: str) -> list[str]:
    values: Any = frame.index if column == frame.index.name else frame[column]
    if column == "day":
        return [pd.Timestamp(v).strftime("%Y-%m-%d") for v in values]
    if column == "time":
        return [pd.Timestamp(v).strftime("%Y-%m-%d %H:%M") for v in values]
    if column in _NUMBERS or column == "runs":
        return [_int(float(v)) for v in values]
    return [str(v) for v in values]


def spend_text(frame: pd.DataFrame, by: By | str | None = None, *, width: int = 80) -> str:
    """A :func:`spend` frame as a text table no wider than ``width``, with the totals and
    the savings by cause underneath (for the command line and the chart's text).

    >>> runs = pd.DataFrame({"runs": [2], "credits": [12.0], "saved": [30.0], "sent": [20],
    ...     "paid": [12], "rows": [50], "saved_duplicates": [10.0], "saved_cache": [20.0],
    ...     "saved_pilot": [0.0], "saved_excluded": [0.0], "saved_invalid": [0.0]},
    ...     index=pd.DatetimeIndex(["2026-05-01"], name="day"))
    >>> print(spend_text(runs, by="day"))
    day         runs  credits  saved  sent  paid  rows
    2026-05-01     2       12     30    20    12    50
    total: 12 credits spent, 30 saved (duplicates 10, cache 20)
    """
    group = _check_by(by)
    if frame.empty:
        return "no runs recorded in this period"
    cols: list[tuple[str, list[str], bool]] = []
    used = -2
    for column in _TEXT_COLUMNS[group]:
        if column != frame.index.name and column not in frame.columns:
            continue
        cells = _cells(frame, column)
        header = _HEADERS.get(column, column)
        w = max(len(header), *(len(c) for c in cells))
        if used + 2 + w > width:
            continue
        right = column in _NUMBERS or column == "runs"
        cols.append((header, cells, right))
        used += 2 + w
    widths = [max(len(h), *(len(c) for c in cells)) for h, cells, _r in cols]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, (_h, _c, right) in zip(values, widths, cols, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [line([h for h, _c, _r in cols])]
    lines += [line([cells[i] for _h, cells, _r in cols]) for i in range(len(frame))]
    parts = [
        f"{name.removeprefix('saved_')} {_int(float(frame[name].sum()))}"
        for name in SAVINGS
        if name in frame.columns and float(frame[name].sum())
    ]
    total = (
        f"total: {_int(float(frame['credits'].sum()))} credits spent, "
        f"{_int(float(frame['saved'].sum()))} saved"
        + (f" ({', '.join(parts)})" if parts else "")
    )
    import textwrap

    lines.append(textwrap.fill(total, width, subsequent_indent="  "))
    return "\n".join(lines)


class SpendChart:
    """Credits spent and saved per day, job or type, as a picture: for each group a bar of
    the credits spent with the savings stacked beside it, by cause. It is styled HTML boxes
    (``span``s with inline styles, like the run summary's picture), not SVG, so it survives
    static HTML and an untrusted reopened notebook; ``repr`` is the text table; ``data`` the
    frame drawn.

    >>> frame = pd.DataFrame({"runs": [1], "credits": [5.0], "saved": [3.0], "sent": [5],
    ...     "paid": [5], "rows": [8], "saved_duplicates": [3.0], "saved_cache": [0.0],
    ...     "saved_pilot": [0.0], "saved_excluded": [0.0], "saved_invalid": [0.0]},
    ...     index=pd.Index(["full"], name="enrichment_type"))
    >>> chart = SpendChart(frame, by="type")
    >>> "<svg" in chart._repr_html_(), "background-color:#7570b3" in chart._repr_html_()
    (False, True)
    """

    def __init__(self, data: pd.DataFrame, by: By | str = "day", *, width: int = 360) -> None:
        self.data = data
        self.by: str = _check_by(by)
        self.width = width

    def _labels(self) -> list[str]:
        if self.by == "day":
            return [pd.Timestamp(v).strftime("%Y-%m-%d") for v in self.data.index]
        if self.by == "run":
            return [f"run {v}" for v in self.data.index]
        return [str(v) for v in self.data.index]

    def title(self) -> str:
        """One line: the totals."""
        d = self.data
        spent = float(d["credits"].sum()) if len(d) else 0.0
        saved = float(d["saved"].sum()) if len(d) else 0.0
        what = {"run": "run", "day": "day", "job": "job", "type": "enrichment type"}[self.by]
        return f"Cleanlist spend by {what}: {_int(spent)} credits spent, {_int(saved)} saved"

    def __repr__(self) -> str:
        return self.title() + "\n" + spend_text(self.data, self.by)

    def _repr_html_(self) -> str:
        d = self.data
        esc = html.escape
        if not len(d):
            return f"<div><strong>{esc(self.title())}</strong><br>no runs recorded</div>"
        top = max(float((d["credits"] + d["saved"]).max()), 1e-9)
        scale = self.width / top
        legend = " ".join(
            html_box(10, color, name, height=10) + f" {esc(name.removeprefix('saved_'))}"
            for name, color in (("credits spent", _SPENT_COLOR), *SAVINGS.items())
        )
        labels = self._labels()
        label_em = 0.65 * max(len(x) for x in labels) + 1  # monospace: ~0.6em a character
        lines = []
        for label, (_i, row) in zip(labels, d.iterrows(), strict=True):
            spent = float(row["credits"])
            boxes = html_box(spent * scale, _SPENT_COLOR, f"{label}: {_int(spent)} credits spent")
            for name, color in SAVINGS.items():
                v = float(row.get(name, 0.0))
                if v:
                    tip = f"{label}: {_int(v)} saved ({name.removeprefix('saved_')})"
                    boxes += html_box(v * scale, color, tip)
            lines.append(
                "<div style='white-space:nowrap;margin:2px 0'>"
                f"<span style='display:inline-block;width:{label_em:.1f}em;"
                "font-family:monospace'>"
                f"{esc(label)}</span><span style='display:inline-block;vertical-align:middle;"
                f"line-height:0;width:{self.width + 4}px'>{boxes}</span> <small>"
                f"{esc(_int(spent))} spent · {esc(_int(float(row['saved'])))} saved</small></div>"
            )
        return (
            f"<div><strong>{esc(self.title())}</strong><div><small>{legend}</small></div>"
            + "".join(lines)
            + "<div><small>savings in credits at the worst case per contact of the "
            "enrichment type</small></div></div>"
        )


def spend_chart(
    by: By = "day",
    *,
    since: dt.date | dt.datetime | str | None = None,
    until: dt.date | dt.datetime | str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    last: int | None = 30,
) -> SpendChart:
    """A picture of :func:`spend`: per day (``by="day"``), job or type, the credits spent
    with the savings stacked beside them. Shown in a notebook it draws itself (styled HTML,
    no SVG, no script: it survives nbconvert and an untrusted reopened notebook); its text
    is the table; ``.data`` is the frame. ``last`` keeps the most recent groups.

    >>> import cleanlist_pandas as clp
    >>> clp.spend_chart(by="job", since="2026-05-01")      # doctest: +SKIP
    """
    group = _check_by(by)
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 1):
        raise UserValueError(f"last must be a positive int or None, got {last!r}")
    frame = spend(by, since=since, until=until, cache_dir=cache_dir)
    if last is not None and len(frame) > last:
        frame = frame.iloc[-last:]
    return SpendChart(frame, group)
