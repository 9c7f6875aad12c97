"""Turn API result objects into ``cl_*`` columns and put them next to the input rows.

Why one module of this size: flattening, fanning out to rows and assembling share one
column schema (the names, kinds and order of ``cl_*``) and one set of array helpers; the
flatten-as-results-arrive path must produce exactly what the one-shot path does.

Three steps, each usable alone:

1. :func:`flatten_results` — one row per result object (one per *unique* contact), column
   by column: each field is pulled out of all results with one list comprehension, then
   converted once to a nullable pandas array. No ``apply``, no ``json_normalize``.
2. :func:`assemble` — fan the unique rows out to every input row with the plan's
   ``row_codes`` (``ExtensionArray.take``, by position), fill bookkeeping for rows that got no
   result, and glue the ``cl_*`` block to the untouched input with one ``pd.concat``.
3. :func:`build_output` — both, driven by a :class:`~cleanlist_pandas.frame.plan.Plan`.

:func:`discovered_contacts_frame` turns ``prospecting_only``'s ``discovered_contacts`` into
a separate long frame linked to the input rows.

Decisions:
- ``cl_other_emails`` and ``cl_phones`` are ``"; "``-joined strings (string dtype): they
  survive CSV/Excel, stay nullable, and ``.str.split("; ")`` gives the lists back.
  ``cl_phone`` is the first phone.
- ``cl_company_headcount`` is Int64; a non-numeric headcount (e.g. ``"51-200"``) is <NA>.
- ``cl_credits`` is Int64 when every charge is whole, else Float64.
- A field the code does not know becomes ``cl_<path>`` (nested keys joined with ``_``, e.g.
  ``cl_prospect_seniority``); lists become ``"; "``-joined text, lists of objects JSON text.
- ``cl_status``: ``enriched`` (completed, something found for the type: an email for
  ``partial``, a phone for ``phone_only``, either for ``full``, a discovered contact for
  ``prospecting_only``; any completed task for ``none``), ``not_found`` (completed, nothing
  found), ``failed`` (task failed), ``unknown`` (a task still pending/processing, or an
  unreadable status), and for rows without a result: ``skipped`` (invalid input),
  ``not_submitted`` (default), or what the caller says (e.g. ``unknown`` after an ambiguous
  submission, ``pending`` for a submitted contact whose result was not collected because
  the run was interrupted — a re-run resumes it). For the user, what each means and what to
  do: README.md, "Status columns" (:data:`ROW_STATUSES` is the list).
"""

from __future__ import annotations

import copy
import importlib
import json
import operator
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cleanlist_pandas._perf import gc_paused
from cleanlist_pandas.errors import OutputColumnCollision
from cleanlist_pandas.frame.select import empty_cells
from cleanlist_pandas.types import FOUND_FIELDS, RESULT_FIELDS

# Two private pandas helpers, each with a public fall-back; a pandas release that drops or
# changes one fails loudly in tests/enrich/test_private_internals.py (the run itself falls
# back and stays correct, only slower). Measured on pandas 3.1, CPU:
# - lib.dicts_to_array (list of dicts → 2-D object array, row-major): 0.08 s for 250k results
#   x 16 keys, against 0.60 s for the comprehension per key (_table_public); a 1M-row run
#   flattens ~690k results.
# - ExtensionArray._concat_same_type (part of the extension-array interface, underscored):
#   0.003 s to join 4,000 arrays of 250 (one per workflow), against 0.15 s through
#   pd.concat of Series (_concat_public), per column; ~20 columns in a merge.
_dicts_to_array: Any = getattr(importlib.import_module("pandas._libs.lib"), "dicts_to_array", None)

if TYPE_CHECKING:
    from cleanlist_pandas.frame.plan import Plan

__all__ = [
    "BOOKKEEPING_COLUMNS",
    "DATA_COLUMNS",
    "ROW_STATUSES",
    "FlattenedResults",
    "assemble",
    "build_output",
    "check_output_names",
    "discovered_contacts_frame",
    "fill_found",
    "flatten_results",
    "output_columns",
]

#: Every ``cl_status`` value a run can give a row. What each means and what to do about it
#: is the table "Status columns" in README.md (with ``cl_email_status``'s values);
#: ``tests/test_status_docs.py`` fails when a value here is missing from it.
ROW_STATUSES = (
    "enriched",
    "not_found",
    "failed",
    "skipped",
    "not_submitted",
    "unknown",
    "pending",
    "awaiting_credits",
)


