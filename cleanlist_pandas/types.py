"""The package's types (``clp.types``): the typed, immutable results of the API, parsed by
the spec's tolerant reader, and the ``Literal`` types of the public arguments
(``EnrichmentType``, ``ErrorsMode``).

Why one module of this size: one model per API object, and the known fields of each in one
place (``RESULT_FIELDS``, ``FOUND_FIELDS``) so the merge and the engine read them from here.

Every model keeps the whole object it was read from in ``raw`` (a read-only mapping), and
the fields this code does not know in ``extra`` — a new API field is never dropped.

>>> r = TaskResult.from_api({"task_id": "t1", "status": "completed",
...                          "primary_email": "a@b.co", "new_field": 7})
>>> r.primary_email, r.extra["new_field"]
('a@b.co', 7)
>>> from typing import get_args
>>> get_args(EnrichmentType), get_args(ErrorsMode)
(('none', 'partial', 'phone_only', 'full', 'prospecting_only'), ('warn', 'raise', 'ignore'))
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, overload

from cleanlist_pandas._constants import FOUND_COSTS, TERMINAL_WORKFLOW_STATUSES
from cleanlist_pandas._perf import gc_paused

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FOUND_FIELDS",
    "RESULT_FIELDS",
    "Balance",
    "CachedResult",
    "Company",
    "Delivery",
    "DeliveryLog",
    "EnrichmentType",
    "ErrorsMode",
    "KeyInfo",
    "Prospect",
    "StatusSnapshot",
    "Submission",
    "TaskResult",
    "Workflow",
    "WorkflowSummary",
    "decode_many",
    "found_so_far",
    "is_found",
]


# -- the closed sets of values of the public arguments ---------------------------------------
#: ``enrichment_type=``: what to look up (spec §5), as a ``Literal`` so that a signature (a
#: notebook tooltip, an IDE) shows what is allowed; the same values as
#: ``_constants.ENRICHMENT_TYPES``.
EnrichmentType = Literal["none", "partial", "phone_only", "full", "prospecting_only"]

#: ``errors=``: what a run that stops early (or leaves rows over) does.
ErrorsMode = Literal["warn", "raise", "ignore"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _freeze(value: Any) -> Any:
    """Read-only deep copy: dicts become mappingproxies, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _extra(data: Mapping[str, Any], known: set[str] | frozenset[str]) -> Mapping[str, Any]:
    return _freeze({k: v for k, v in data.items() if k not in known})


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        return tuple(str(v) for v in value if v is not None)
    return ()


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _run_seconds(wf: Mapping[str, Any]) -> float | None:
    """``completed_at - created_at`` in seconds, when both parse and agree (else None).

    >>> _run_seconds({"created_at": "2026-04-06T15:00:00Z",
    ...               "completed_at": "2026-04-06T15:00:42.5Z"})
    42.5
    >>> _run_seconds({"created_at": "2026-04-06T15:00:00Z", "completed_at": None}) is None
    True
    """
    start, end = _time(wf.get("created_at")), _time(wf.get("completed_at"))
    if start is None or end is None or (start.tzinfo is None) != (end.tzinfo is None):
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds >= 0 else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _kw() -> Any:
    return field(default_factory=lambda: _EMPTY, compare=False, repr=False)


@dataclass(frozen=True)
class KeyInfo:
    """``GET /auth/validate-key``."""

    valid: bool
    user_id: str | None
    organization_id: str | None
    extra: Mapping[str, Any] = _kw()
    raw: Mapping[str, Any] = _kw()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> KeyInfo:
        return cls(
            valid=bool(data.get("valid", False)),
            user_id=_str(data.get("user_id")),
            organization_id=_str(data.get("organization_id")),
            extra=_extra(data, {"valid", "user_id", "organization_id"}),
            raw=_freeze(data),
        )


@dataclass(frozen=True)
class Balance:
    """``GET /credits/balance``; ``credits`` may be fractional."""

    organization_id: str | None
    credits: float
    extra: Mapping[str, Any] = _kw()
    raw: Mapping[str, Any] = _kw()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Balance:
        return cls(
            organization_id=_str(data.get("organization_id")),
            credits=_float(data.get("credits")) or 0.0,
            extra=_extra(data, {"organization_id", "credits"}),
            raw=_freeze(data),
        )


