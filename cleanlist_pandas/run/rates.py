"""What a pilot measured (:class:`PilotRates`): the find rates of a sample, with 95% Wilson
score intervals, and what the rest should cost; how a sample is drawn
(:func:`sample_ids`); and where the rates are kept for ``estimate()``
(:func:`latest_rates`). ``df.cleanlist.pilot()`` itself is :mod:`.pilot`.

>>> wilson(70, 100)
(0.6041..., 0.7810...)
>>> r = PilotRates("full", sample=100, looked_up=100, found={"email": 70, "phone": 10})
>>> round(r.cost_per_contact()[0], 2), r.expected(1000)[0]
(1.7, 1700.0)
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import (
    CACHE_FILENAME,
    FOUND_COSTS,
    MAX_UNIT_COST,
    PROSPECTING_DISCOVERY_CAP,
)
from cleanlist_pandas.frame.plan import _finalize
from cleanlist_pandas.store.cache import ResultCache
from cleanlist_pandas.store.files import default_cache_dir
from cleanlist_pandas.store.provenance import Scope

__all__ = [
    "CONFIDENCE",
    "KIND_NAMES",
    "LOOKED_UP",
    "PilotRates",
    "Rate",
    "latest_rates",
    "mapping_key",
    "sample_ids",
    "wilson",
]

#: The confidence of every interval of a pilot.
CONFIDENCE = 0.95
#: The standard normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054
#: Statuses with an outcome: the contact was looked up (a failed look-up is free).
LOOKED_UP = ("enriched", "not_found", "failed")
#: Rates shown per enrichment type (kinds of value found), as a result names them.
KIND_NAMES = {"email": "email found", "phone": "phone found", "prospect": "prospects found"}


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