# name (without prefix) → (section, key, kind); section None = top level
_KNOWN: tuple[tuple[str, str | None, str, str], ...] = (
    ("email", None, "primary_email", "str"),
    ("email_status", None, "primary_email_status", "str"),
    ("other_emails", None, "other_emails", "join"),
    ("phone", None, "personal_phone_numbers", "first"),
    ("phones", None, "personal_phone_numbers", "join"),
    ("full_name", "prospect", "full_name", "str"),
    ("first_name", "prospect", "first_name", "str"),
    ("last_name", "prospect", "last_name", "str"),
    ("headline", "prospect", "headline", "str"),
    ("location", "prospect", "location", "str"),
    ("linkedin_url", "prospect", "linkedin_url", "str"),
    ("company_name", "company", "name", "str"),
    ("company_domain", "company", "domain", "str"),
    ("company_industry", "company", "industry", "str"),
    ("company_headcount", "company", "headcount", "int"),
)
#: Data columns, in output order (without the prefix).
DATA_COLUMNS: tuple[str, ...] = tuple(k[0] for k in _KNOWN)
#: Bookkeeping columns, after the data columns (without the prefix).
BOOKKEEPING_COLUMNS: tuple[str, ...] = ("status", "error", "credits", "workflow_id", "task_id")
#: The dtype of every text column: pandas' nullable string, stored as Python objects. Not
#: the default storage, which is Arrow whenever pyarrow is installed: gathering 1M rows from
#: Arrow-backed batches made the final merge 2.4x slower and took 1.7x the input's memory
#: (benchmarks/bench_cpu.py), and the output's dtype should not depend on what else is
#: installed.
_STR = pd.StringDtype("python")

# the result fields the models know (``workflow_id`` is added by the engine)
_TOP_KNOWN = RESULT_FIELDS[""] | {"workflow_id"}
_SECTION_KNOWN = {s: RESULT_FIELDS[s] for s in ("prospect", "company")}
_EMPTY: dict[str, Any] = {}


def output_columns(prefix: str = "cl_", enrichment_type: str | None = None) -> list[str]:
    """The fixed output columns (unknown result fields come after them).

    >>> output_columns()[:3], output_columns()[-1]
    (['cl_email', 'cl_email_status', 'cl_other_emails'], 'cl_task_id')
    """
    names = [*DATA_COLUMNS, *BOOKKEEPING_COLUMNS]
    if enrichment_type == "prospecting_only":
        names.append("discovered_count")
    return [prefix + c for c in names]


# --------------------------------------------------------------------------- arrays
def _join(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, list | tuple):
        if not v:
            return None
        if all(isinstance(x, str | int | float | bool) for x in v):
            return "; ".join(str(x) for x in v)
        return json.dumps(v, default=str, ensure_ascii=False)
    if isinstance(v, dict):
        return json.dumps(v, default=str, ensure_ascii=False)
    return v if isinstance(v, str) else str(v)


def _first(v: Any) -> Any:
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, list | tuple):
        return None if not v or v[0] is None else str(v[0])
    return v


def _str_array(vals: list[Any]) -> Any:
    return pd.array(np.asarray([*vals, None], dtype=object)[:-1], dtype=_STR)


def _int_array(vals: list[Any]) -> Any:
    num = pd.to_numeric(pd.Series(vals, dtype=object), errors="coerce")
    arr = num.to_numpy(dtype="float64", na_value=np.nan)
    whole = np.isnan(arr) | (arr == np.floor(arr))
    arr = np.where(whole, arr, np.nan)
    return pd.array(arr, dtype="Float64").astype("Int64")


def _number_array(vals: list[Any]) -> Any:
    num = pd.to_numeric(pd.Series(vals, dtype=object), errors="coerce")
    arr = num.to_numpy(dtype="float64", na_value=np.nan)
    finite = arr[~np.isnan(arr)]
    fl = pd.array(arr, dtype="Float64")
    if (finite == np.floor(finite)).all():
        return fl.astype("Int64")
    return fl


def _infer_array(vals: list[Any]) -> Any:
    """A nullable array for a field we do not know: str/Int64/Float64/boolean, else text."""
    kind = pd.api.types.infer_dtype(vals, skipna=True)
    if kind in ("string", "empty"):
        return _str_array(vals)
    if kind == "integer":
        return pd.array(vals, dtype="Int64")
    if kind in ("floating", "mixed-integer-float", "decimal"):
        return pd.array(vals, dtype="Float64")
    if kind == "boolean":
        return pd.array(vals, dtype="boolean")
    return _str_array([_join(v) for v in vals])


_TOP_ORDER: tuple[str, ...] = tuple(sorted(_TOP_KNOWN))
_SECTION_ORDER: dict[str, tuple[str, ...]] = {
    k: tuple(sorted(v)) for k, v in _SECTION_KNOWN.items()
}


def _table(dicts: list[dict[str, Any]], keys: tuple[str, ...]) -> np.ndarray:
    """2-D object array ``[row, key]`` of ``d.get(key)``; a missing key → None or NaN.

    Row-major (each dict is visited once, while it is in the CPU cache): pandas' C helper
    when available, else a comprehension per key.
    """
    n = len(dicts)
    if _dicts_to_array is not None and n:
        try:
            arr = _dicts_to_array(dicts, list(keys))
            if arr.shape == (n, len(keys)):
                return arr
        except Exception:  # pragma: no cover - private helper changed: use the fallback
            pass
    return _table_public(dicts, keys)


def _table_public(dicts: list[dict[str, Any]], keys: tuple[str, ...]) -> np.ndarray:
    """:func:`_table` with public means only: a comprehension per key (a missing key → None)."""
    out = np.empty((len(dicts), len(keys)), dtype=object)
    for j, k in enumerate(keys):
        out[:, j] = [d.get(k) for d in dicts]
    return out


