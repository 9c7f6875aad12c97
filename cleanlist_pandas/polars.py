"""``pl_df.cleanlist``: the same enrichment for a ``polars.DataFrame``, Polars in, Polars out.

``import cleanlist_pandas`` registers this namespace when Polars is importable (the extra
``cleanlist-pandas[polars]`` installs Polars and pyarrow). Every method takes the arguments
of the pandas accessor (:class:`cleanlist_pandas.accessor.CleanlistAccessor`) and runs the
very same pandas path; only the frames are converted at the edges:

- **in**: only the columns the run reads (the mapped contact columns, the email/phone
  columns ``only_missing=``/``fill=`` read, and any column that starts with ``prefix``, so a
  name clash is reported exactly as for pandas) are handed to pandas, through Arrow without
  a copy (``to_pandas(use_pyarrow_extension_array=True)``); the other columns never leave
  Polars. ``where=`` is read on the Polars frame — a boolean ``pl.Series``, an expression
  (``where=pl.col("Country") == "DE"``), a function of the frame returning either, or a
  boolean array — and handed over by row position.
- **out**: the ``cl_*`` columns go back through Arrow (``pl.from_pandas``) and are appended
  to the caller's frame with ``hstack``: the input columns come back as they went in (same
  dtypes, nothing converted twice; with ``fill=`` the filled column comes back from the run),
  and rows keep their order. Polars has no index, so row
  *position* is the key, as it is on the pandas side; a resume (run the same call again)
  is keyed by the contacts, so its rows come back in the same order too.

Frames returned inside exceptions (``EnrichmentInterrupted.partial_result``, the
``partial_result`` of ``errors="raise"``) are Polars frames as well, and so is
``clp.last_result()`` after a run on a Polars frame (the namespace puts its frame in place
of the pandas one the run made). ``wait=False`` returns a :class:`PolarsEnrichmentJob`
whose ``result()`` is a Polars frame.

>>> import polars as pl, cleanlist_pandas
>>> hasattr(pl.DataFrame(), "cleanlist")
True
>>> df = pl.DataFrame({"First Name": ["Ada"], "Last Name": ["Lovelace"], "Notes": ["x"]})
>>> df.cleanlist.mapping().mapping
{'first_name': 'First Name', 'last_name': 'Last Name'}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import polars as pl

from cleanlist_pandas.accessor import CleanlistAccessor, _prospects
from cleanlist_pandas.types import EnrichmentType

if TYPE_CHECKING:
    from cleanlist_pandas.frame.mapping import MappedContacts
    from cleanlist_pandas.frame.select import OnlyMissing
    from cleanlist_pandas.run.engine import PollPolicy
    from cleanlist_pandas.run.estimate import Estimate
    from cleanlist_pandas.run.job import EnrichmentJob
    from cleanlist_pandas.run.options import Errors
    from cleanlist_pandas.run.pilot import PilotResult


# --------------------------------------------------------------------------- conversion
def _probe(df: pl.DataFrame) -> pd.DataFrame:
    """A pandas frame with ``df``'s headers and no rows: the mapping is decided by them."""
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in df.columns})


def value_columns(
    df: pl.DataFrame,
    only_missing: OnlyMissing | None = None,
    fill: bool | Mapping[str, Hashable] = False,
    columns: Mapping[str, Hashable | None] | None = None,
    enrichment_type: str = "partial",
) -> tuple[list[str], list[str]]:
    """The email/phone columns ``only_missing=`` reads and those ``fill=`` writes, found
    from the headers as on the pandas side (the same errors, raised before anything runs).

    >>> df = pl.DataFrame({"LinkedIn": ["x"], "E-mail": [None], "Mobile": ["+1"]})
    >>> value_columns(df, "email", True, enrichment_type="full")
    (['E-mail'], ['E-mail', 'Mobile'])
    """
    from cleanlist_pandas.frame.select import select

    probe = _probe(df)
    chosen = select(
        probe, only_missing=only_missing, fill=fill, columns=columns,
        enrichment_type=enrichment_type,
    )
    reads = [str(c) for c in chosen.value_columns.values()]
    writes = [str(probe.columns[p]) for p in chosen.fill_columns.values()]
    return reads, writes


