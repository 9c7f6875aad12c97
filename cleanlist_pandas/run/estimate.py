"""``estimate()``: what a run would do — rows, rows left out by ``where=``/``only_missing=``
and the credits that saves, valid, duplicates, cached, to send, the worst case, the expected
credits when a pilot of the same type and mapping was run, the balance — computed without a
bulk request and without leaving anything behind. When over a third of the rows would be
skipped for a missing field, it names the unused columns that look like that field and the
``columns=`` call that maps them (:meth:`~cleanlist_pandas.frame.mapping.MappedContacts.hint`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cleanlist_pandas._constants import MAX_CONTACTS_PER_REQUEST
from cleanlist_pandas._display import html_table, text_table
from cleanlist_pandas._sandbox_info import origin_of
from cleanlist_pandas.config import session_base_url
from cleanlist_pandas.errors import CleanlistError, ConfigurationError, OutputColumnCollision
from cleanlist_pandas.frame.mapping import MappingHint
from cleanlist_pandas.frame.merge import check_output_names
from cleanlist_pandas.run.options import Options
from cleanlist_pandas.run.prepare import Prepared, for_server, sync_client_for
from cleanlist_pandas.run.rates import PilotRates, latest_rates
from cleanlist_pandas.store.provenance import scope_of, sole_scope

__all__ = ["Estimate", "estimate"]

#: The row of the table that holds the call fixing the mapping (never wrapped: it is copied).
_FIX = "    fix"


@dataclass(frozen=True)
class Estimate:
    """What a run would do, computed without spending anything or sending a bulk request.

    Text (``print``/``repr``) and HTML (Jupyter) forms; ``to_series()`` for pandas.
    ``expected`` is (expected, low, high) credits from the latest pilot of the same type and
    column mapping (``pilot``), or None when there is none. ``hint``: over a third of the
    rows are skipped for a missing field and unused columns look like it (shown with the
    ``columns=`` call that maps them), else None.
    """

    counts: Mapping[str, Any]
    balance: float | None
    resumable_workflows: int = 0
    note: str | None = None
    mapping: str = ""
    #: where= or only_missing= was given (the rows left out are shown, even none)
    selected: bool = False
    #: fill=: "email → 'E-mail'", or "" when not asked
    fill: str = ""
    pilot: PilotRates | None = None
    expected: tuple[float, float, float] | None = None
    hint: MappingHint | None = None

    @property
    def worst_case_credits(self) -> float:
        """The most the run can cost."""
        return float(self.counts["worst_case_credits"])

    @property
    def sufficient(self) -> bool | None:
        """Whether the balance covers the worst case (None when the balance is unknown)."""
        if self.balance is None:
            return None
        return self.balance >= self.worst_case_credits

    def to_series(self) -> pd.Series:
        """The numbers as a ``pandas.Series``."""
        nested = ("invalid_by_reason", "excluded_by", "credits_saved_by")
        data = {k: v for k, v in self.counts.items() if k not in nested}
        for reason, n in self.counts.get("excluded_by", {}).items():
            data[f"excluded: {reason}"] = n
        for reason, n in self.counts.get("invalid_by_reason", {}).items():
            data[f"invalid: {reason}"] = n
        if self.expected is not None:
            for k, v in zip(("", "_low", "_high"), self.expected, strict=True):
                data[f"expected_credits{k}"] = v
        data["balance"] = self.balance
        data["sufficient"] = self.sufficient
        return pd.Series(data, dtype=object, name="estimate")

    def _lines(self, *, cli: bool = False) -> list[tuple[str, str]]:
        c = self.counts
        rows = [
            ("enrichment type", str(c["enrichment_type"])),
            ("rows", f"{c['rows']:,}"),
        ]
        if c.get("excluded") or self.selected:
            rows.append(("left out", f"{c.get('excluded', 0):,}"))
            rows += [
                (f"  by {k}=", f"{n:,}") for k, n in c.get("excluded_by", {}).items() if n
            ]
            rows.append(
                ("  credits saved", f"{c.get('credits_saved', 0):,.0f} (their worst case)")
            )
        rows += [
            ("valid", f"{c['valid']:,}"),
            ("invalid", f"{c['invalid']:,}"),
        ]
        rows += [(f"  {r}", f"{n:,}") for r, n in c.get("invalid_by_reason", {}).items()]
        if self.hint is not None:
            h = self.hint
            fix = f"add {h.cli_call}" if cli else h.call
            rows += [("  mapping hint", h.summary), (_FIX, fix)]
        rows += [
            ("duplicates", f"{c['duplicates']:,}"),
            ("already cached", f"{c['cached']:,}"),
            ("to send", f"{c['to_send']:,}"),
            *(
                [("  awaiting credits", f"{c['awaiting_credits']:,} rows")]
                if c.get("awaiting_credits")
                else []
            ),
            ("chunks (requests)", f"{c['chunks']:,}"),
            ("worst-case credits", f"{c['worst_case_credits']:,.0f}"),
            *self._expected_lines(),
            ("balance", "unknown" if self.balance is None else f"{self.balance:,.2f}"),
            (
                "sufficient",
                {None: "unknown", True: "yes", False: "no"}[self.sufficient],
            ),
        ]
        if self.fill:
            rows.append(("fill", self.fill))
        if self.resumable_workflows:
            rows.append(("resumable workflows", str(self.resumable_workflows)))
        if self.note:
            rows.append(("note", self.note))
        return rows

    def _expected_lines(self) -> list[tuple[str, str]]:
        if self.expected is None or self.pilot is None:
            return []
        mid, low, high = self.expected
        when = dt.datetime.fromtimestamp(self.pilot.stored_at, dt.UTC).strftime("%Y-%m-%d")
        return [
            (
                "expected (from pilot)",
                f"{mid:,.0f} (95% CI {low:,.0f}–{high:,.0f}; pilot of "
                f"{self.pilot.sample:,} on {when})",
            )
        ]

    def text(self, *, cli: bool = False) -> str:
        """The estimate as text (the ``repr``); ``cli=True`` says a mapping hint in the
        command line's words (``-c FIELD=COLUMN``) instead of ``columns={...}``.

        >>> print(est.text())  # doctest: +SKIP
        """
        return text_table("Cleanlist estimate", self._lines(cli=cli), nowrap={_FIX})

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return html_table("Cleanlist estimate", self._lines(), align="right")


def estimate(
    df: pd.DataFrame,
    options: Options,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: Any = None,
) -> Estimate:
    """Plan a run and read the balance (a free GET); no bulk request, nothing spent.

    >>> est = df.cleanlist.estimate("full")     # doctest: +SKIP
    >>> est.worst_case_credits, est.sufficient  # doctest: +SKIP
    """
    notes: list[str] = []
    sync_client: Any = None
    owned = False
    try:
        sync_client, owned = sync_client_for(api_key, base_url, client)
    except CleanlistError as exc:  # no key: everything but the balance and the cache is local
        notes.append(f"balance not read: {type(exc).__name__}: {exc}")
    try:
        return _estimate(df, options, sync_client, notes)
    finally:
        if owned:
            sync_client.close()


def _estimate(df: pd.DataFrame, options: Options, sync_client: Any, notes: list[str]) -> Estimate:
    cache_dir = None
    if sync_client is not None:
        options, cache_dir = for_server(options, sync_client.sandbox_info())
    base_url = sync_client.base_url if sync_client is not None else session_base_url()

    def scope(d: Any) -> Any:
        try:
            if sync_client is not None:
                return scope_of(sync_client, d)
        except ConfigurationError:
            pass  # no key: as with no client
        except CleanlistError as exc:
            notes.append(
                "cached results not looked up (whose they would be is unknown): "
                f"{type(exc).__name__}: {exc}"
            )
            return None
        # no key: the one organization this machine has used at that server, if one
        found = sole_scope(d, origin_of(base_url))
        if found is None:
            notes.append("cached results not looked up: with no key, whose they are is unknown")
        return found

    prep = Prepared(df, options, cache_dir=cache_dir, scope=scope)
    try:
        prep.open_job(create=False)
        counts = prep.plan.counts()
        counts["to_send"] = len(prep.to_send)
        counts["chunks"] = -(-len(prep.to_send) // MAX_CONTACTS_PER_REQUEST)
        counts["worst_case_credits"] = prep.worst_case
        counts["awaiting_credits"] = prep.awaiting_rows()
        counts["credits_saved_by"] = prep.plan.credits_saved_by
        rates = latest_rates(
            options.enrichment_type, prep.mapped.mapping, prep.cache_dir, prep.cache, prep.scope
        )
        expected: tuple[float, float, float] | None = None
        if rates is not None:
            mid, low, high = rates.expected(len(prep.to_send))
            cap = float("inf") if options.max_credits is None else float(options.max_credits)
            expected = (min(mid, cap), min(low, cap), min(high, cap))
        balance: float | None = None
        try:
            check_output_names(df, options.enrichment_type, options.prefix)
        except OutputColumnCollision as exc:
            notes.append(f"enrich() would refuse to start: {exc}")
        if sync_client is not None:
            try:
                balance = float(sync_client.balance().credits)
            except CleanlistError as exc:
                notes.append(f"balance not read: {type(exc).__name__}: {exc}")
        return Estimate(
            counts=counts,
            balance=balance,
            resumable_workflows=prep.resumed_workflows,
            note=" ".join(notes) or None,
            mapping=prep.mapped.describe(hint=False),
            selected=options.where is not None or options.only_missing is not None,
            fill=", ".join(
                f"{f} → {df.columns[pos]!r}" for f, pos in prep.selection.fill_columns.items()
            ),
            pilot=rates,
            expected=expected,
            hint=prep.mapped.hint(prep.selection.kept),
        )
    finally:
        prep.close()