def _text_array(raw: np.ndarray) -> Any:
    """Object column → string array in one pass: None/NaN → <NA>, other scalars via ``str``.

    (A list or object in a field the spec types as a string is kept as its ``str``.)
    """
    return pd.array(raw, dtype=_STR)


def _join_all(raw: np.ndarray) -> list[Any]:
    try:
        return [
            ("; ".join(v) if v else None) if type(v) is list else _join(v) for v in raw.tolist()
        ]
    except TypeError:  # non-str items somewhere
        return [_join(v) for v in raw.tolist()]


def _first_all(raw: np.ndarray) -> list[Any]:
    return [
        (None if not v else v[0] if type(v[0]) is str else _first(v))
        if type(v) is list
        else _first(v)
        for v in raw.tolist()
    ]


def _generic(dicts: list[Any], path: str, skip: frozenset[str], out: dict[str, Any]) -> None:
    """Flatten every key of ``dicts`` not in ``skip`` into ``out[path + key]``."""
    keys: set[Any] = set().union(*dicts)
    for key in sorted(k for k in keys - skip if isinstance(k, str)):
        vals = [d.get(key) for d in dicts]
        if dict in set(map(type, vals)):
            sub = [v if isinstance(v, dict) else _EMPTY for v in vals]
            _generic(sub, f"{path}{key}_", frozenset(), out)
        else:
            out[path + key] = _infer_array(vals)


def _coerce(r: Any) -> dict[str, Any]:
    """A result object as a dict; None (or anything not a mapping) → the shared _EMPTY."""
    if isinstance(r, Mapping):
        return dict(r)
    return _EMPTY


# --------------------------------------------------------------------------- flatten
def flatten_results(
    results: Sequence[Mapping[str, Any] | None],
    *,
    enrichment_type: str | None = None,
    prefix: str = "cl_",
    workflow_ids: Sequence[str | None] | None = None,
    statuses: Sequence[str | None] | None = None,
    errors: Sequence[str | None] | None = None,
) -> pd.DataFrame:
    """One row per result object (same order), ``cl_*`` columns, nullable dtypes.

    Args:
        results: result objects per spec §6 (dicts), or None where there is no result.
        enrichment_type: decides what counts as "found" for ``cl_status``; None = an email,
            a phone or a discovered contact.
        prefix: column prefix.
        workflow_ids: per result, the workflow it came from (else the result's own
            ``workflow_id`` key, if any).
        statuses, errors: per result, the ``cl_status``/``cl_error`` to use where the result
            is None (default ``not_submitted``); ignored where a result exists.

    >>> r = {"task_id": "t1", "status": "completed", "primary_email": "a@x.com",
    ...      "personal_phone_numbers": ["+1", "+2"], "prospect": {"seniority": "VP"},
    ...      "credits_charged": 1}
    >>> out = flatten_results([r, None], enrichment_type="partial")
    >>> out[["cl_email", "cl_phones", "cl_status", "cl_prospect_seniority"]].values.tolist()
    [['a@x.com', '+1; +2', 'enriched', 'VP'], [<NA>, <NA>, 'not_submitted', <NA>]]
    """
    n = len(results)
    with gc_paused():
        return _flatten(results, n, enrichment_type, prefix, workflow_ids, statuses, errors)