@dataclass(frozen=True)
class Submission:
    """``POST /enrich/bulk``: ``task_ids`` follow the order of the submitted contacts."""

    workflow_id: str
    status: str
    message: str | None
    task_ids: tuple[str, ...]
    total_contacts: int
    enrichment_type: str
    webhook_url: str | None = None
    extra: Mapping[str, Any] = _kw()
    raw: Mapping[str, Any] = _kw()

    @classmethod
    def from_api(
        cls, data: Mapping[str, Any], *, enrichment_type: str, webhook_url: str | None = None
    ) -> Submission:
        task_ids = _strs(data.get("task_ids"))
        return cls(
            workflow_id=str(data["workflow_id"]),
            status=str(data.get("status") or "processing"),
            message=_str(data.get("message")),
            task_ids=task_ids,
            total_contacts=_int(data.get("total_contacts")) or len(task_ids),
            enrichment_type=str(data.get("enrichment_type") or enrichment_type),
            webhook_url=webhook_url,
            extra=_extra(
                data,
                {"workflow_id", "status", "message", "task_ids", "total_contacts",
                 "enrichment_type"},
            ),
            raw=_freeze(data),
        )


@dataclass(frozen=True)
class Prospect:
    """The person found for a contact (or discovered at its company)."""

    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    headline: str | None = None
    location: str | None = None
    linkedin_url: str | None = None
    extra: Mapping[str, Any] = _kw()

    _KNOWN = frozenset(
        {"first_name", "last_name", "full_name", "headline", "location", "linkedin_url"}
    )

    @classmethod
    def from_api(cls, data: Any) -> Prospect | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            **{k: _str(data.get(k)) for k in cls._KNOWN},
            extra=_extra(data, cls._KNOWN),
        )


@dataclass(frozen=True)
class Company:
    """The contact's company."""

    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    headcount: int | None = None
    extra: Mapping[str, Any] = _kw()

    @classmethod
    def from_api(cls, data: Any) -> Company | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            name=_str(data.get("name")),
            domain=_str(data.get("domain")),
            industry=_str(data.get("industry")),
            headcount=_int(data.get("headcount")),
            extra=_extra(data, _COMPANY_KNOWN),
        )


_TASK_KNOWN = frozenset(
    {
        "task_id", "status", "primary_email", "primary_email_status", "other_emails",
        "personal_phone_numbers", "prospect", "company", "credits_charged", "error",
        "discovered_contacts",
    }
)
_COMPANY_KNOWN = frozenset({"name", "domain", "industry", "headcount"})

#: The fields of a result object this version knows (spec §6), by section: the models read
#: them, and the merge turns them into ``cl_*`` columns (any other field becomes
#: ``cl_<path>``). One home, so the two never disagree.
RESULT_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {"": _TASK_KNOWN, "prospect": Prospect._KNOWN, "company": _COMPANY_KNOWN}
)

#: What "found" means per enrichment type: a completed task is found when one of these
#: fields is non-empty (``none`` looks nothing up: every completed task counts). ``None``:
#: the type is not known.
FOUND_FIELDS: Mapping[str | None, tuple[str, ...]] = MappingProxyType(
    {
        "partial": ("primary_email",),
        "phone_only": ("personal_phone_numbers",),
        "full": ("primary_email", "personal_phone_numbers"),
        "prospecting_only": ("discovered_contacts",),
        "none": (),
        None: ("primary_email", "personal_phone_numbers", "discovered_contacts"),
    }
)


def is_found(result: Mapping[str, Any], enrichment_type: str | None) -> bool:
    """Whether a result object counts as found for ``enrichment_type`` (the one rule the
    progress counters and the ``cl_status`` column share).

    >>> is_found({"status": "completed", "primary_email": "a@b.io"}, "phone_only")
    False
    >>> is_found({"status": "completed"}, "none"), is_found({"status": "failed"}, "none")
    (True, False)
    """
    if result.get("status") != "completed":
        return False
    fields = FOUND_FIELDS.get(enrichment_type, FOUND_FIELDS[None])
    return not fields or any(result.get(f) for f in fields)


