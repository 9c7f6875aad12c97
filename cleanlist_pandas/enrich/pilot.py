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

>>> wilson(70, 100)
(0.6041..., 0.7810...)
>>> r = PilotRates("full", sample=100, looked_up=100, found={"email": 70, "phone": 10})
>>> round(r.cost_per_contact()[0], 2), r.expected(1000)[0]
(1.7, 1700.0)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import (
    CACHE_FILENAME,
    FOUND_COSTS,
    MAX_UNIT_COST,
    PROSPECTING_DISCOVERY_CAP,
)
from cleanlist_pandas._display import html_table, text_table
from cleanlist_pandas._store import default_cache_dir
from cleanlist_pandas.cache import ResultCache
from cleanlist_pandas.enrich.merge import check_output_names
from cleanlist_pandas.enrich.options import Options, check_options, option_args
from cleanlist_pandas.enrich.plan import _finalize
from cleanlist_pandas.enrich.prepare import LATER, Prepared, ToSend, for_server, sync_client_for
from cleanlist_pandas.errors import UserValueError
from cleanlist_pandas.events import Event, JobFinished, Listener
from cleanlist_pandas.provenance import Scope, scope_of

if TYPE_CHECKING:
    from cleanlist_pandas.enrich.job import ViewFactory

__all__ = [
    "CONFIDENCE",
    "PilotRates",
    "PilotResult",
    "Rate",
    "latest_rates",
    "mapping_key",
    "pilot",
    "sample_ids",
    "wilson",
]

#: The confidence of every interval of a pilot.
CONFIDENCE = 0.95
#: The standard normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054
#: Statuses with an outcome: the contact was looked up (a failed look-up is free).
LOOKED_UP = ("enriched", "not_found", "failed")
#: Rates shown per enrichment type (kinds of value found).
_KIND_NAMES = {"email": "email found", "phone": "phone found", "prospect": "prospects found"}