def _flatten(
    results: Sequence[Mapping[str, Any] | None],
    n: int,
    enrichment_type: str | None,
    prefix: str,
    workflow_ids: Sequence[str | None] | None,
    statuses: Sequence[str | None] | None,
    errors: Sequence[str | None] | None,
) -> pd.DataFrame:
    rs = [r if type(r) is dict else _coerce(r) for r in results]
    present = np.asarray([r is not _EMPTY for r in rs], dtype=bool)
    top = _table(rs, _TOP_ORDER)
    sections = {
        s: [v if type(v) is dict else _EMPTY for v in top[:, _TOP_ORDER.index(s)]]
        for s in ("prospect", "company")
    }
    tables = {
        None: top,
        "prospect": _table(sections["prospect"], _SECTION_ORDER["prospect"]),
        "company": _table(sections["company"], _SECTION_ORDER["company"]),
    }
    orders: dict[str | None, tuple[str, ...]] = {None: _TOP_ORDER}
    orders.update(_SECTION_ORDER)
    cols: dict[str, Any] = {}
    for name, section, key, kind in _KNOWN:
        raw = tables[section][:, orders[section].index(key)]
        if kind == "str":
            cols[name] = _text_array(raw)
        elif kind == "join":
            cols[name] = _str_array(_join_all(raw))
        elif kind == "first":
            cols[name] = _str_array(_first_all(raw))
        else:
            cols[name] = _int_array(raw.tolist())
    task_status = top[:, _TOP_ORDER.index("status")].tolist()
    disc = top[:, _TOP_ORDER.index("discovered_contacts")]

    # status
    disc_n = np.asarray([len(d) if type(d) is list else 0 for d in disc], dtype=np.int64)
    non_empty = {  # per field of models.FOUND_FIELDS: is it non-empty?
        "primary_email": ~np.asarray(cols["email"].isna()),
        "personal_phone_numbers": ~np.asarray(cols["phones"].isna()),
        "discovered_contacts": disc_n > 0,
    }
    fields = FOUND_FIELDS.get(enrichment_type, FOUND_FIELDS[None])
    found = np.ones(n, dtype=bool)
    if fields:
        found = np.logical_or.reduce([non_empty[f] for f in fields])
    st = top[:, _TOP_ORDER.index("status")]
    completed = st == "completed"
    failed = st == "failed"
    status = np.full(n, "unknown", dtype=object)
    status[completed & found] = "enriched"
    status[completed & ~found] = "not_found"
    status[failed] = "failed"
    error = np.asarray(_text_array(top[:, _TOP_ORDER.index("error")]), dtype=object)
    error[pd.isna(error)] = None
    pending = present & ~completed & ~failed
    if pending.any():
        for i in np.flatnonzero(pending & pd.isna(error)):
            error[i] = f"task not finished (status={task_status[i]!r})"
    if (~present).any():
        miss = np.flatnonzero(~present)
        status[miss] = "not_submitted"
        if statuses is not None:
            given = np.asarray(statuses, dtype=object)[miss]
            status[miss] = np.where(pd.isna(given), "not_submitted", given)
        if errors is not None:
            error[miss] = np.asarray(errors, dtype=object)[miss]
    bad = ~np.isin(status, ROW_STATUSES)
    if bad.any():
        raise ValueError(f"unknown cl_status values {sorted(set(status[bad]))}; use {ROW_STATUSES}")
    cols["status"] = _str_array(status.tolist())
    cols["error"] = _str_array(error.tolist())
    cols["credits"] = _number_array(top[:, _TOP_ORDER.index("credits_charged")].tolist())
    if workflow_ids is not None:
        wf = [w if isinstance(w, str) else None for w in workflow_ids]
        if len(wf) != n:
            raise ValueError(f"workflow_ids has {len(wf)} entries for {n} results")
        wf = [w if w is not None else r.get("workflow_id") for w, r in zip(wf, rs, strict=True)]
    else:
        wf = top[:, _TOP_ORDER.index("workflow_id")].tolist()
    cols["workflow_id"] = _text_array(np.asarray([*wf, None], dtype=object)[:-1])
    cols["task_id"] = _text_array(top[:, _TOP_ORDER.index("task_id")])
    if enrichment_type == "prospecting_only" or disc_n.any():
        cols["discovered_count"] = pd.array(np.where(present, disc_n, 0), dtype="Int64")
        if not present.all():
            cols["discovered_count"][~present] = pd.NA

    extra: dict[str, Any] = {}
    _generic(rs, "", _TOP_KNOWN, extra)
    for s in ("prospect", "company"):
        _generic(sections[s], f"{s}_", _SECTION_KNOWN[s], extra)
    for k, v in extra.items():
        cols.setdefault(k, v)  # a known name always wins
    return pd.DataFrame(
        {prefix + k: v for k, v in cols.items()}, index=pd.RangeIndex(n), copy=False
    )


