"""Fingerprint, dedupe and look up the cache: what a run must send — no network.

``fingerprint`` gives each normalized contact a 128-bit content hash (32 hex characters)
that is stable across processes, runs and machines: it is the cache key and the journal key.
It is SipHash-2-4 (``pandas.util.hash_array`` with two 16-byte keys derived from
``FINGERPRINT_VERSION``) of each of the five fields' UTF-8 text, a fixed sentinel for a
missing field (so "field absent" differs from any value), combined in ``CONTACT_FIELDS``
order with a fixed mixing function. Names and the company name are case-folded first, so
``ADA``/``Ada`` rows are one contact (the first spelling is the one sent). The hashing runs
once per distinct value of each field, then rows are combined with numpy arithmetic.

>>> import pandas as pd
>>> from cleanlist_pandas.frame.mapping import map_contacts
>>> df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/a", "https://www.linkedin.com/in/A/", None]})
>>> p = plan(map_contacts(df), "partial")
>>> (p.n_rows, p.n_valid, p.n_unique, p.n_duplicates, p.n_to_send, p.worst_case_credits)
(3, 2, 1, 1, 1, 1)
>>> p.row_codes.tolist()
[0, 0, -1]
>>> p.contact_dicts(p.send_ids)
[{'linkedin_url': 'https://www.linkedin.com/in/a'}]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import (
    CONTACT_FIELDS,
    ENRICHMENT_TYPES,
    MAX_CONTACTS_PER_REQUEST,
    MAX_UNIT_COST,
)
from cleanlist_pandas._perf import gc_paused
from cleanlist_pandas.errors import UserValueError, did_you_mean
from cleanlist_pandas.frame.mapping import FieldColumn, MappedContacts
from cleanlist_pandas.frame.select import EXCLUSION_KINDS, Selection
from cleanlist_pandas.types import decode_many

__all__ = [
    "FINGERPRINT_VERSION",
    "IDENTITY_KINDS",
    "Plan",
    "fingerprint",
    "identity_digests",
    "plan",
]

#: Bump when the canonical encoding changes: it is part of the hash (the SipHash keys are
#: derived from it), so every fingerprint changes and old cache entries and journaled jobs
#: simply miss.
FINGERPRINT_VERSION = 1


def _sip_keys(version: int) -> tuple[str, str]:
    """The two 16-byte SipHash keys (high half, low half) of a fingerprint version.

    >>> _sip_keys(1)
    ('cleanlist-fp-v1a', 'cleanlist-fp-v1b')
    >>> _sip_keys(12)
    ('cleanlist-fp-12a', 'cleanlist-fp-12b')
    """
    v = str(version)
    stem = "cleanlist-fp-v"[: 15 - len(v)] + v
    return stem + "a", stem + "b"


_KEY1, _KEY2 = _sip_keys(FINGERPRINT_VERSION)
_MISSING = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))
#: Fields compared case-insensitively (domains and LinkedIn URLs are lower-cased already).
_CASE_FOLDED = frozenset({"first_name", "last_name", "company_name"})

CacheLookup = Callable[[list[str]], Mapping[str, Any]]


def _field_hashes(
    codes: np.ndarray, values: np.ndarray, fold: bool, keys: tuple[str, str] = (_KEY1, _KEY2)
) -> tuple[Any, Any]:
    """Per-row uint64 hashes (key 1, key 2) of one field from its factorized form.

    ``fold``: case-fold first. The text is prepared once for both keys.
    """
    vals = np.asarray(values, dtype=object)
    absent = pd.isna(vals)
    filled = vals.copy()
    filled[absent] = ""
    if fold:
        filled[:] = [v.casefold() for v in filled]
    if len(filled) and pd.api.types.infer_dtype(filled, skipna=False) == "string":
        # UTF-8 once for both keys (hash_array hashes bytes as they are, str as UTF-8)
        filled[:] = [v.encode("utf8") for v in filled.tolist()]
    out = []
    for key, missing in ((keys[0], _MISSING[0]), (keys[1], _MISSING[1])):
        h = np.empty(len(vals) + 1, dtype=np.uint64)
        if len(vals):
            h[:-1] = pd.util.hash_array(filled, hash_key=key, categorize=False)
            h[:-1][absent] = missing
        h[-1] = missing
        out.append(h.take(codes))
    return out[0], out[1]


def _mix(acc: Any, h: Any, i: int) -> Any:
    with np.errstate(over="ignore"):
        acc = acc ^ h
        acc *= np.uint64(0x100000001B3 + 2 * i)  # FNV-ish odd multiplier per position
        acc ^= acc >> np.uint64(29)
    return acc


def _finalize(acc: Any) -> Any:
    """splitmix64 finalizer: good avalanche for the combined value."""
    with np.errstate(over="ignore"):
        acc = acc ^ (acc >> np.uint64(30))
        acc *= np.uint64(0xBF58476D1CE4E5B9)
        acc ^= acc >> np.uint64(27)
        acc *= np.uint64(0x94D049BB133111EB)
        acc ^= acc >> np.uint64(31)
    return acc


def _factorized_fields(contacts: pd.DataFrame | MappedContacts) -> list[FieldColumn]:
    if isinstance(contacts, MappedContacts):
        return [contacts.fields[f] for f in CONTACT_FIELDS]
    out = []
    for f in CONTACT_FIELDS:
        if f not in contacts.columns:
            n = len(contacts)
            out.append(
                FieldColumn(np.full(n, -1, np.int64), np.empty(0, object), np.empty(0, bool))
            )
            continue
        col = contacts[f]
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        vals = np.asarray(uniques, dtype=object)
        out.append(FieldColumn(np.asarray(codes, np.int64), vals, np.zeros(len(vals), bool)))
    return out


def _hash_pair(
    contacts: pd.DataFrame | MappedContacts, keys: tuple[str, str] = (_KEY1, _KEY2)
) -> tuple[Any, Any]:
    fields = _factorized_fields(contacts)
    n = len(fields[0].codes)
    acc1 = np.full(n, 0x345678, dtype=np.uint64)
    acc2 = np.full(n, 0x8765432, dtype=np.uint64)
    for i, (f, fc) in enumerate(zip(CONTACT_FIELDS, fields, strict=True)):
        f1, f2 = _field_hashes(fc.codes, fc.values, f in _CASE_FOLDED, keys)
        acc1 = _mix(acc1, f1, i)
        acc2 = _mix(acc2, f2, i)
    return _finalize(acc1), _finalize(acc2)


#: What a person knows of themselves, as the identities :func:`identity_digests` hashes: a
#: LinkedIn profile; a name at a company's domain; a name at a company's name.
IDENTITY_KINDS: Final = {
    "linkedin": ("linkedin_url",),
    "name_domain": ("first_name", "last_name", "company_domain"),
    "name_company": ("first_name", "last_name", "company_name"),
}


_IDENTITY_CODES: Final = {"linkedin": "li", "name_domain": "nd", "name_company": "nc"}


def identity_digests(contacts: pd.DataFrame | MappedContacts) -> list[np.ndarray]:
    """Per row, the digests of the identities a person would give to be found — their
    LinkedIn profile, their name at their company's domain, their name at their company's
    name (:data:`IDENTITY_KINDS`) — however many other fields the contact had. One object
    array per kind, None where the row lacks a field of it.

    Normalized, case-folded and hashed like :func:`fingerprint` (a keyed 128-bit hash per
    kind; no personal data in clear), so ``clp.forget(first_name=, last_name=,
    company_domain=)`` finds the contacts a run fingerprinted with a LinkedIn URL and a
    company name too.

    >>> import pandas as pd
    >>> a = pd.DataFrame({"first_name": ["Ada"], "last_name": ["L"], "company_domain": ["x.io"],
    ...                   "linkedin_url": ["https://www.linkedin.com/in/ada"]})
    >>> b = a.assign(first_name="ADA", linkedin_url=None, company_name="X")
    >>> li, nd, nc = identity_digests(a); li2, nd2, nc2 = identity_digests(b)
    >>> nd[0] == nd2[0], li2[0], nc[0], len(li[0])
    (True, None, None, 32)
    """
    fields = dict(zip(CONTACT_FIELDS, _factorized_fields(contacts), strict=True))
    out = []
    for kind, names in IDENTITY_KINDS.items():
        stem = f"cleanlist-id{_IDENTITY_CODES[kind]}{FINGERPRINT_VERSION}"[:15]
        keys = (stem + "a", stem + "b")
        n = len(fields[names[0]].codes)
        acc1 = np.full(n, 0x345678, dtype=np.uint64)
        acc2 = np.full(n, 0x8765432, dtype=np.uint64)
        present = np.ones(n, dtype=bool)
        for i, f in enumerate(names):
            fc = fields[f]
            present &= np.append(~_absent(fc.values), False).take(fc.codes)
            f1, f2 = _field_hashes(fc.codes, fc.values, f in _CASE_FOLDED, keys)
            acc1 = _mix(acc1, f1, i)
            acc2 = _mix(acc2, f2, i)
        digests = _to_hex(_finalize(acc1), _finalize(acc2))
        digests[~present] = None
        out.append(digests)
    return out


def _absent(values: np.ndarray) -> np.ndarray:
    vals = np.asarray(values, dtype=object)
    return np.asarray(pd.isna(vals), dtype=bool) | (vals == "")


def _to_hex(h1: Any, h2: Any) -> np.ndarray:
    """Big-endian hex of (h1, h2) per row: 32-char ``str``, object array.

    One ``bytes.hex`` over the whole buffer with a space after every 16 bytes, then one
    ``str.split`` (both C loops; 4x faster than building the digits with numpy and
    converting ``S32`` → ``U32`` → object, 1.4x faster than slicing in a comprehension).
    """
    n = len(h1)
    out = np.empty(n, dtype=object)
    if not n:
        return out
    be = np.empty((n, 2), dtype=">u8")
    be[:, 0] = h1
    be[:, 1] = h2
    out[:] = be.tobytes().hex(" ", -16).split(" ")
    return out


@gc_paused()
def fingerprint(contacts: pd.DataFrame | MappedContacts) -> np.ndarray:
    """Stable 128-bit content hashes (32-char hex ``str``, object array), one per row.

    ``contacts`` is a frame with the contact fields (``MappedContacts.contacts``; a missing
    column counts as all-missing, extra columns are ignored) or a ``MappedContacts`` (faster:
    reuses its factorization). Identical normalized contacts get identical hashes in any
    process; a field that is missing hashes differently from every value.

    >>> import pandas as pd
    >>> fp = fingerprint(pd.DataFrame({"first_name": ["Ada", "Ada"], "last_name": ["L", None]}))
    >>> len(fp[0]), fp[0] == fp[1]
    (32, False)
    """
    h1, h2 = _hash_pair(contacts)
    return _to_hex(h1, h2)


@dataclass(frozen=True, eq=False)
class Plan:
    """What a run would send. Built by :func:`plan`; everything is by row position.

    Attributes:
        enrichment_type: the type the plan was made for.
        row_codes: int64 array, one per input row: the unique-contact id whose result the
            row gets, or -1 for an invalid (skipped) row. Fan results out with it.
        fingerprints: object array of hex str, one per unique valid contact (id order =
            first occurrence order).
        first_rows: int64 array, the row position where each unique contact first occurs.
        cached: fingerprint → whatever ``cache_lookup`` returned, for the unique contacts
            found in the cache (they are not sent).
        send_ids: int64 array of the unique ids to send, in order (the engine sends them in
            chunks of ``chunk_size``; ``n_chunks`` counts the requests).
        reason_counts: invalid rows per reason (rows left out by the selection not counted).
        selection: the rows ``where=``/``only_missing=`` left out
            (:class:`~cleanlist_pandas.frame.select.Selection`), or None.
        excluded_by: rows left out, by reason: ``{"where": n, "only_missing": n}`` (``where=``
            is applied first; both keys always there). Their row code is -1: they are never
            fingerprinted into ``fingerprints`` (so not into the job key) and never sent.
        saved_by: by the same reasons, the unique valid contacts that were left out and that
            the run would otherwise have sent (not sent anyway for another row, not cached):
            ``credits_saved`` is their worst case.

    Rows partition as ``n_rows == n_excluded + n_invalid + n_valid``.
    """

    enrichment_type: str
    mapped: MappedContacts = field(repr=False)
    row_codes: np.ndarray = field(repr=False)
    fingerprints: np.ndarray = field(repr=False)
    first_rows: np.ndarray = field(repr=False)
    cached: dict[str, Any] = field(repr=False)
    send_ids: np.ndarray = field(repr=False)
    reason_counts: dict[str, int]
    chunk_size: int = MAX_CONTACTS_PER_REQUEST
    selection: Selection | None = field(default=None, repr=False)
    excluded_by: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EXCLUSION_KINDS, 0))
    saved_by: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EXCLUSION_KINDS, 0))

    # counts ---------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        """Input rows."""
        return len(self.row_codes)

    @property
    def n_excluded(self) -> int:
        """Rows left out by ``where=``/``only_missing=`` (see ``excluded_by``)."""
        return sum(self.excluded_by.values())

    @property
    def n_valid(self) -> int:
        """Rows that pass the API's rule (among the rows not left out)."""
        return int((self.row_codes >= 0).sum())

    @property
    def n_invalid(self) -> int:
        """Rows skipped locally for their input (see ``reason_counts``)."""
        return self.n_rows - self.n_valid - self.n_excluded

    @property
    def n_unique(self) -> int:
        """Distinct valid contacts."""
        return len(self.fingerprints)

    @property
    def n_duplicates(self) -> int:
        """Valid rows that repeat an earlier row's contact (they share its result)."""
        return self.n_valid - self.n_unique

    @property
    def n_cached(self) -> int:
        """Unique contacts answered from the cache."""
        return self.n_unique - len(self.send_ids)

    @property
    def n_to_send(self) -> int:
        """Unique contacts that must be submitted."""
        return len(self.send_ids)

    @property
    def n_chunks(self) -> int:
        """Requests needed (``ceil(to_send / 250)``)."""
        return -(-self.n_to_send // self.chunk_size)

    @property
    def worst_case_credits(self) -> int:
        """``to_send × MAX_UNIT_COST[type]``: the most the run can cost."""
        return self.n_to_send * MAX_UNIT_COST[self.enrichment_type]

    @property
    def credits_saved_by(self) -> dict[str, int]:
        """The worst case of the contacts left out, by reason (see ``saved_by``)."""
        unit = MAX_UNIT_COST[self.enrichment_type]
        return {k: n * unit for k, n in self.saved_by.items()}

    @property
    def credits_saved(self) -> int:
        """The worst case of the contacts the selection left out: what the run would
        otherwise have risked on them."""
        return sum(self.credits_saved_by.values())

    def counts(self) -> dict[str, Any]:
        """All counts as a dict (for estimate(), logs and reprs)."""
        return {
            "enrichment_type": self.enrichment_type,
            "rows": self.n_rows,
            "excluded": self.n_excluded,
            "excluded_by": dict(self.excluded_by),
            "credits_saved": self.credits_saved,
            "valid": self.n_valid,
            "invalid": self.n_invalid,
            "invalid_by_reason": dict(self.reason_counts),
            "unique": self.n_unique,
            "duplicates": self.n_duplicates,
            "cached": self.n_cached,
            "to_send": self.n_to_send,
            "chunks": self.n_chunks,
            "worst_case_credits": self.worst_case_credits,
        }

    def __repr__(self) -> str:
        c = self.counts()
        c.pop("invalid_by_reason")
        c.pop("excluded_by")
        return "Plan(" + ", ".join(f"{k}={v!r}" for k, v in c.items()) + ")"

    # results --------------------------------------------------------------------------
    def initial_results(self) -> tuple[list[Any], list[str | None], list[str | None]]:
        """Per unique contact: (results, workflow_ids, statuses) pre-filled from the cache.

        ``results[u]`` is the cached result object (a dict) for cache hits, else None; the
        engine fills in fresh results by unique id and passes the lists to
        :func:`~cleanlist_pandas.frame.merge.build_output`. Cached values may be plain
        dicts or :class:`~cleanlist_pandas.types.CachedResult` (decoded here in one go).
        ``statuses`` starts as all None (→ ``not_submitted`` if nothing else is set).
        """
        n = self.n_unique
        results: list[Any] = [None] * n
        wfs: list[str | None] = [None] * n
        if self.cached:
            hit_ids = np.setdiff1d(np.arange(n), self.send_ids, assume_unique=True)
            values = [self.cached[self.fingerprints[u]] for u in hit_ids]
            if values and all(hasattr(v, "raw") for v in values):
                decoded = decode_many(values)
                for u, v, d in zip(hit_ids.tolist(), values, decoded, strict=True):
                    results[u] = d
                    wfs[u] = v.workflow_id
            else:
                for u, v in zip(hit_ids.tolist(), values, strict=True):
                    if hasattr(v, "raw"):
                        results[u], wfs[u] = v.result, v.workflow_id
                    else:
                        results[u] = v
        return results, wfs, [None] * n

    def skip_reasons(self) -> np.ndarray:
        """Per row, why it is not sent (object array; missing for a row with a contact
        id): the selection's reason for a row left out, else the mapping's."""
        out = np.asarray(self.mapped.reason, dtype=object)
        if self.selection is not None and self.n_excluded:
            why = self.selection.reasons()
            left_out = ~self.selection.kept
            out = out.copy()
            out[left_out] = why[left_out]
        return out

    # contacts -------------------------------------------------------------------------
    @functools.cached_property
    def unique_contacts(self) -> pd.DataFrame:
        """The unique valid contacts (string dtype, RangeIndex = unique id)."""
        return self.mapped.contacts.take(self.first_rows).reset_index(drop=True)

    @gc_paused()
    def contact_dicts(self, unique_ids: Sequence[int] | np.ndarray) -> list[dict[str, str]]:
        """API contact objects for some unique ids: only the non-missing fields, all str."""
        rows = self.first_rows[np.asarray(unique_ids, dtype=np.int64)]
        cols = [self.mapped.fields[f].rows_at(rows) for f in CONTACT_FIELDS]
        return [
            {f: v for f, v in zip(CONTACT_FIELDS, vals, strict=True) if v is not None}
            for vals in zip(*cols, strict=True)
        ]


def _first_occurrences(codes: np.ndarray) -> np.ndarray:
    """Positions where each code first appears (factorize numbers codes in that order)."""
    if not len(codes):
        return np.empty(0, dtype=np.int64)
    cummax = np.maximum.accumulate(codes)
    return np.flatnonzero(np.diff(cummax, prepend=-1) > 0).astype(np.int64)


@gc_paused()
def plan(
    mapped: MappedContacts,
    enrichment_type: str,
    cache_lookup: CacheLookup | None = None,
    *,
    chunk_size: int = MAX_CONTACTS_PER_REQUEST,
    selection: Selection | None = None,
) -> Plan:
    """Dedupe the valid contacts and consult the cache: the rest is what a run sends.

    Args:
        mapped: from :func:`~cleanlist_pandas.frame.mapping.map_contacts`.
        enrichment_type: one of ``ENRICHMENT_TYPES``.
        cache_lookup: called once with the list of unique fingerprints; returns a mapping
            fingerprint → cached result for the ones it has (e.g.
            ``lambda fps: cache.get_many(fps, enrichment_type)``). Those are not sent.
        chunk_size: contacts per request, 1..250 (for ``n_chunks``).
        selection: rows to leave out (``where=``/``only_missing=``, from
            :func:`~cleanlist_pandas.frame.select.select`): they get row code -1 before
            the dedupe, so a selected duplicate of a left-out row is still sent (once), and
            they are not in ``fingerprints`` (nor the job key).

    >>> import pandas as pd
    >>> from cleanlist_pandas.frame.mapping import map_contacts
    >>> m = map_contacts(pd.DataFrame({"LinkedIn": ["linkedin.com/in/a", "linkedin.com/in/b"]}))
    >>> fp = fingerprint(m)
    >>> p = plan(m, "full", cache_lookup=lambda fps: {fp[0]: {"status": "completed"}})
    >>> p.n_cached, p.n_to_send, p.worst_case_credits
    (1, 1, 11)
    """
    if enrichment_type not in ENRICHMENT_TYPES:
        raise UserValueError(
            f"unknown enrichment_type {enrichment_type!r}; use one of {list(ENRICHMENT_TYPES)}"
            + did_you_mean(enrichment_type, ENRICHMENT_TYPES)
        )
    if not 1 <= chunk_size <= MAX_CONTACTS_PER_REQUEST:
        raise UserValueError(f"chunk_size must be 1..{MAX_CONTACTS_PER_REQUEST}, got {chunk_size}")
    n = mapped.n_rows
    if selection is not None and len(selection.why) != n:
        raise ValueError(f"the selection has {len(selection.why)} rows, the mapping {n}")
    h1, h2 = _hash_pair(mapped)
    kept = None if selection is None or not selection.n_excluded else selection.kept
    valid_pos = np.flatnonzero(mapped.valid if kept is None else mapped.valid & kept)
    vcodes, _ = pd.factorize(h1[valid_pos])
    vcodes = np.asarray(vcodes, dtype=np.int64)
    first_rows = valid_pos[_first_occurrences(vcodes)]
    if len(vcodes) and (h2[valid_pos] != h2[first_rows][vcodes]).any():
        # A 64-bit collision (practically never): dedupe on the full 128-bit hash.
        pair = _to_hex(h1[valid_pos], h2[valid_pos])
        vcodes, _ = pd.factorize(pair)
        vcodes = np.asarray(vcodes, dtype=np.int64)
        first_rows = valid_pos[_first_occurrences(vcodes)]
    n_unique = len(first_rows)
    row_codes = np.full(n, -1, dtype=np.int64)
    row_codes[valid_pos] = vcodes
    fps = _to_hex(h1[first_rows], h2[first_rows])

    # the valid contacts left out (and not sent anyway for another row): what is saved
    left_fps, left_why = _left_out(h1, h2, mapped.valid, kept, selection, fps)
    cached: dict[str, Any] = {}
    saved = np.ones(len(left_fps), dtype=bool)
    if cache_lookup is not None and (n_unique or len(left_fps)):
        found = cache_lookup([*fps.tolist(), *left_fps.tolist()])
        cached = {k: v for k, v in found.items() if v is not None}
        if len(left_fps) and cached:
            saved = np.fromiter((f not in cached for f in left_fps), bool, len(left_fps))
            cached = {k: cached[k] for k in fps.tolist() if k in cached}
    saved_counts = np.bincount(left_why[saved].astype(np.int64), minlength=3)
    if cached:
        hit = np.fromiter((f in cached for f in fps), bool, len(fps))
        send_ids = np.flatnonzero(~hit).astype(np.int64)
    else:
        send_ids = np.arange(n_unique, dtype=np.int64)
    return Plan(
        enrichment_type=enrichment_type,
        mapped=mapped,
        row_codes=row_codes,
        fingerprints=fps,
        first_rows=first_rows,
        cached=cached,
        send_ids=send_ids,
        reason_counts=mapped.reason_counts(kept),
        chunk_size=chunk_size,
        selection=selection,
        excluded_by=(
            selection.excluded_by if selection is not None else dict.fromkeys(EXCLUSION_KINDS, 0)
        ),
        saved_by={k: int(saved_counts[i + 1]) for i, k in enumerate(EXCLUSION_KINDS)},
    )


def _left_out(
    h1: Any,
    h2: Any,
    valid: np.ndarray,
    kept: np.ndarray | None,
    selection: Selection | None,
    kept_fps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The unique valid contacts the selection left out that no selected row sends
    (fingerprints), and per contact the reason code of its first left-out row."""
    if kept is None or selection is None:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int8)
    pos = np.flatnonzero(valid & ~kept)
    if not len(pos):
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int8)
    hexes = _to_hex(h1[pos], h2[pos])
    codes, uniq = pd.factorize(hexes)
    first = pos[_first_occurrences(np.asarray(codes, dtype=np.int64))]
    fps = np.asarray(uniq, dtype=object)
    fresh = ~pd.Index(fps).isin(pd.Index(kept_fps))
    return fps[fresh], selection.why[first][fresh]