@dataclass(frozen=True)
class TaskResult:
    """One task (one submitted contact): the result object of spec §6."""

    task_id: str
    status: str
    primary_email: str | None = None
    primary_email_status: str | None = None
    other_emails: tuple[str, ...] = ()
    personal_phone_numbers: tuple[str, ...] = ()
    prospect: Prospect | None = None
    company: Company | None = None
    credits_charged: float = 0.0
    error: str | None = None
    discovered_contacts: tuple[Prospect, ...] = ()
    extra: Mapping[str, Any] = _kw()
    raw: Mapping[str, Any] = _kw()

    @property
    def is_finished(self) -> bool:
        """True for ``completed`` and ``failed``."""
        return self.status in ("completed", "failed")

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> TaskResult:
        """Parse a result object; also accepts the ``{"task": {...}}`` wrapper."""
        if "task" in data and isinstance(data["task"], Mapping) and "task_id" not in data:
            data = data["task"]
        discovered = data.get("discovered_contacts")
        return cls(
            task_id=str(data.get("task_id") or data.get("id") or ""),
            status=str(data.get("status") or "pending"),
            primary_email=_str(data.get("primary_email")),
            primary_email_status=_str(data.get("primary_email_status")),
            other_emails=_strs(data.get("other_emails")),
            personal_phone_numbers=_strs(data.get("personal_phone_numbers")),
            prospect=Prospect.from_api(data.get("prospect")),
            company=Company.from_api(data.get("company")),
            credits_charged=_float(data.get("credits_charged")) or 0.0,
            error=_str(data.get("error")),
            discovered_contacts=tuple(
                p for p in (Prospect.from_api(d) for d in discovered or ()) if p is not None
            )
            if isinstance(discovered, Sequence) and not isinstance(discovered, str)
            else (),
            extra=_extra(data, _TASK_KNOWN),
            raw=_freeze(data),
        )


_SUMMARY_KNOWN = frozenset(
    {"total", "completed", "pending", "successful", "failed", "emails_found", "phones_found"}
)


@dataclass(frozen=True)
class WorkflowSummary:
    """Task counts of a workflow."""

    total: int = 0
    completed: int = 0
    pending: int = 0
    successful: int = 0
    failed: int = 0
    emails_found: int = 0
    phones_found: int = 0
    extra: Mapping[str, Any] = _kw()

    @classmethod
    def from_api(cls, data: Any) -> WorkflowSummary:
        data = _mapping(data)
        return cls(
            **{k: _int(data.get(k)) or 0 for k in _SUMMARY_KNOWN},
            extra=_extra(data, _SUMMARY_KNOWN),
        )


_WORKFLOW_KNOWN = frozenset(
    {
        "workflow_id", "status", "enrichment_type", "lead_list_id", "total_contacts",
        "summary", "created_at", "completed_at", "results",
    }
)


@dataclass(frozen=True)
class Workflow:
    """``GET /enrich/status?workflow_id=``: the workflow and the results finished so far.

    Tolerant reader: the workflow fields may be wrapped in ``"workflow"`` or at the top
    level, and ``results`` may sit at the top level or inside the workflow object.
    """

    workflow_id: str
    status: str
    enrichment_type: str | None = None
    lead_list_id: str | None = None
    total_contacts: int = 0
    summary: WorkflowSummary = field(default_factory=WorkflowSummary)
    created_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    results: tuple[TaskResult, ...] = ()
    extra: Mapping[str, Any] = _kw()
    raw: Mapping[str, Any] = _kw()

    @property
    def is_terminal(self) -> bool:
        """True once the status is completed, completed_with_errors or failed."""
        return self.status in TERMINAL_WORKFLOW_STATUSES

    @property
    def progress(self) -> tuple[int, int]:
        """(tasks finished, tasks in all) — from the summary, else from the results."""
        total = self.summary.total or self.total_contacts or len(self.results)
        done = self.summary.completed
        if not done and self.results:
            done = sum(1 for r in self.results if r.is_finished)
        if self.is_terminal:
            done = total
        return done, total

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, workflow_id: str | None = None) -> Workflow:
        wf, results = _unwrap_status(data)
        inner = data.get("workflow")
        outer_extra = (
            {k: v for k, v in data.items() if k not in ("workflow", "results")}
            if isinstance(inner, Mapping)
            else {}
        )
        extra = dict(_extra(wf, _WORKFLOW_KNOWN))
        extra.update(outer_extra)
        return cls(
            workflow_id=str(wf.get("workflow_id") or workflow_id or ""),
            status=str(wf.get("status") or "processing"),
            enrichment_type=_str(wf.get("enrichment_type")),
            lead_list_id=_str(wf.get("lead_list_id")),
            total_contacts=_int(wf.get("total_contacts")) or 0,
            summary=WorkflowSummary.from_api(wf.get("summary")),
            created_at=_time(wf.get("created_at")),
            completed_at=_time(wf.get("completed_at")),
            results=tuple(TaskResult.from_api(r) for r in _mappings(results)),
            extra=_freeze(extra),
            raw=_freeze(data),
        )