# --------------------------------------------------------------------------- incremental
class FlattenedResults:
    """Results flattened as they arrive (per workflow), so the final merge only gathers.

    Touching ~700k result dicts is most of the merge's CPU at 1M rows; results arrive 250 at
    a time over minutes or hours, so a caller (the engine) can :meth:`add` each workflow's
    results when they come in — they are flattened in batches of ``batch`` results, while
    the run waits on the network — and pass this object to :func:`build_output` as
    ``flat=``. The output is exactly ``flatten_results(results, ...)``: :meth:`frame`
    checks that every added result is the very object in ``results`` and that the batches
    agree on columns and dtypes (e.g. an unknown field typed differently in two batches),
    and otherwise flattens everything at the end as before. A result must not be modified
    in place after it was added (its flattened row would be stale). Thread-safe: the
    engine's loop adds, and the thread that waits for the run may :meth:`flush` meanwhile
    (so the loop is not held up flattening while reads are due).

    >>> fr = FlattenedResults(2, enrichment_type="partial")
    >>> res = [{"status": "completed", "primary_email": "a@x.io"}, None]
    >>> fr.add([0], res[:1])
    >>> fr.frame(res).equals(flatten_results(res, enrichment_type="partial"))
    True
    """

    def __init__(
        self,
        n_unique: int,
        *,
        enrichment_type: str | None = None,
        prefix: str = "cl_",
        batch: int = 8192,
    ) -> None:
        self.n_unique = n_unique
        self.enrichment_type = enrichment_type
        self.prefix = prefix
        self.batch = max(1, int(batch))
        self._ids: list[np.ndarray] = []
        self._objs: list[list[Any]] = []
        self._frames: list[pd.DataFrame] = []
        self._arrays: list[list[Any]] = []  # per frame, its column arrays (column order)
        self._buf_ids: list[int] = []
        self._buf: list[Any] = []
        self._lock = threading.Lock()
        #: called (from the adding thread) after each :meth:`add`: e.g. to wake the thread
        #: that flushes
        self.on_add: Callable[[], None] | None = None

    def __len__(self) -> int:
        with self._lock:
            return sum(len(i) for i in self._ids) + len(self._buf)

    def add(self, unique_ids: Sequence[int] | np.ndarray, results: Sequence[Any]) -> None:
        """Record the results of some unique contacts (None entries are ignored)."""
        ids = [int(u) for u in np.asarray(unique_ids, dtype=np.int64).tolist()]
        if len(ids) != len(results):
            raise ValueError(f"{len(ids)} unique ids for {len(results)} results")
        for u, r in zip(ids, results, strict=True):
            if r is not None and not 0 <= u < self.n_unique:
                raise ValueError(f"unique id {u} out of range 0..{self.n_unique - 1}")
        with self._lock:
            for u, r in zip(ids, results, strict=True):
                if r is not None:
                    self._buf_ids.append(u)
                    self._buf.append(r)
            full = len(self._buf) >= self.batch
        if full:
            self.flush()
        elif self.on_add is not None:
            self.on_add()

    def flush(self) -> None:
        """Flatten the buffered results now."""
        with self._lock:
            if not self._buf:
                return
            buf, ids = self._buf, np.asarray(self._buf_ids, dtype=np.int64)
            self._buf, self._buf_ids = [], []
        frame = flatten_results(buf, enrichment_type=self.enrichment_type, prefix=self.prefix)
        # pulled out now, while the run waits on the network, not in the final gather
        arrays = _column_arrays(frame)
        with self._lock:
            self._ids.append(ids)
            self._objs.append(buf)
            self._frames.append(frame)
            self._arrays.append(arrays)

    def frame(
        self,
        results: Sequence[Mapping[str, Any] | None],
        *,
        workflow_ids: Sequence[str | None] | None = None,
        statuses: Sequence[str | None] | None = None,
        errors: Sequence[str | None] | None = None,
    ) -> pd.DataFrame:
        """``flatten_results(results, ...)``, reusing the batches flattened so far."""
        kw: dict[str, Any] = {"enrichment_type": self.enrichment_type, "prefix": self.prefix}
        full = {"workflow_ids": workflow_ids, "statuses": statuses, "errors": errors, **kw}
        n = len(results)
        self.flush()
        if n != self.n_unique or not self._frames:
            return flatten_results(results, **full)
        with gc_paused():
            out = self._gather(results, workflow_ids, statuses, errors, kw)
        return out if out is not None else flatten_results(results, **full)

    def _gather(
        self,
        results: Sequence[Mapping[str, Any] | None],
        workflow_ids: Sequence[str | None] | None,
        statuses: Sequence[str | None] | None,
        errors: Sequence[str | None] | None,
        kw: dict[str, Any],
    ) -> pd.DataFrame | None:
        n = len(results)
        ids = np.concatenate(self._ids)
        done = np.zeros(n, dtype=bool)
        done[ids] = True
        if int(done.sum()) != len(ids):
            return None  # a unique id added twice
        res = results if isinstance(results, list) else list(results)
        for part_ids, objs in zip(self._ids, self._objs, strict=True):
            now = list(map(res.__getitem__, part_ids.tolist()))
            if len(now) != len(objs) or any(map(operator.is_not, now, objs)):
                return None  # not the results that were added
        frames = list(self._frames)
        arrays = list(self._arrays)
        rest = np.flatnonzero(~done)
        pieces = [ids]
        none_frame: pd.DataFrame | None = None
        if len(rest):
            rest_res = [res[i] for i in rest.tolist()]
            has = np.fromiter((r is not None for r in rest_res), bool, len(rest_res))
            if has.any():
                pos = rest[has]
                frames.append(flatten_results([res[i] for i in pos.tolist()], **kw))
                arrays.append(_column_arrays(frames[-1]))
                pieces.append(pos)
            if not has.all():
                pos = rest[~has]
                sel = pos.tolist()
                none_frame = flatten_results(
                    [None] * len(sel),
                    statuses=None if statuses is None else [statuses[i] for i in sel],
                    errors=None if errors is None else [errors[i] for i in sel],
                    **kw,
                )
                pieces.append(pos)
        first = frames[0]
        names = list(first.columns)
        dtypes = list(first.dtypes)
        for f in frames[1:]:
            if list(f.columns) != names or list(f.dtypes) != dtypes:
                return None  # batches disagree: flatten everything at once
        if none_frame is not None:
            if not set(none_frame.columns) <= set(names):
                return None
            m = len(none_frame)
            cols = {}
            for name, dt in zip(names, dtypes, strict=True):
                if name in none_frame.columns:
                    cols[name] = none_frame[name].array.astype(dt)
                else:
                    cols[name] = pd.array([None] * m, dtype=dt)
            frames.append(pd.DataFrame(cols, index=pd.RangeIndex(m), copy=False))
            arrays.append(_column_arrays(frames[-1]))
        where = np.concatenate(pieces)
        # results usually arrive in unique-id order (chunks are sent in order): no reorder
        order = None if (np.diff(where) > 0).all() else np.argsort(where, kind="stable")
        data: dict[str, Any] = {}
        for j, name in enumerate(names):
            arrs = [a[j] for a in arrays]
            joined = _concat(arrs)
            data[name] = joined if order is None else joined.take(order)
        if workflow_ids is not None:
            # the batches hold each result's own ``workflow_id``; the caller's ids win
            wf_name = self.prefix + "workflow_id"
            if len(workflow_ids) != n:
                raise ValueError(f"workflow_ids has {len(workflow_ids)} entries for {n} results")
            given = np.empty(n, dtype=object)
            given[:] = [w if isinstance(w, str) else None for w in workflow_ids]
            own = np.asarray(data[wf_name], dtype=object)
            use_own = pd.isna(given)
            given[use_own] = own[use_own]
            data[wf_name] = _text_array(given)
        return pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)