def where_positions(df: pl.DataFrame, where: Any) -> Any:
    """``where=`` on a Polars frame, as the pandas side reads it by row position: a boolean
    ``pl.Series`` or expression (evaluated on ``df``), or a function of ``df`` returning
    either, becomes a numpy bool array; anything else is passed on as it is (an array or
    list is read by position there). Nulls or another dtype raise ``SelectionError``.

    >>> df = pl.DataFrame({"Country": ["DE", "FR"]})
    >>> where_positions(df, pl.col("Country") == "DE").tolist()
    [True, False]
    >>> where_positions(df, lambda d: d["Country"] == "FR").tolist()
    [False, True]
    """
    from cleanlist_pandas.errors import SelectionError

    what = "where="
    if callable(where) and not isinstance(where, pl.Series | pl.Expr):
        where = where(df)
        what = "where= (what your function returned)"
    if isinstance(where, pl.Expr):
        where = df.select(where.alias("where")).to_series()
    if not isinstance(where, pl.Series):
        return where
    if where.dtype != pl.Boolean:
        raise SelectionError(
            f"{what} must be boolean (True/False per row), got {where.dtype}; e.g. "
            "where=pl.col('Country') == 'DE'. Nothing was sent."
        )
    if where.null_count():
        first = int(where.is_null().arg_true()[0])
        raise SelectionError(
            f"{what} has {where.null_count()} null value(s), e.g. at row {first}: each row "
            "must be either sent or not. Decide with .fill_null(False); nothing was sent."
        )
    if where.len() != df.height:
        raise SelectionError(
            f"{what} has {where.len()} values for the frame's {df.height} rows; nothing "
            "was sent."
        )
    return where.to_numpy()


def source_columns(
    df: pl.DataFrame,
    columns: Mapping[str, Hashable | None] | None = None,
    prefix: str = "cl_",
    extra: Sequence[str] = (),
) -> list[str]:
    """The columns of ``df`` a run reads: the mapped contact columns (auto-detected from the
    headers, or ``columns=``), the ``extra`` ones (what ``only_missing=``/``fill=`` read),
    plus every column starting with ``prefix`` (so a clash with an output column is reported
    as on the pandas side). In ``df``'s order.

    Raises :class:`~cleanlist_pandas.MappingError` as the pandas accessor would (it lists
    every column of ``df``).

    >>> df = pl.DataFrame({"Notes": [1], "LinkedIn": ["x"], "Vorname": ["A"], "cl_x": [0]})
    >>> source_columns(df, {"first_name": "Vorname"})
    ['LinkedIn', 'Vorname', 'cl_x']
    """
    from cleanlist_pandas.frame.mapping import map_contacts

    # the mapping is decided by the headers only: a frame with the same names and no rows
    used = set(map_contacts(_probe(df), columns).mapping.values()) | set(extra)
    return [c for c in df.columns if c in used or (prefix and c.startswith(prefix))]