def _unwrap_status(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any]:
    """The tolerant reader of a status body (spec §3.4): the workflow fields inside a
    ``workflow`` object or at the top level; ``results`` beside it or inside it."""
    inner = data.get("workflow")
    wf: Mapping[str, Any] = inner if isinstance(inner, Mapping) else data
    results = data.get("results")
    if results is None:
        results = wf.get("results")
    return wf, results


def _status_counts(wf: Mapping[str, Any]) -> tuple[int, int]:
    """(completed, total) of a workflow object: the summary's counts, the total falling
    back to ``total_contacts`` (as :class:`WorkflowSummary` reads them)."""
    summary = _mapping(wf.get("summary"))
    completed = _int(summary.get("completed")) or 0
    total = _int(summary.get("total")) or _int(wf.get("total_contacts")) or 0
    return completed, total


def _found_counts(wf: Mapping[str, Any]) -> tuple[int, int]:
    """(emails_found, phones_found) of a workflow object's summary, 0 when absent."""
    summary = _mapping(wf.get("summary"))
    return _int(summary.get("emails_found")) or 0, _int(summary.get("phones_found")) or 0


def found_so_far(enrichment_type: str, emails: int, phones: int) -> tuple[int, float]:
    """What a running workflow's summary says of its finished tasks: the contacts found so
    far and the credits they are charged ([doc] costs: 1 per email found, 10 per contact
    with a phone found; ``prospecting_only`` discoveries are not in the summary: 0 until
    the results are read). For ``full`` the summary cannot say how many contacts had both,
    so found is the larger count (never more than the truth).

    >>> found_so_far("full", 12, 5), found_so_far("phone_only", 12, 5)
    ((12, 62.0), (5, 50.0))
    """
    costs = FOUND_COSTS.get(enrichment_type, {})
    counts = {"email": emails, "phone": phones}
    got = [counts[k] for k in costs if k in counts]
    credits = float(sum(counts[k] * c for k, c in costs.items() if k in counts))
    return (max(got) if got else 0), credits


def _mappings(results: Any) -> tuple[Mapping[str, Any], ...]:
    """The result objects of a ``results`` value: the objects of a list; nothing else (a
    null, a number or an object where the list should be reads as no results)."""
    if not isinstance(results, list | tuple):
        return ()
    return tuple(r for r in results if type(r) is dict or isinstance(r, Mapping))


#: A status body that opens with its ``workflow`` object (the spec's shape, spec §3.4).
_WORKFLOW_FIRST = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"workflow"[ \t\n\r]*:[ \t\n\r]*')
_DECODER = json.JSONDecoder()


class _ResultsOfBody(Sequence[Mapping[str, Any]]):
    """The result objects of a status body, decoded from its text on first use (a poller
    reads a running workflow's status and summary only)."""

    __slots__ = ("_items", "_text")

    def __init__(self, text: str) -> None:
        self._text: str | None = text
        self._items: tuple[Mapping[str, Any], ...] | None = None

    def _load(self) -> tuple[Mapping[str, Any], ...]:
        if self._items is None:
            assert self._text is not None
            data = json.loads(self._text)
            self._items = _mappings(_unwrap_status(data)[1]) if isinstance(data, Mapping) else ()
            self._text = None
        return self._items

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Mapping[str, Any], ...]: ...
    def __getitem__(
        self, index: int | slice
    ) -> Mapping[str, Any] | tuple[Mapping[str, Any], ...]:
        return self._load()[index]

    def __len__(self) -> int:
        return len(self._load())

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self._load())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return self._load() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._load())


