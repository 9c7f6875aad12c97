"""``df.cleanlist.pilot()``: enrich a random sample first, measure what is found, and say
what the rest will cost — before committing to the whole frame.

The worst case overstates a ``full`` run by up to 11x (phones are found far less often than
emails, and only what is found is charged), so a pilot of a few hundred contacts answers
"what will this cost?" for a few hundred credits at most:

1. The sample: ``n`` distinct contacts among those ``enrich()`` would send with the same
   arguments (valid, not left out by ``where=``/``only_missing=``, deduplicated), drawn by
   a keyed hash of each contact under ``seed``. It depends only on the set of contacts and
   the seed — not on the row order — so the same call draws the same sample, and running it
   again is answered by the cache (and the journal resumes an interrupted pilot).
2. The run: an ordinary enrichment of the first row of each sampled contact, marked
   ``pilot`` (``Options.pilot``, the ``JobPlanned``/``JobFinished`` events, the run's
   state), capped at the sample's worst case unless ``max_credits`` says otherwise. Its
   results go to the cache, so the full ``enrich()`` afterwards never pays for them again.
3. The rates: per kind of value found (email, phone; for ``prospecting_only`` contacts
   discovered) and per ``cl_status``, with a 95% **Wilson score interval**; the expected
   credits of the rest are ``rest × Σ(rate × cost)`` with the costs of the spec
   (``FOUND_COSTS``), the interval from the rates' bounds (each at 95%, so the combined
   range is conservative). Failed look-ups are free and count as looked up (they cost
   nothing in the full run either); rows with no outcome (a stopped run) are left out.
4. The record: the counts (never a personal field) are kept in the local store next to the
   cache, keyed by enrichment type and column mapping; ``estimate()`` shows the latest as
   "expected (from pilot)".

The rates themselves (:class:`~.rates.PilotRates`, the Wilson intervals, the sample's
draw, where the rates are kept) are :mod:`.rates`.

>>> res = df.cleanlist.pilot(200, "full")                       # doctest: +SKIP
>>> res.expected_credits, res.expected_low, res.expected_high   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import (
    MAX_UNIT_COST,
)
from cleanlist_pandas._display import html_table, text_table
from cleanlist_pandas.errors import UserValueError
from cleanlist_pandas.events import Event, JobFinished, Listener
from cleanlist_pandas.frame.merge import check_output_names
from cleanlist_pandas.run.options import Options, check_options, option_args
from cleanlist_pandas.run.prepare import LATER, Prepared, ToSend, for_server, sync_client_for
from cleanlist_pandas.run.rates import (
    KIND_NAMES,
    LOOKED_UP,
    PilotRates,
    Rate,
    mapping_key,
    sample_ids,
)
from cleanlist_pandas.store.cache import ResultCache
from cleanlist_pandas.store.provenance import scope_of

if TYPE_CHECKING:
    from cleanlist_pandas.run.job import ViewFactory

__all__ = ["SMALL_SAMPLE", "PilotResult", "pilot"]

@dataclass(frozen=True)
class PilotResult:
    """What a pilot found out (see the module doc).

    Attributes:
        rates: the counts (:class:`PilotRates`); ``email_rate``, ``phone_rate`` and
            ``status_rates`` read them with their 95% Wilson score intervals.
        population: the distinct contacts ``enrich()`` would consider (the sample's frame).
        seed: the sample's seed (the same seed draws the same sample).
        credits_spent: what this call paid (0 for results the cache already had).
        from_cache: sampled contacts answered by the cache (or by the workflows of an
            earlier, interrupted run of the same pilot), not by this call's requests.
        rest: the contacts the full ``enrich()`` would still send after the pilot.
        expected_credits, expected_low, expected_high: the rest's expected credits and
            their interval.
        worst_case_credits: the rest's worst case (``rest × the type's maximum``).
        job_id, workflow_ids: the pilot's journal job and the workflows it submitted.
        enriched: the enriched sample (the first row of each sampled contact, with its
            index label, in the input's order, and the ``cl_*`` columns).
        positions: the sample's row positions in the input frame.
    """

    rates: PilotRates
    population: int
    seed: int
    credits_spent: float
    from_cache: int
    rest: int
    expected_credits: float
    expected_low: float
    expected_high: float
    worst_case_credits: float
    job_id: str = ""
    workflow_ids: tuple[str, ...] = ()
    enriched: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    positions: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)

    @property
    def enrichment_type(self) -> str:
        """The pilot's enrichment type."""
        return self.rates.enrichment_type

    @property
    def sample(self) -> int:
        """Contacts in the sample."""
        return self.rates.sample

    @property
    def email_rate(self) -> Rate:
        """Share of looked-up contacts with an email found, with its interval."""
        return self.rates.rate("email")

    @property
    def phone_rate(self) -> Rate:
        """Share of looked-up contacts with a phone found, with its interval."""
        return self.rates.rate("phone")

    @property
    def status_rates(self) -> dict[str, Rate]:
        """Share of the sample per ``cl_status``, with its interval."""
        return {s: self.rates.status_rate(s) for s in self.rates.statuses}

    def _found_rows(self) -> list[tuple[str, Rate]]:
        return [(KIND_NAMES[k], self.rates.rate(k)) for k in self.rates.kinds()]

    def _rate_rows(self) -> list[tuple[str, Rate]]:
        statuses = [(f"status {s}", r) for s, r in self.status_rates.items()]
        return self._found_rows() + statuses

    def to_frame(self) -> pd.DataFrame:
        """The rates as a DataFrame: ``found``, ``n``, ``rate``, ``low``, ``high`` per
        row (what is found, then each ``cl_status``); the credits in ``.attrs``.

        >>> p.to_frame().loc["email found", ["rate", "low", "high"]]   # doctest: +SKIP
        """
        rows = self._rate_rows()
        frame = pd.DataFrame(
            {
                "found": [r.found for _k, r in rows],
                "n": [r.n for _k, r in rows],
                "rate": [r.rate for _k, r in rows],
                "low": [r.low for _k, r in rows],
                "high": [r.high for _k, r in rows],
            },
            index=pd.Index([k for k, _r in rows], name="pilot"),
        )
        frame.attrs.update(
            {
                str(k): v
                for k, v in self.to_series().items()
                if not str(k).endswith(("_low", "_high"))
            }
        )
        frame.attrs["interval"] = "95% Wilson score interval"
        return frame

    def to_series(self) -> pd.Series:
        """The numbers as one ``pandas.Series``.

        >>> p.to_series()[["email_rate", "expected_credits"]]       # doctest: +SKIP
        """
        data: dict[str, Any] = {
            "enrichment_type": self.enrichment_type,
            "sample": self.sample,
            "population": self.population,
            "seed": self.seed,
            "looked_up": self.rates.looked_up,
        }
        for kind in self.rates.kinds():
            r = self.rates.rate(kind)
            data[f"{kind}_rate"], data[f"{kind}_low"], data[f"{kind}_high"] = r.rate, r.low, r.high
        data.update(
            credits_spent=self.credits_spent,
            from_cache=self.from_cache,
            rest=self.rest,
            expected_credits=self.expected_credits,
            expected_low=self.expected_low,
            expected_high=self.expected_high,
            worst_case_credits=self.worst_case_credits,
            job_id=self.job_id,
        )
        return pd.Series(data, dtype=object, name="pilot")

    def title(self) -> str:
        """One line: the type, the sample against the population, the seed."""
        return (
            f"Cleanlist pilot ({self.enrichment_type}): {self.sample:,} of "
            f"{self.population:,} contacts (seed {self.seed})"
        )

    def _lines(self) -> list[tuple[str, str]]:
        st = self.rates.statuses
        order = [s for s in LOOKED_UP if st.get(s)] + [s for s in st if s not in LOOKED_UP]
        rows = [
            (
                "looked up",
                f"{self.rates.looked_up:,} of {self.sample:,}: "
                + ", ".join(f"{st[s]:,} {s.replace('_', ' ')}" for s in order),
            )
        ]
        rows += [(name, r.text()) for name, r in self._found_rows()]
        if self.enrichment_type == "prospecting_only":
            mid, low, high = self.rates.cost_per_contact()
            rows.append(("prospects per contact", f"{mid:.2f} (95% CI {low:.2f}–{high:.2f})"))
        spent = f"{self.credits_spent:,.0f}"
        if self.from_cache:
            spent += f" ({self.from_cache:,} of the sample from the cache, free)"
        rows += [
            ("credits spent", spent),
            ("rest of the frame", f"{self.rest:,} contact{'' if self.rest == 1 else 's'} to send"),
            (
                "expected credits",
                f"{self.expected_credits:,.0f} (95% CI {self.expected_low:,.0f}–"
                f"{self.expected_high:,.0f})"
                if self.expected_credits == self.expected_credits  # not NaN
                else f"unknown: nothing was looked up (0–{self.expected_high:,.0f})",
            ),
            ("worst case", f"{self.worst_case_credits:,.0f}"),
            (
                "interval",
                "95% Wilson score interval per rate; the expected range combines the "
                "rates' bounds",
            ),
        ]
        if self.small_sample:
            rows.append(("note", self.small_sample_note()))
        if self.job_id:
            rows.append(("job", self.job_id))
        return rows

    @property
    def small_sample(self) -> bool:
        """True when fewer than :data:`SMALL_SAMPLE` contacts were looked up while more were
        there to draw: the interval is then too wide to plan a budget by."""
        return self.rates.looked_up < SMALL_SAMPLE and self.population > self.sample

    def small_sample_note(self) -> str:
        """The warning a small sample's result carries, with its own numbers.

        >>> print(df.cleanlist.pilot(10, "full").small_sample_note())  # doctest: +SKIP
        a sample of 10 is small: the expected credits' interval is wide (25–182, 7× wide); ...
        """
        low, high = self.expected_low, self.expected_high
        width = f" ({low:,.0f}–{high:,.0f}" + (
            f", {high / low:.0f}× wide)" if low > 0 and high / low >= 2 else ")"
        )
        return (
            f"a sample of {self.rates.looked_up:,} is small: the expected credits' interval "
            f"is wide{width}; pilot({SMALL_SAMPLE * 4}) or more narrows it to a budget you "
            "can plan by"
        )

    def __repr__(self) -> str:
        return text_table(self.title(), self._lines())

    def _repr_html_(self) -> str:
        return html_table(self.title(), self._lines(), align="left")


#: A pilot that looked up fewer contacts says its interval is wide (a 95% Wilson interval
#: at n = 50 spans about ±13 points around a 50% rate; at n = 10, ±25).
SMALL_SAMPLE: Final = 50


class _Finished:
    """Listens for the pilot run's end: its job id and workflows."""

    def __init__(self) -> None:
        self.event: JobFinished | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobFinished):
            self.event = event