def to_pandas_input(
    df: pl.DataFrame,
    columns: Mapping[str, Hashable | None] | None = None,
    prefix: str = "cl_",
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """The pandas frame a run works on: :func:`source_columns` of ``df``, Arrow-backed
    (no copy of the data), ``RangeIndex`` by row position.

    >>> df = pl.DataFrame({"LinkedIn": ["linkedin.com/in/ada", None], "Notes": [1, 2]})
    >>> sub = to_pandas_input(df)
    >>> list(sub.columns), len(sub), sub["LinkedIn"].isna().tolist()
    (['LinkedIn'], 2, [False, True])
    """
    try:
        import pyarrow  # noqa: F401  (Polars converts to and from pandas through Arrow)
    except ImportError as exc:  # not installed, or built for another numpy
        raise ImportError(
            f"Polars frames need a working pyarrow ({exc}): pip install "
            "'cleanlist-pandas[polars]' (with numpy 1.x, pyarrow<26)"
        ) from exc
    return df.select(source_columns(df, columns, prefix, extra)).to_pandas(
        use_pyarrow_extension_array=True
    )


def with_output_columns(
    df: pl.DataFrame, out: pd.DataFrame, n_input: int, filled: Sequence[str] = ()
) -> pl.DataFrame:
    """``df`` (Polars, untouched) with the output columns of ``out`` (the pandas result of
    a run on ``n_input`` of its columns) appended, by row position; the ``filled`` input
    columns (``fill=``) are taken from ``out`` too.

    >>> df = pl.DataFrame({"a": [1, 2]})
    >>> out = pd.DataFrame({"a": [1, 2], "cl_status": pd.array(["enriched", None], "string")})
    >>> with_output_columns(df, out, 1).rows()
    [(1, 'enriched'), (2, None)]
    """
    if len(out) != df.height:
        raise ValueError(f"the result has {len(out)} rows, the frame {df.height}")
    new = out.iloc[:, n_input:]
    base = df
    if filled:
        base = df.with_columns(
            pl.from_pandas(out[name].reset_index(drop=True)).alias(name) for name in filled
        )
    if new.shape[1] == 0:
        return base.clone()
    return base.hstack(pl.from_pandas(new.reset_index(drop=True)))


class _Edges:
    """One run's conversion: the Polars frame, and the pandas frame handed to the run."""

    def __init__(
        self,
        df: pl.DataFrame,
        columns: Mapping[str, Hashable | None] | None,
        prefix: str,
        *,
        only_missing: OnlyMissing | None = None,
        fill: bool | Mapping[str, Hashable] = False,
        enrichment_type: str = "partial",
    ) -> None:
        self.df = df
        reads, self.filled = value_columns(df, only_missing, fill, columns, enrichment_type)
        self.pandas = to_pandas_input(df, columns, prefix, [*reads, *self.filled])

    def back(self, out: pd.DataFrame) -> pl.DataFrame:
        """The Polars frame the call returns for the run's pandas frame ``out`` (also
        ``clp.last_result()`` from now on)."""
        frame = with_output_columns(self.df, out, self.pandas.shape[1], self.filled)
        _in_place_of(out, frame)
        return frame

    def convert_partial(self, exc: BaseException) -> None:
        """An exception carrying a pandas ``partial_result`` now carries the Polars one."""
        partial = getattr(exc, "partial_result", None)
        if isinstance(partial, pd.DataFrame):
            exc.partial_result = self.back(partial)  # type: ignore[attr-defined]


def _in_place_of(pandas_frame: pd.DataFrame, polars_frame: pl.DataFrame) -> None:
    """``clp.last_result()`` gives the Polars frame where the run left its pandas one."""
    from cleanlist_pandas.run.job import replace_last_result

    replace_last_result(pandas_frame, polars_frame)


class PolarsEnrichmentJob:
    """The handle of ``pl_df.cleanlist.enrich(wait=False)``: an
    :class:`~cleanlist_pandas.EnrichmentJob` whose :meth:`result` is a ``polars.DataFrame``.

    Every other attribute (``job_id``, ``progress``, ``done()``, ``cancel()``, the reprs)
    is the pandas job's; ``prospects`` is converted to Polars.

    >>> job = pl_df.cleanlist.enrich(wait=False)   # doctest: +SKIP
    >>> out = job.result()                         # a polars.DataFrame  # doctest: +SKIP
    """

    def __init__(self, job: EnrichmentJob, edges: _Edges) -> None:
        self._job = job
        self._edges = edges
        self._frame: pl.DataFrame | None = None

    def result(self, timeout: float | None = None) -> pl.DataFrame:
        """Wait for the end and return the enriched Polars frame (raises/warns per
        ``errors=``)."""
        if self._frame is None:
            try:
                out = self._job.result(timeout)
            except BaseException as exc:
                self._edges.convert_partial(exc)
                raise
            self._frame = self._edges.back(out)
        return self._frame

    @property
    def prospects(self) -> pl.DataFrame | None:
        """``prospecting_only``: the long frame of discovered contacts, as Polars."""
        p = self._job.prospects
        return None if p is None else pl.from_pandas(p)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)

    def __repr__(self) -> str:
        return repr(self._job)

    def _repr_html_(self) -> str:
        return self._job._repr_html_()