@dataclass(frozen=True)
class StatusSnapshot:
    """What a poller needs from ``GET /enrich/status``, read without copying the results.

    :class:`Workflow` deep-freezes every result (a read-only copy for users); a poller that
    reads thousands of results only hands them on, so ``results`` holds the result objects
    exactly as decoded from the body (do not modify them). Read from the body's text
    (:meth:`from_json`), a running workflow's results are decoded only if ``results`` is
    used: a poller reads its status and summary, and the text of the results it skips.

    >>> snap = StatusSnapshot.from_api({"workflow": {"workflow_id": "w", "status": "completed",
    ...     "summary": {"total": 1, "completed": 1}}, "results": [{"task_id": "t"}]})
    >>> snap.status, snap.completed, snap.total, snap.results[0]["task_id"], snap.is_terminal
    ('completed', 1, 1, 't', True)
    """

    workflow_id: str
    status: str
    completed: int
    total: int
    results: Sequence[Mapping[str, Any]] = ()
    #: seconds from ``created_at`` to ``completed_at`` when the body gives both (spec §3.4,
    #: [ours]: a tolerant read, None otherwise): how long the service took, whenever it
    #: was read
    run_seconds: float | None = None
    #: the summary's ``emails_found`` and ``phones_found`` so far (0 when absent)
    emails_found: int = 0
    phones_found: int = 0

    @property
    def is_terminal(self) -> bool:
        """True once the status is completed, completed_with_errors or failed."""
        return self.status in TERMINAL_WORKFLOW_STATUSES

    @classmethod
    def from_api(
        cls, data: Mapping[str, Any], *, workflow_id: str | None = None
    ) -> StatusSnapshot:
        wf, results = _unwrap_status(data)
        completed, total = _status_counts(wf)
        emails, phones = _found_counts(wf)
        return cls(
            workflow_id=str(wf.get("workflow_id") or workflow_id or ""),
            status=str(wf.get("status") or "processing"),
            completed=completed,
            total=total,
            results=_mappings(results),
            run_seconds=_run_seconds(wf),
            emails_found=emails,
            phones_found=phones,
        )

    @classmethod
    def from_json(
        cls, content: bytes | str, *, workflow_id: str | None = None
    ) -> StatusSnapshot | Any:
        """``from_api(json.loads(content))``, decoding a running workflow's results only
        when ``results`` is used. A body that is JSON but not an object is returned as
        decoded (the caller refuses it); one that is not JSON raises ``ValueError``.

        The body's ``workflow`` object comes first in the spec's shape: when it does, it is
        decoded alone, and if it says the workflow is still running that is all the read
        needs (the results so far, up to 250 of them, are skipped). Any other shape, and a
        terminal workflow, is decoded whole; so is a body whose text holds ``"workflow"``
        again after that object (a repeated key: ``json.loads`` keeps the last one). Only
        when ``results`` is used is the rest checked: text after the workflow object that is
        not JSON raises then, not here.

        >>> body = b'{"workflow": {"status": "processing", "summary": {"completed": 1,'
        >>> body += b' "total": 2}}, "results": [{"task_id": "t1"}]}'
        >>> snap = StatusSnapshot.from_json(body, workflow_id="w")
        >>> snap.workflow_id, snap.status, snap.completed, snap.total, len(snap.results)
        ('w', 'processing', 1, 2, 1)
        """
        text = (
            content
            if isinstance(content, str)
            else content.decode(json.detect_encoding(content), "surrogatepass")
        )
        head = _WORKFLOW_FIRST.match(text)
        if head is not None:
            try:
                wf, end = _DECODER.raw_decode(text, head.end())
            except ValueError:
                wf = None  # decoded whole below, which raises the error as json.loads does
            if isinstance(wf, dict) and text.find('"workflow"', end) < 0:
                status = str(wf.get("status") or "processing")
                if status not in TERMINAL_WORKFLOW_STATUSES:
                    completed, total = _status_counts(wf)
                    emails, phones = _found_counts(wf)
                    return cls(
                        workflow_id=str(wf.get("workflow_id") or workflow_id or ""),
                        status=status,
                        completed=completed,
                        total=total,
                        results=_ResultsOfBody(text),
                        emails_found=emails,
                        phones_found=phones,
                    )
        data = json.loads(text)
        if not isinstance(data, Mapping):
            return data
        return cls.from_api(data, workflow_id=workflow_id)