def wilson(found: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``found / n`` (95% by default); (0, 1)
    when ``n`` is 0. Unlike ``p ± z·se`` it stays inside [0, 1] and is right for small
    samples and rates near 0 or 1.

    >>> wilson(0, 20)
    (0.0, 0.1611...)
    """
    if n <= 0:
        return 0.0, 1.0
    p = found / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    low = 0.0 if found <= 0 else max(0.0, center - half)
    high = 1.0 if found >= n else min(1.0, center + half)
    return low, high


@dataclass(frozen=True)
class Rate:
    """``found`` of ``n``, with its 95% Wilson score interval ``low``..``high``."""

    found: int
    n: int
    low: float
    high: float

    @classmethod
    def of(cls, found: int, n: int) -> Rate:
        """The rate of ``found`` in ``n``, with its interval.

        >>> Rate.of(3, 4).rate
        0.75
        """
        low, high = wilson(found, n)
        return cls(int(found), int(n), low, high)

    @property
    def rate(self) -> float:
        """``found / n`` (NaN when ``n`` is 0)."""
        return self.found / self.n if self.n else float("nan")

    def text(self) -> str:
        """``70.0% (95% CI 60.4%–78.1%), 70 of 100``."""
        if not self.n:
            return "no outcome"
        return (
            f"{self.rate:.1%} (95% CI {self.low:.1%}–{self.high:.1%}), "
            f"{self.found:,} of {self.n:,}"
        )


@dataclass(frozen=True)
class PilotRates:
    """What a pilot measured — counts only, the record kept in the local store.

    ``found`` counts the looked-up contacts with an email (``email``), a phone (``phone``),
    at least one discovered contact (``any_prospect``), and the discovered contacts in all
    (``prospect``, with ``prospect_sq`` the sum of their squares for the interval).
    """

    enrichment_type: str
    sample: int
    looked_up: int
    found: Mapping[str, int] = field(default_factory=dict)
    statuses: Mapping[str, int] = field(default_factory=dict)
    stored_at: float = 0.0

    def rate(self, kind: str) -> Rate:
        """The share of looked-up contacts with ``kind`` found (``email``, ``phone``, or
        ``prospect``: at least one discovered contact)."""
        key = "any_prospect" if kind == "prospect" else kind
        return Rate.of(int(self.found.get(key, 0)), self.looked_up)

    def status_rate(self, status: str) -> Rate:
        """The share of the sample that ended with ``cl_status == status``."""
        return Rate.of(int(self.statuses.get(status, 0)), self.sample)

    def kinds(self) -> tuple[str, ...]:
        """What this type is charged for (``email``, ``phone``, ``prospect``)."""
        return tuple(FOUND_COSTS.get(self.enrichment_type, {}))

    def cost_per_contact(self) -> tuple[float, float, float]:
        """Expected credits per contact looked up, and its low and high bounds.

        ``Σ cost × rate`` over what the type is charged for; the bounds use each rate's
        Wilson bounds. For ``prospecting_only`` (charged per contact discovered) the mean
        discovered per contact, with a normal 95% interval clipped to [0, the cap].
        With no contact looked up, nothing is known: NaN, and the range is the whole of
        [0, worst case].
        """
        costs = FOUND_COSTS.get(self.enrichment_type, {})
        n = self.looked_up
        worst = float(MAX_UNIT_COST.get(self.enrichment_type, 0))
        if not costs:
            return 0.0, 0.0, 0.0
        if not n:
            return float("nan"), 0.0, worst
        if "prospect" in costs:
            total = float(self.found.get("prospect", 0))
            mean = total / n
            var = max(0.0, float(self.found.get("prospect_sq", 0)) / n - mean * mean)
            half = Z95 * math.sqrt(var / n) if n > 1 else float(PROSPECTING_DISCOVERY_CAP)
            unit = costs["prospect"]
            cap = float(PROSPECTING_DISCOVERY_CAP)
            return unit * mean, unit * max(0.0, mean - half), unit * min(cap, mean + half)
        mid = low = high = 0.0
        for kind, cost in costs.items():
            r = self.rate(kind)
            mid += cost * r.rate
            low += cost * r.low
            high += cost * r.high
        return mid, low, high

    def expected(self, contacts: int) -> tuple[float, float, float]:
        """Expected credits of sending ``contacts`` more contacts, with its bounds.

        >>> PilotRates("partial", 100, 100, {"email": 50}).expected(1000)
        (500.0, 403.8..., 596.1...)
        """
        mid, low, high = self.cost_per_contact()
        return contacts * mid, contacts * low, contacts * high

    def to_record(self) -> dict[str, Any]:
        """The JSON-able record kept in the store."""
        return {
            "enrichment_type": self.enrichment_type,
            "sample": self.sample,
            "looked_up": self.looked_up,
            "found": dict(self.found),
            "statuses": dict(self.statuses),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PilotRates:
        """Back from :meth:`to_record` (plus ``stored_at``)."""
        return cls(
            enrichment_type=str(record["enrichment_type"]),
            sample=int(record["sample"]),
            looked_up=int(record["looked_up"]),
            found={str(k): int(v) for k, v in dict(record.get("found", {})).items()},
            statuses={str(k): int(v) for k, v in dict(record.get("statuses", {})).items()},
            stored_at=float(record.get("stored_at", 0.0)),
        )

    @classmethod
    def of_frame(cls, out: pd.DataFrame, enrichment_type: str, prefix: str = "cl_") -> PilotRates:
        """Count a pilot's enriched sample (one row per contact).

        >>> out = pd.DataFrame({"cl_status": ["enriched", "not_found", "not_submitted"],
        ...                     "cl_email": ["a@x.io", None, None], "cl_phone": [None] * 3})
        >>> r = PilotRates.of_frame(out, "partial")
        >>> r.looked_up, dict(r.found), r.rate("email").rate
        (2, {'email': 1, 'phone': 0, 'any_prospect': 0, 'prospect': 0, 'prospect_sq': 0}, 0.5)
        """
        status = out[prefix + "status"].astype(object).to_numpy()
        looked = np.isin(status, LOOKED_UP)

        def present(name: str) -> np.ndarray:
            if prefix + name not in out.columns:
                return np.zeros(len(out), dtype=bool)
            return np.asarray(out[prefix + name].notna(), dtype=bool)

        disc = (
            out[prefix + "discovered_count"].fillna(0).to_numpy(dtype=np.int64)
            if prefix + "discovered_count" in out.columns
            else np.zeros(len(out), dtype=np.int64)
        )
        disc = np.where(looked, disc, 0)
        counts = pd.Series(status).value_counts()
        return cls(
            enrichment_type=enrichment_type,
            sample=len(out),
            looked_up=int(looked.sum()),
            found={
                "email": int((present("email") & looked).sum()),
                "phone": int((present("phone") & looked).sum()),
                "any_prospect": int((disc > 0).sum()),
                "prospect": int(disc.sum()),
                "prospect_sq": int((disc * disc).sum()),
            },
            statuses={str(k): int(v) for k, v in counts.items()},
        )


def mapping_key(mapping: Mapping[str, Hashable]) -> str:
    """The store's key of a column mapping (field → column label), order-free.

    >>> mapping_key({"last_name": "Nachname", "first_name": "Vorname"})
    '[["first_name","\\'Vorname\\'"],["last_name","\\'Nachname\\'"]]'
    """
    return json.dumps(sorted([str(f), repr(c)] for f, c in mapping.items()), separators=(",", ":"))


def sample_ids(fingerprints: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """The ids (positions in ``fingerprints``, ascending) of ``n`` contacts drawn at random:
    those with the smallest keyed hash under ``seed``. Reproducible in any process; it
    depends only on the set of contacts and the seed (not their order), and a larger ``n``
    keeps the smaller sample.

    >>> fps = np.array([f"{i:032x}" for i in range(10)], dtype=object)
    >>> a = sample_ids(fps, 3, seed=1)
    >>> len(a), set(a) <= set(sample_ids(fps, 5, seed=1)), set(fps[a]) == set(fps[::-1][
    ...     sample_ids(fps[::-1], 3, seed=1)])
    (3, True, True)
    """
    m = len(fingerprints)
    if n >= m:
        return np.arange(m, dtype=np.int64)
    halves = np.frombuffer(bytes.fromhex("".join(fingerprints.tolist())), dtype=">u8")
    halves = halves.reshape(m, 2).astype(np.uint64)
    mix = _finalize(np.array([seed % (1 << 64)], dtype=np.uint64) ^ np.uint64(0x5EED5EED))
    key = _finalize(_finalize(halves[:, 0] ^ mix[0]) ^ halves[:, 1])
    return np.sort(np.argsort(key, kind="stable")[:n]).astype(np.int64)


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
        return [(_KIND_NAMES[k], self.rates.rate(k)) for k in self.rates.kinds()]

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


def latest_rates(
    enrichment_type: str,
    mapping: Mapping[str, Hashable],
    cache_dir: Path | None = None,
    store: ResultCache | None = None,
    scope: Scope | None = None,
) -> PilotRates | None:
    """The latest pilot's rates for this type, column mapping and scope (a pilot's rates
    say what one server found), or None. Read from ``store`` when the caller has it open,
    else from the file in ``cache_dir`` (none is created when there is none); None without
    a scope.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> latest_rates("full", {"linkedin_url": "LinkedIn"}, d) is None, list(d.iterdir())
    (True, [])
    """
    key = mapping_key(mapping)
    if store is not None:
        record = store.latest_pilot(enrichment_type, key)
    elif scope is None or not (Path(cache_dir or default_cache_dir()) / CACHE_FILENAME).exists():
        return None
    else:
        opened = ResultCache(cache_dir, scope=scope)
        try:
            record = opened.latest_pilot(enrichment_type, key)
        finally:
            opened.close()
    return None if record is None else PilotRates.from_record(record)


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
    from cleanlist_pandas.enrich.job import enrich  # the job module imports the estimate's

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