def pilot_call(options: Options, n: int, seed: int) -> str:
    """The call that runs a pilot again (for "run the same call again" advice).

    >>> pilot_call(Options("full", only_missing="email"), 200, 0)
    "df.cleanlist.pilot(200, 'full', seed=0, only_missing='email')"
    """
    args = [repr(n), repr(options.enrichment_type), f"seed={seed!r}", *option_args(options)]
    return f"df.cleanlist.pilot({', '.join(args)})"


def pilot(
    df: pd.DataFrame,
    options: Options,
    *,
    n: int = 200,
    seed: int = 0,
    api_key: str | None = None,
    base_url: str | None = None,
    client: Any = None,
    view: ViewFactory | None = None,
    listeners: Sequence[Listener] = (),
) -> PilotResult:
    """Enrich a sample of ``n`` contacts of ``df`` and measure (see the module doc).

    ``options`` are ``enrich()``'s (``where``, ``only_missing``, ``columns``, ``max_credits``
    — default: the sample's worst case — ``cache``, ``errors``, ``poll``…); ``fill`` does not
    apply. Nothing is sent before the sample and every option were checked.

    >>> res = pilot(df, Options("full"), n=200, client=client)   # doctest: +SKIP
    >>> res.expected_credits, res.worst_case_credits             # doctest: +SKIP
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise UserValueError(f"pilot: n must be a whole number >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise UserValueError(f"pilot: seed must be a whole number, got {seed!r}")
    n, seed = int(n), int(seed)
    options = replace(options, fill=False, pilot=True)
    check_options(options)
    check_output_names(df, options.enrichment_type, options.prefix)  # before any request
    # The population: what enrich() would consider with the same arguments (no request).
    prep = Prepared(df, replace(options, max_credits=None), scope=LATER)
    try:
        if not prep.sendable:
            raise UserValueError(f"pilot: no contact to sample: {prep.nothing_to_send()}")
        sync_client, owned = sync_client_for(api_key, base_url, client)
    except BaseException:
        prep.close()
        raise
    try:
        return _pilot(df, options, prep, n, seed, sync_client, view, listeners)
    finally:
        prep.close()
        if owned:
            sync_client.close()


def _pilot(
    df: pd.DataFrame,
    options: Options,
    prep: Prepared,
    n: int,
    seed: int,
    client: Any,
    view: ViewFactory | None,
    listeners: Sequence[Listener],
) -> PilotResult:
    from cleanlist_pandas.run.job import enrich  # the job module imports the estimate's

    t = options.enrichment_type
    options, cache_dir = for_server(options, client.sandbox_info())
    try:
        prep.bind(scope_of(client, cache_dir), cache_dir=cache_dir)
        prep.open_job(create=False)
        p = prep.plan
        ids = sample_ids(p.fingerprints, n, seed)
        positions = np.sort(p.first_rows[ids])  # the first row of each, in the input's order
        chosen = set(p.fingerprints[ids].tolist())
        send = prep.to_send
        to_send = send.fingerprints if isinstance(send, ToSend) else [fp for fp, _c in send]
        rest = sum(1 for fp in to_send if fp not in chosen)
        population = p.n_unique
        mapping = dict(prep.mapped.mapping)
        scope = prep.scope
    finally:
        prep.close()
    sample = df.take(positions)
    budget = (
        float(len(positions) * MAX_UNIT_COST[t])
        if options.max_credits is None
        else options.max_credits
    )
    run_options = replace(
        options,
        where=None,  # applied already: the sample holds only rows they keep
        only_missing=None,
        max_credits=budget,
        call=pilot_call(options, n, seed),
        cache_dir=cache_dir,
    )
    finished = _Finished()
    out = enrich(
        sample,
        run_options,
        client=client,
        wait=True,
        listeners=[finished, *listeners],
        view=view,
    )
    assert isinstance(out, pd.DataFrame)
    prefix = options.prefix
    rates = PilotRates.of_frame(out, t, prefix)
    stored_at = time.time()
    if rates.looked_up and scope is not None:
        store = ResultCache(cache_dir, scope=scope)
        try:
            store.put_pilot(t, mapping_key(mapping), rates.to_record())
        finally:
            store.close()
    rates = replace(rates, stored_at=stored_at)
    mid, low, high = rates.expected(rest)
    credits = out[prefix + "credits"].fillna(0).astype(float).sum() if len(out) else 0.0
    event = finished.event
    return PilotResult(
        rates=rates,
        population=population,
        seed=seed,
        credits_spent=float(credits),
        from_cache=_from_cache(out, prefix, event),
        rest=rest,
        expected_credits=mid,
        expected_low=low,
        expected_high=high,
        worst_case_credits=float(rest * MAX_UNIT_COST[t]),
        job_id=event.job_id if event is not None else "",
        workflow_ids=tuple(event.workflow_ids) if event is not None else (),
        enriched=out,
        positions=positions,
    )


def _from_cache(out: pd.DataFrame, prefix: str, event: JobFinished | None) -> int:
    """Sampled contacts with a result that no workflow of this call fetched: the cache
    (or an earlier, interrupted run of the same pilot) had it."""
    if not len(out):
        return 0
    wf = out[prefix + "workflow_id"].astype(object).to_numpy()
    mine = set(event.workflow_ids) if event is not None else set()
    has_result = np.isin(out[prefix + "status"].astype(object).to_numpy(), LOOKED_UP)
    fetched = np.fromiter((w in mine for w in wf.tolist()), bool, len(wf))
    return int((has_result & ~fetched).sum())