def _with_rows(arr: Any, rows: np.ndarray, values: np.ndarray) -> Any:
    """``arr`` (a new array of the frame being built) as ``string`` with ``values`` at ``rows``."""
    fill = pd.array(values, dtype=_STR)
    if type(arr) is pd.arrays.StringArray and arr.dtype == fill.dtype:
        arr[rows] = fill  # in place: only the filled values are converted
        return arr
    out = np.asarray(arr, dtype=object).copy()
    out[rows] = np.asarray(fill, dtype=object)
    out[pd.isna(out)] = None
    return pd.array(out, dtype=_STR)


def _concat(arrays: list[Any]) -> Any:
    """One extension array from several of one dtype, in order (see the note at the top)."""
    if len(arrays) == 1:
        return arrays[0]
    concat = getattr(type(arrays[0]), "_concat_same_type", None)
    if concat is not None:
        try:
            return concat(arrays)
        except Exception:  # pragma: no cover - private method changed: use the fallback
            pass
    return _concat_public(arrays)


def _concat_public(arrays: list[Any]) -> Any:
    """:func:`_concat` with public means only: ``pd.concat`` of Series, then its array."""
    return pd.concat([pd.Series(a, copy=False) for a in arrays], ignore_index=True).array


def _column_arrays(frame: pd.DataFrame) -> list[Any]:
    """The frame's column arrays, in column order (names are unique in a flattened frame)."""
    return [frame[name].array for name in frame.columns]


# --------------------------------------------------------------------------- assemble
def _labels_for(df: pd.DataFrame, names: Sequence[str]) -> list[Hashable]:
    if isinstance(df.columns, pd.MultiIndex):
        pad = ("",) * (df.columns.nlevels - 1)
        return [(nm, *pad) for nm in names]
    return list(names)


def _taken_names(df: pd.DataFrame) -> set[Hashable]:
    """Input column names an output column must not reuse (a MultiIndex's first level too:
    ``out["cl_credits"]`` would select every column under it)."""
    taken: set[Hashable] = set(df.columns.tolist())
    if isinstance(df.columns, pd.MultiIndex):
        taken.update(df.columns.get_level_values(0).tolist())
    return taken


def check_collisions(df: pd.DataFrame, names: Sequence[Hashable], prefix: str) -> None:
    """Raise :class:`OutputColumnCollision` if any output name is already an input column.

    >>> check_collisions(pd.DataFrame({"cl_email": [1]}), ["cl_email"], "cl_")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cleanlist_pandas.errors.OutputColumnCollision: output column(s) ['cl_email'] ...
    """
    taken = _taken_names(df)
    clash = [
        c for c in names if c in taken or (isinstance(c, tuple) and c and c[0] in taken)
    ]
    if clash:
        shown = [c[0] if isinstance(c, tuple) else c for c in clash[:5]]
        raise OutputColumnCollision(
            f"output column(s) {shown!r} already exist in the input frame (prefix "
            f"{prefix!r}); pass another prefix, e.g. prefix='{prefix.rstrip('_')}2_', or drop "
            "the old columns first. Nothing was sent."
        )


def check_output_names(df: pd.DataFrame, enrichment_type: str, prefix: str = "cl_") -> None:
    """Before any request: raise :class:`OutputColumnCollision` if ``df`` already has a
    column the run would add (``estimate()`` reports the same names).

    >>> check_output_names(pd.DataFrame({"email": [1]}), "full") is None  # no clash
    True
    >>> old = pd.DataFrame({"cl_email": [1]})
    >>> check_output_names(old, "full")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    OutputColumnCollision: output column(s) ['cl_email'] already exist in the input frame ...
    """
    check_collisions(df, output_columns(prefix, enrichment_type), prefix)