# --------------------------------------------------------------------------- namespace
@pl.api.register_dataframe_namespace("cleanlist")
class CleanlistPolarsNamespace:
    """Cleanlist enrichment for a Polars frame of leads: ``pl_df.cleanlist.enrich()``.

    Same methods and arguments as the pandas accessor; frames come back as Polars.

    >>> import polars as pl
    >>> pl.DataFrame({"LinkedIn": ["x"]}).cleanlist.mapping().mapping
    {'linkedin_url': 'LinkedIn'}
    """

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def enrich(
        self,
        enrichment_type: EnrichmentType = "partial",
        columns: Mapping[str, Hashable | None] | None = None,
        *,
        prefix: str = "cl_",
        max_credits: float | None = None,
        where: Any = None,
        only_missing: OnlyMissing | None = None,
        fill: bool | Mapping[str, Hashable] = False,
        cache: bool = True,
        progress: bool = True,
        webhook_url: str | None = None,
        wait: bool = True,
        errors: Errors = "warn",
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        resend_unknown: bool = False,
        poll: PollPolicy | None = None,
    ) -> pl.DataFrame | PolarsEnrichmentJob:
        """Enrich the rows; return a NEW Polars frame: the input's columns, then the
        ``cl_*`` columns, same row order. See the pandas ``df.cleanlist.enrich()`` for the
        arguments; ``where=`` also takes an expression (``pl.col("Country") == "DE"``);
        ``wait=False`` returns a :class:`PolarsEnrichmentJob`.

        >>> out = pl_df.cleanlist.enrich("full")                  # doctest: +SKIP
        >>> out.select("cl_email", "cl_phone", "cl_status")       # doctest: +SKIP
        """
        where = where_positions(self._df, where)
        edges = _Edges(
            self._df, columns, prefix, only_missing=only_missing, fill=fill,
            enrichment_type=enrichment_type,
        )
        kwargs = {k: v for k, v in locals().items() if k not in ("self", "edges")}
        try:
            result = CleanlistAccessor(edges.pandas).enrich(**kwargs)
        except BaseException as exc:
            edges.convert_partial(exc)
            raise
        if isinstance(result, pd.DataFrame):
            return edges.back(result)
        return PolarsEnrichmentJob(result, edges)

    async def aenrich(
        self,
        enrichment_type: EnrichmentType = "partial",
        columns: Mapping[str, Hashable | None] | None = None,
        *,
        prefix: str = "cl_",
        **kwargs: Any,
    ) -> pl.DataFrame:
        """``await pl_df.cleanlist.aenrich()``: :meth:`enrich` for async code (keyword
        arguments as for :meth:`enrich`, without ``wait``).

        >>> out = await pl_df.cleanlist.aenrich("full")           # doctest: +SKIP
        """
        if "where" in kwargs:
            kwargs["where"] = where_positions(self._df, kwargs["where"])
        edges = _Edges(
            self._df, columns, prefix, only_missing=kwargs.get("only_missing"),
            fill=kwargs.get("fill", False), enrichment_type=enrichment_type,
        )
        try:
            out = await CleanlistAccessor(edges.pandas).aenrich(
                enrichment_type, columns, prefix=prefix, **kwargs
            )
        except BaseException as exc:
            edges.convert_partial(exc)
            raise
        return edges.back(out)

    def estimate(
        self,
        enrichment_type: EnrichmentType = "partial",
        columns: Mapping[str, Hashable | None] | None = None,
        *,
        max_credits: float | None = None,
        where: Any = None,
        only_missing: OnlyMissing | None = None,
        fill: bool | Mapping[str, Hashable] = False,
        cache: bool = True,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
    ) -> Estimate:
        """What :meth:`enrich` would do (rows, left out by where=/only_missing= and the
        credits saved, valid, duplicates, cached, to send, worst-case and expected credits,
        balance); spends nothing and sends no bulk request.

        >>> pl_df.cleanlist.estimate("full")                      # doctest: +SKIP
        Cleanlist estimate
          rows                10,000 ...
        """
        where = where_positions(self._df, where)
        edges = _Edges(
            self._df, columns, "", only_missing=only_missing, fill=fill,
            enrichment_type=enrichment_type,
        )
        return CleanlistAccessor(edges.pandas).estimate(
            enrichment_type,
            columns,
            max_credits=max_credits,
            where=where,
            only_missing=only_missing,
            fill=fill,
            cache=cache,
            api_key=api_key,
            base_url=base_url,
            client=client,
        )

    def pilot(
        self,
        n: int = 200,
        enrichment_type: EnrichmentType = "partial",
        columns: Mapping[str, Hashable | None] | None = None,
        *,
        where: Any = None,
        only_missing: OnlyMissing | None = None,
        **kwargs: Any,
    ) -> PilotResult:
        """Enrich a random sample of ``n`` contacts to measure the find rates and the
        expected cost of the rest; see the pandas ``df.cleanlist.pilot()``. ``.enriched``
        is a Polars frame (the sampled rows, every column, and the ``cl_*`` columns).

        >>> p = pl_df.cleanlist.pilot(200, "full")                # doctest: +SKIP
        """
        where = where_positions(self._df, where)
        edges = _Edges(
            self._df, columns, kwargs.get("prefix", "cl_"), only_missing=only_missing,
            enrichment_type=enrichment_type,
        )
        n_input = edges.pandas.shape[1]
        try:
            res = CleanlistAccessor(edges.pandas).pilot(
                n, enrichment_type, columns, where=where, only_missing=only_missing, **kwargs
            )
        except BaseException as exc:  # the sample's rows so far, as Polars (by position)
            partial = getattr(exc, "partial_result", None)
            if isinstance(partial, pd.DataFrame):
                rows = self._df[partial.index.tolist()]
                exc.partial_result = with_output_columns(rows, partial, n_input)  # type: ignore[attr-defined]
                _in_place_of(partial, exc.partial_result)  # type: ignore[attr-defined]
            raise
        sample = self._df[res.positions.tolist()]
        enriched = with_output_columns(sample, res.enriched, n_input)
        _in_place_of(res.enriched, enriched)
        return dataclasses.replace(res, enriched=enriched)  # type: ignore[arg-type]

    def mapping(self, columns: Mapping[str, Hashable | None] | None = None) -> MappedContacts:
        """The detected column mapping and the normalized contacts (no network).

        >>> m = pl.DataFrame({"Full Name": ["Ada Lovelace"], "Company": ["X"]}).cleanlist.mapping()
        >>> m.contacts[["first_name", "last_name"]].values.tolist()
        [['Ada', 'Lovelace']]
        """
        return CleanlistAccessor(_Edges(self._df, columns, "").pandas).mapping(columns)

    def prospects(
        self, columns: Mapping[str, Hashable | None] | None = None, **kwargs: Any
    ) -> pl.DataFrame:
        """``prospecting_only``: the discovered contacts as a long Polars frame, one row per
        (input row, contact), linked by ``input_position`` (and ``input_index``, the same
        position: Polars has no index). Keyword arguments as for :meth:`enrich`.

        >>> pl_df.cleanlist.prospects(max_credits=100)            # doctest: +SKIP
        """
        edges = _Edges(self._df, columns, kwargs.get("prefix", "cl_"))
        try:
            wide, long = _prospects(edges.pandas, columns, kwargs)
        except BaseException as exc:
            edges.convert_partial(exc)
            raise
        edges.back(wide)  # clp.last_result(): the Polars frame enrich() would return
        return pl.from_pandas(long)

    def resume(self, job_id: str, **kwargs: Any) -> pl.DataFrame | PolarsEnrichmentJob:
        """Resume journaled job ``job_id`` on this frame (the same rows it was started on);
        journaled workflows are polled, never submitted again. Keyword arguments as for
        :meth:`enrich`; the enrichment type comes from the journal.

        >>> out = pl_df.cleanlist.resume("job_3f2a9c...")         # doctest: +SKIP
        """
        if "where" in kwargs:
            kwargs["where"] = where_positions(self._df, kwargs["where"])
        edges = _Edges(
            self._df, kwargs.get("columns"), kwargs.get("prefix", "cl_"),
            only_missing=kwargs.get("only_missing"), fill=kwargs.get("fill", False),
            enrichment_type=kwargs.get("enrichment_type", "partial"),
        )
        try:
            result = CleanlistAccessor(edges.pandas).resume(job_id, **kwargs)
        except BaseException as exc:
            edges.convert_partial(exc)
            raise
        if isinstance(result, pd.DataFrame):
            return edges.back(result)
        return PolarsEnrichmentJob(result, edges)


__all__ = [
    "CleanlistPolarsNamespace",
    "PolarsEnrichmentJob",
    "source_columns",
    "to_pandas_input",
    "value_columns",
    "where_positions",
    "with_output_columns",
]