_DELIVERY_KNOWN = frozenset(
    {
        "id", "workflow_id", "webhook_url", "attempt_number", "status",
        "response_status_code", "duration_ms", "error", "attempted_at",
    }
)


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery attempt (``GET /webhooks/deliveries``)."""

    id: str | None
    workflow_id: str | None
    webhook_url: str | None
    attempt_number: int | None
    status: str | None
    response_status_code: int | None
    duration_ms: float | None
    error: str | None
    attempted_at: dt.datetime | None
    extra: Mapping[str, Any] = _kw()
    raw: Mapping[str, Any] = _kw()

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Delivery:
        return cls(
            id=_str(data.get("id")),
            workflow_id=_str(data.get("workflow_id")),
            webhook_url=_str(data.get("webhook_url")),
            attempt_number=_int(data.get("attempt_number")),
            status=_str(data.get("status")),
            response_status_code=_int(data.get("response_status_code")),
            duration_ms=_float(data.get("duration_ms")),
            error=_str(data.get("error")),
            attempted_at=_time(data.get("attempted_at")),
            extra=_extra(data, _DELIVERY_KNOWN),
            raw=_freeze(data),
        )


class DeliveryLog(Sequence[Delivery]):
    """The delivery attempts of a workflow: a read-only sequence, and a DataFrame on demand.

    Tolerant reader: the API's body may be a list or ``{"deliveries": [...]}``.

    >>> log = DeliveryLog.from_api([{"attempt_number": 1, "status": "success"}], "wf")
    >>> len(log), log[0].ok, list(log.to_dataframe().columns)[:3]
    (1, True, ['attempt_number', 'status', 'response_status_code'])
    """

    COLUMNS = (
        "attempt_number", "status", "response_status_code", "duration_ms", "error",
        "attempted_at", "webhook_url", "workflow_id", "id",
    )

    def __init__(self, deliveries: Sequence[Delivery], workflow_id: str | None = None):
        self._items = tuple(deliveries)
        self.workflow_id = workflow_id

    @classmethod
    def from_api(cls, data: Any, workflow_id: str | None = None) -> DeliveryLog:
        rows = data.get("deliveries") if isinstance(data, Mapping) else data
        if not isinstance(rows, Sequence) or isinstance(rows, str):
            rows = ()
        return cls(
            [Delivery.from_api(r) for r in rows if isinstance(r, Mapping)], workflow_id
        )

    @overload
    def __getitem__(self, index: int) -> Delivery: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Delivery, ...]: ...
    def __getitem__(self, index: int | slice) -> Delivery | tuple[Delivery, ...]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Delivery]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DeliveryLog):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        ok = sum(1 for d in self._items if d.ok)
        return f"<DeliveryLog workflow={self.workflow_id} attempts={len(self)} success={ok}>"

    @property
    def delivered(self) -> bool:
        """True if any attempt succeeded."""
        return any(d.ok for d in self._items)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per attempt, nullable dtypes; unknown fields become extra columns."""
        import pandas as pd

        records = []
        for d in self._items:
            row: dict[str, Any] = {c: getattr(d, c) for c in self.COLUMNS}
            for k, v in d.extra.items():
                row.setdefault(k, v)
            records.append(row)
        frame = pd.DataFrame.from_records(records, columns=None if records else self.COLUMNS)
        dtypes = {
            "attempt_number": "Int64",
            "response_status_code": "Int64",
            "duration_ms": "Float64",
            "workflow_id": "string",
            "status": "string",
            "error": "string",
            "webhook_url": "string",
            "id": "string",
        }
        frame = frame.astype({k: v for k, v in dtypes.items() if k in frame.columns})
        if "attempted_at" in frame.columns:
            frame["attempted_at"] = pd.to_datetime(frame["attempted_at"], utc=True)
        return frame

    to_pandas = to_dataframe


# -- what a cache look-up returns ----------------------------------------------------------
@dataclass(frozen=True)
class CachedResult:
    """One stored result (what a cache look-up returns). ``result`` is decoded from ``raw``
    JSON on first access.

    Look-ups stay cheap (no JSON work); use :func:`decode_many` to decode many at once.
    """

    raw: str
    workflow_id: str | None
    task_id: str | None
    stored_at: float  # Unix time

    @functools.cached_property
    def result(self) -> dict[str, Any]:
        """The result object (spec §6)."""
        value: dict[str, Any] = json.loads(self.raw)
        return value


def decode_many(entries: Iterable[CachedResult]) -> list[dict[str, Any]]:
    """The ``result`` of many entries, decoded in one JSON parse (much faster than one each).

    >>> decode_many([CachedResult('{"status": "completed"}', None, None, 0.0)])
    [{'status': 'completed'}]
    """
    items = list(entries)
    if not items:
        return []
    with gc_paused():
        decoded: list[dict[str, Any]] = json.loads("[" + ",".join(e.raw for e in items) + "]")
    for e, d in zip(items, decoded, strict=True):
        e.__dict__.setdefault("result", d)
    return [e.result for e in items]