@gc_paused()
def assemble(
    df: pd.DataFrame,
    unique_results: pd.DataFrame,
    row_codes: np.ndarray | Sequence[int],
    *,
    row_status: Sequence[str | None] | np.ndarray | None = None,
    row_error: Any = None,
    prefix: str = "cl_",
) -> pd.DataFrame:
    """A NEW frame: ``df``'s columns untouched, then the result columns, same index & order.

    Args:
        df: the input frame (never modified).
        unique_results: from :func:`flatten_results`, one row per unique contact.
        row_codes: per input row position, the ``unique_results`` row to use, or -1.
        row_status: per input row, the ``cl_status`` for rows with code -1 (e.g. ``skipped``);
            NA/None → ``not_submitted``. Ignored where the code is ≥ 0.
        row_error: per input row, the ``cl_error`` for rows with code -1 (e.g. the reason).
        prefix: the prefix ``unique_results`` was built with (for the status columns).

    Raises:
        OutputColumnCollision: an output column name already exists in ``df``.

    >>> import pandas as pd, numpy as np
    >>> df = pd.DataFrame({"x": [1, 2, 3]}, index=["a", "a", "b"])
    >>> u = flatten_results([{"status": "completed", "primary_email": "e@x.io"}])
    >>> out = assemble(df, u, np.array([0, 0, -1]), row_status=[None, None, "skipped"])
    >>> out[["x", "cl_email", "cl_status"]].values.tolist()
    [[1, 'e@x.io', 'enriched'], [2, 'e@x.io', 'enriched'], [3, <NA>, 'skipped']]
    """
    n = len(df)
    codes = np.asarray(row_codes, dtype=np.int64)
    if codes.shape != (n,):
        raise ValueError(f"row_codes has shape {codes.shape}, expected ({n},)")
    if n and codes.max(initial=-1) >= len(unique_results):
        raise ValueError("row_codes points past the end of unique_results")
    names = [str(c) for c in unique_results.columns]
    labels = _labels_for(df, names)
    check_collisions(df, labels, prefix)
    codes = np.where(codes < 0, -1, codes)
    none = codes < 0
    data: dict[str, Any] = {}
    for name in names:
        data[name] = unique_results[name].array.take(codes, allow_fill=True)
    st_name, err_name = prefix + "status", prefix + "error"
    if none.any():
        # the taken columns are new arrays: set the rows without a result in place (only
        # those values are converted, not the whole 1M-row column again)
        if row_status is not None:
            given = np.asarray(row_status, dtype=object)[none]
            fill = np.where(pd.isna(given), "not_submitted", given)
        else:
            fill = np.full(int(none.sum()), "not_submitted", dtype=object)
        data[st_name] = _with_rows(data[st_name], none, fill)
        if row_error is not None:
            given_err = np.asarray(row_error, dtype=object)[none]
            given_err[pd.isna(given_err)] = None
            data[err_name] = _with_rows(data[err_name], none, given_err)
    block = pd.DataFrame(data, index=pd.RangeIndex(n), copy=False)
    block.columns = pd.Index(labels, tupleize_cols=True) if labels else block.columns
    left = df.set_axis(pd.RangeIndex(n), axis=0)
    out = pd.concat([left, block], axis=1).set_axis(df.index, axis=0)
    out.attrs = copy.deepcopy(df.attrs)
    if not df.flags.allows_duplicate_labels:
        out = out.set_flags(allows_duplicate_labels=False)
    return out


def build_output(
    df: pd.DataFrame,
    plan: Plan,
    results: Sequence[Mapping[str, Any] | None],
    *,
    statuses: Sequence[str | None] | None = None,
    errors: Sequence[str | None] | None = None,
    workflow_ids: Sequence[str | None] | None = None,
    prefix: str = "cl_",
    flat: FlattenedResults | None = None,
) -> pd.DataFrame:
    """Final frame of a run: input + ``cl_*`` columns, from a plan and its results.

    Args:
        df: the input frame the plan was made from (never modified).
        plan: the :class:`Plan`.
        results: one entry per unique contact (``plan.n_unique``, unique-id order): the result
            object (fresh or from ``plan.cached``), or None if there is none.
        statuses, errors: per unique contact, status/error for those without a result
            (``not_submitted`` by default; ``unknown`` for ambiguous submissions).
        workflow_ids: per unique contact, the workflow id of its result.
        prefix: the column prefix.
        flat: results already flattened while the run went on (:class:`FlattenedResults`
            for this plan, same prefix and type); the output is the same, only cheaper.

    Invalid rows get ``cl_status="skipped"`` and ``cl_error`` = the mapping's reason; rows
    ``where=``/``only_missing=`` left out (the plan's selection) come back the same way,
    ``cl_error`` saying why (e.g. ``excluded by where=``).
    """
    if len(results) != plan.n_unique:
        raise ValueError(f"got {len(results)} results for {plan.n_unique} unique contacts")
    if len(df) != plan.n_rows:
        raise ValueError(f"frame has {len(df)} rows, the plan {plan.n_rows}")
    if (
        flat is not None
        and flat.prefix == prefix
        and flat.enrichment_type == plan.enrichment_type
        and flat.n_unique == plan.n_unique
    ):
        unique = flat.frame(results, workflow_ids=workflow_ids, statuses=statuses, errors=errors)
    else:
        unique = flatten_results(
            results,
            enrichment_type=plan.enrichment_type,
            prefix=prefix,
            workflow_ids=workflow_ids,
            statuses=statuses,
            errors=errors,
        )
    skipped = plan.row_codes < 0
    row_status = np.full(len(skipped), None, dtype=object)
    row_status[skipped] = "skipped"
    return assemble(
        df,
        unique,
        plan.row_codes,
        row_status=row_status,
        row_error=plan.skip_reasons(),
        prefix=prefix,
    )


