"""The options of one enrichment run, their checks, and the run's journal key.

>>> Options(enrichment_type="full", max_credits=500).enrichment_type
'full'
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cleanlist_pandas._constants import ENRICHMENT_TYPES
from cleanlist_pandas.config import validate_webhook_url
from cleanlist_pandas.errors import UserValueError, did_you_mean
from cleanlist_pandas.frame.select import OnlyMissing, check_selection
from cleanlist_pandas.run.engine import PollPolicy

Errors = Literal["warn", "raise", "ignore"]
ERRORS_MODES = ("warn", "raise", "ignore")
EnrichmentType = Literal["partial", "phone_only", "full", "prospecting_only", "none"]


@dataclass(frozen=True)
class Options:
    """The options of one run (see :func:`enrich`)."""

    enrichment_type: str = "partial"
    columns: Mapping[str, Hashable | None] | None = None
    prefix: str = "cl_"
    max_credits: float | None = None
    cache: bool = True
    progress: bool = True
    webhook_url: str | None = None
    errors: Errors = "warn"
    resend_unknown: bool = False
    poll: PollPolicy | None = None
    cache_dir: Path | None = None
    max_age: float | None = None
    #: rows to send: a boolean Series/array or a function of the frame (select.where_mask)
    where: Any = field(default=None, compare=False, repr=False)
    #: leave out rows that already have these values ("email", "phone", a list, a dict)
    only_missing: OnlyMissing | None = None
    #: write found emails/phones into the empty cells of the input's own columns
    fill: bool | Mapping[str, Hashable] = False
    #: this run is a pilot (``df.cleanlist.pilot()``): a sample enriched to measure the rates
    pilot: bool = False
    #: the call that runs this again, when it is not ``df.cleanlist.enrich(...)`` (a pilot)
    call: str | None = None


def check_options(o: Options) -> None:
    """Raise on an option no run can use, before anything is opened or sent
    (:class:`~cleanlist_pandas.errors.UserValueError`; a typo gets the closest value).

    >>> check_options(Options(enrichment_type="full"))
    >>> check_options(Options(enrichment_type="ful"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cleanlist_pandas.errors.UserValueError: enrichment_type='ful' is not ...; did you mean 'full'?
    """
    if o.enrichment_type not in ENRICHMENT_TYPES:
        raise UserValueError(
            f"enrichment_type={o.enrichment_type!r} is not one of {list(ENRICHMENT_TYPES)}"
            + did_you_mean(o.enrichment_type, ENRICHMENT_TYPES)
        )
    if o.errors not in ERRORS_MODES:
        raise UserValueError(
            f"errors={o.errors!r}: use 'warn', 'raise' or 'ignore'"
            + did_you_mean(o.errors, ERRORS_MODES)
        )
    if o.max_credits is not None and not o.max_credits >= 0:  # NaN too
        raise UserValueError(f"max_credits must be >= 0, got {o.max_credits}")
    if o.webhook_url is not None:
        validate_webhook_url(o.webhook_url)  # before any request, not per chunk
    check_selection(o.where, o.only_missing, o.fill, o.enrichment_type)


def job_key(enrichment_type: str, fingerprints: np.ndarray) -> str:
    """The journal key of a call: the type and the set of unique contacts it may send.

    ``fingerprints`` are the plan's: the valid contacts of the rows ``where=`` and
    ``only_missing=`` kept, deduplicated. So a re-run with the same selection (in any row
    order) resumes the same job; a selection that keeps other contacts is another job; one
    that keeps them all is the job of the call without it (the same contacts are sent).
    A row left out never enters the key.

    >>> job_key("partial", np.array(["b", "a"], dtype=object)) == job_key(
    ...     "partial", np.array(["a", "b"], dtype=object))
    True
    """
    h = hashlib.blake2b(enrichment_type.encode(), digest_size=16)
    for fp in np.sort(fingerprints.astype(str)):
        h.update(fp.encode())
    return h.hexdigest()



def call_text(o: Options) -> str:
    """The call that continues a run, e.g. ``df.cleanlist.enrich("full", max_credits=500)``.

    >>> call_text(Options(enrichment_type="full", max_credits=500))
    "df.cleanlist.enrich('full', max_credits=500)"
    >>> call_text(Options(where=[True], only_missing="email", fill=True))
    "df.cleanlist.enrich('partial', where=<the same mask>, only_missing='email', fill=True)"
    """
    if o.call is not None:
        return o.call
    return f"df.cleanlist.enrich({', '.join([repr(o.enrichment_type), *option_args(o)])})"


def option_args(o: Options) -> list[str]:
    """The keyword arguments of a call with ``o``'s options that differ from the defaults.

    >>> option_args(Options(max_credits=5, where=lambda d: d["x"] > 0))
    ['max_credits=5', 'where=<the same function>']
    """
    args = []
    defaults = Options()
    for name in ("columns", "prefix", "max_credits", "webhook_url", "cache_dir"):
        value = getattr(o, name)
        if value != getattr(defaults, name):
            args.append(f"{name}={value!r}")
    if o.where is not None:
        what = "function" if callable(o.where) else "mask"
        args.append(f"where=<the same {what}>")
    for name in ("only_missing", "fill"):
        value = getattr(o, name)
        if value != getattr(defaults, name):
            args.append(f"{name}={value!r}")
    return args



__all__ = [
    "EnrichmentType",
    "Errors",
    "Options",
    "call_text",
    "check_options",
    "job_key",
    "option_args",
]