def _filled(col: pd.Series, rows: np.ndarray, values: np.ndarray) -> pd.Series:
    """``col`` with ``values`` at ``rows``, in a sane dtype: a text column keeps its dtype
    (object, ``string``, pandas 3's ``str``, Arrow strings); a column of no text yet (e.g. an
    all-empty CSV column read as float64) becomes the default text dtype; one that holds
    other values (numbers) becomes object, every existing value untouched. (A Series on the
    column's own index: an object array alone would be re-inferred as ``str`` by pandas 3.)"""
    out = col.to_numpy(dtype=object, copy=True)
    out[rows] = values[rows]
    dtype: Any = col.dtype
    if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        keep = dtype
    elif not col.notna().any():
        keep = pd.Series(["x"]).dtype  # str on pandas 3, object on 2.2
    else:
        keep = np.dtype(object)
    return pd.Series(out, index=col.index, name=col.name, dtype=keep, copy=False)


def fill_found(
    out: pd.DataFrame, fill_columns: Mapping[str, int], prefix: str = "cl_"
) -> pd.DataFrame:
    """``fill=``: write each found value (``cl_email``, ``cl_phone``) into the empty cells
    (missing, blank or whitespace) of the input's own column at the given position; a cell
    with any text keeps it. Replaces whole columns of ``out`` (the input frame is never
    touched); returns ``out``.

    >>> out = pd.DataFrame({"Email": ["own@x.io", None, " "],
    ...                     "cl_email": pd.array(["new@x.io", "b@x.io", None], "string")})
    >>> fill_found(out, {"email": 0})["Email"].tolist()
    ['own@x.io', 'b@x.io', ' ']
    """
    for f, pos in fill_columns.items():
        (label,) = _labels_for(out, [prefix + f])
        if label not in out.columns:
            continue
        found = out[label]
        col = out.iloc[:, pos]
        rows = empty_cells(col) & np.asarray(found.notna(), dtype=bool)
        if rows.any():
            filled: Any = _filled(col, rows, found.to_numpy(dtype=object))  # (stubs: no Series)
            out.isetitem(pos, filled)
    return out


# --------------------------------------------------------------------------- prospects
@gc_paused()
def discovered_contacts_frame(
    df: pd.DataFrame,
    results: Sequence[Mapping[str, Any] | None],
    row_codes: np.ndarray | Sequence[int],
) -> pd.DataFrame:
    """``prospecting_only``: one row per (input row, discovered contact), long format.

    Columns: ``input_position`` (int64 row position in ``df``), the input's index label(s)
    (``input_index`` for a flat index, ``input_<level name>`` or ``input_index_<k>`` per
    level of a MultiIndex), then every field of the discovered contacts, flattened (nested
    keys joined with ``_``). RangeIndex. Duplicate input rows each get the contacts.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1, 2]}, index=["r1", "r2"])
    >>> res = [{"status": "completed", "discovered_contacts": [
    ...     {"first_name": "A", "company": {"name": "Co"}}, {"first_name": "B"}]}]
    >>> discovered_contacts_frame(df, res, [0, -1]).values.tolist()
    [[0, 'r1', 'Co', 'A'], [0, 'r1', <NA>, 'B']]
    """
    codes = np.asarray(row_codes, dtype=np.int64)
    lists = [
        [d for d in r.get("discovered_contacts") or () if isinstance(d, dict)]
        if isinstance(r, dict)
        else []
        for r in results
    ]
    k = np.fromiter((len(x) for x in lists), np.int64, len(lists))
    flat_dicts = [d for x in lists for d in x]
    cols: dict[str, Any] = {}
    _generic(flat_dicts, "", frozenset(), cols)
    contacts = pd.DataFrame(cols, index=pd.RangeIndex(len(flat_dicts)))
    offsets = np.concatenate([[0], np.cumsum(k)[:-1]]) if len(k) else np.zeros(0, np.int64)
    per_row = np.where(codes >= 0, np.append(k, 0)[codes], 0)
    rows = np.flatnonzero(per_row > 0)
    counts = per_row[rows]
    total = int(counts.sum())
    row_pos = np.repeat(rows, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    take = np.repeat(offsets[codes[rows]], counts) + (np.arange(total) - starts)
    out: dict[str, Any] = {"input_position": row_pos.astype(np.int64)}
    idx = df.index.take(row_pos)
    if isinstance(idx, pd.MultiIndex):
        for i, name in enumerate(idx.names):
            label = f"input_{name}" if name is not None else f"input_index_{i}"
            out[label] = idx.get_level_values(i)
    else:
        out["input_index"] = idx
    head = pd.DataFrame(out, index=pd.RangeIndex(total))
    body = contacts.take(take).reset_index(drop=True)
    return pd.concat([head, body], axis=1)
