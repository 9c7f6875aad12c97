"""The exception tree. Every error of this package derives from :class:`CleanlistError`.

>>> from cleanlist_pandas.errors import CleanlistError, InsufficientCreditsError
>>> issubclass(InsufficientCreditsError, CleanlistError)
True

The tree::

    CleanlistError
    ├── UserError                                 a mistake the user can fix (marked *)
    │   ├── UserValueError (also ValueError)      an argument of ours with a bad value
    │   ├── UserTypeError (also TypeError)        an argument of ours of the wrong type
    │   └── UserKeyError (also KeyError)          an id we do not know (resume's job id)
    ├── ConfigurationError* (also ValueError)     bad/missing key, base URL, option
    ├── InputValidationError* (also ValueError)   a contact fails the API's rule; nothing sent
    ├── MappingError* (also ValueError)           enrich() cannot find or tell apart columns
    ├── OutputColumnCollision* (also ValueError)  an output column exists already; nothing sent
    ├── JobBusyError*                             the same run is going on in another process
    ├── LoopThreadError (also RuntimeError)       sync call made from the client's own loop
    ├── WaitTimeoutError* (also TimeoutError)     wait() gave up; the workflow keeps running
    └── APIError                                  anything that came from talking to the API
        ├── APIConnectionError                    no usable answer (refused, DNS, reset)
        │   └── APITimeoutError                   the request timed out
        ├── AmbiguousSubmissionError              POST /enrich/bulk may or may not have run
        ├── UnexpectedResponseError               a 2xx answer we could not read
        └── APIStatusError                        the API answered with an error status
            ├── BadRequestError          400
            ├── AuthenticationError*     401
            ├── InsufficientCreditsError* 402
            ├── PermissionDeniedError*   403
            ├── NotFoundError*           404
            ├── ValidationError*         422  (contact_indexes from ``loc``)
            ├── RateLimitError*          429  (retry_after)
            └── ServerError              5xx

Besides: :class:`CleanlistWarning` (a run finished with rows left over) and
:class:`EnrichmentInterrupted` (Ctrl-C during ``enrich()``; a ``KeyboardInterrupt``). Any
error that stops an ``enrich()`` run carries the rows finished so far in ``partial_result``
and the journal's ``job_id`` (None elsewhere); ``clp.last_result()`` returns the same rows
without the exception object.

No message, ``repr`` or attribute of these exceptions ever contains an API key: the request
loop never hands the key to them, and scrubs it from any text the server echoes.

A *user error* (a setting, a column mapping, the key, the credits, the plan, a budget, an
argument of ours with a wrong value or type: the classes marked :class:`UserError`, and any
error that ends a run started with ``errors="raise"``) shows in IPython and Jupyter as its
message and the fix, without the screen of internal frames: IPython calls
``_render_traceback_`` when an exception has one. An argument check raises
:class:`UserValueError` / :class:`UserTypeError`, never a bare ``ValueError``/``TypeError``
(``tests/test_user_errors.py`` checks the source), so ``except ValueError`` in user code
still catches it and a notebook shows it short (as ``ValueError: ...``). An interrupted run
(:class:`EnrichmentInterrupted`) shows a few lines: what is done, what is pending, where the
rows are and how to resume. Every other error (an internal bug) keeps its full traceback.
"""

from __future__ import annotations

import difflib
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousSubmissionError",
    "AuthenticationError",
    "BadRequestError",
    "CleanlistError",
    "CleanlistWarning",
    "ConfigurationError",
    "EnrichmentInterrupted",
    "InputValidationError",
    "InsufficientCreditsError",
    "JobBusyError",
    "LoopThreadError",
    "MappingError",
    "NotFoundError",
    "OutputColumnCollision",
    "PermissionDeniedError",
    "RateLimitError",
    "SelectionError",
    "ServerError",
    "UnexpectedResponseError",
    "UserError",
    "UserKeyError",
    "UserTypeError",
    "UserValueError",
    "ValidationError",
    "WaitTimeoutError",
    "did_you_mean",
    "render_user_error",
    "status_error_class",
]


def render_user_error(exc: BaseException, *, width: int = 100) -> list[str]:
    """The lines a notebook shows for a user error: its type, its message (which ends with
    the fix) and any notes added on the way, wrapped; no internal frames.

    >>> render_user_error(ConfigurationError("No Cleanlist API key. Pass api_key=..."))
    ['ConfigurationError: No Cleanlist API key. Pass api_key=...']
    >>> render_user_error(UserValueError("max_credits must be >= 0, got -1"))
    ['ValueError: max_credits must be >= 0, got -1']
    """
    lines: list[str] = []
    name = getattr(type(exc), "shown_as", None) or type(exc).__name__
    for i, text in enumerate([str(exc), *getattr(exc, "__notes__", ())]):
        head = f"{name}: " if i == 0 else ""
        for para in (head + str(text)).splitlines() or [head]:
            lines += textwrap.wrap(para, width, break_on_hyphens=False) or [""]
    return lines


class CleanlistError(Exception):
    """Base class of every error raised by cleanlist-pandas.

    ``user_error`` marks the mistakes a user can fix (see :class:`UserError`): IPython
    shows them as their message only. An error that ends a run started with
    ``errors="raise"`` (it carries ``partial_result``) is one as well.
    """

    #: True for errors the user can fix; IPython then shows the message, not the frames.
    user_error: ClassVar[bool] = False
    #: The name a notebook shows for it (None: the class's own name).
    shown_as: ClassVar[str | None] = None
    #: Set when the error stopped an ``enrich()`` run (``errors="raise"``): the rows finished
    #: so far, and the journal job to resume.
    partial_result: pd.DataFrame | None = None
    job_id: str | None = None

    @property
    def _render_traceback_(self) -> Callable[[], list[str]]:
        # IPython checks hasattr(exc, "_render_traceback_"): an internal error has none
        # (AttributeError), so it keeps its full traceback.
        if not (self.user_error or self.partial_result is not None):
            raise AttributeError("_render_traceback_")
        return lambda: render_user_error(self)


class UserError(CleanlistError):
    """Base of the errors a user can fix: a setting, a column mapping, the key, the
    credits, the plan. In IPython/Jupyter they show as their message and the fix; the
    internal frames are left out (``sys.last_traceback`` still has them).

    >>> ConfigurationError("no key")._render_traceback_()
    ['ConfigurationError: no key']
    >>> hasattr(LoopThreadError("a bug"), "_render_traceback_")
    False
    """

    user_error = True


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """``"; did you mean 'full'?"`` when ``value`` is text close to one of ``choices``
    (difflib, case-insensitive), else ``""``: the end of a message about a typo.

    >>> did_you_mean("ful", ["partial", "full"]), did_you_mean("xyz", ["full"])
    ("; did you mean 'full'?", '')
    """
    if not isinstance(value, str):
        return ""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


class UserValueError(UserError, ValueError):
    """An argument of ours with a value no call can use (``enrichment_type='ful'``,
    ``errors=``, ``max_credits=-1``, ``only_missing=``, ``spend(by=...)``, ``pilot(n=0)``…),
    found before anything is sent. A ``ValueError``, so ``except ValueError`` catches it; a
    notebook shows it as ``ValueError:`` and its message, without the frames.

    >>> err = UserValueError("errors='rasie': use 'warn', 'raise' or 'ignore'")
    >>> isinstance(err, ValueError), err._render_traceback_()
    (True, ["ValueError: errors='rasie': use 'warn', 'raise' or 'ignore'"])
    """

    shown_as = "ValueError"


class UserTypeError(UserError, TypeError):
    """An argument of ours of a type no call can use (``forget(email=5)``); a ``TypeError``,
    shown in a notebook as ``TypeError:`` and its message.

    >>> UserTypeError("forget(): email must be a str, not int")._render_traceback_()
    ['TypeError: forget(): email must be a str, not int']
    """

    shown_as = "TypeError"


class UserKeyError(UserError, KeyError):
    """An id we do not know (``df.cleanlist.resume('job_...')``); a ``KeyError`` whose
    message reads as text (a plain ``KeyError`` shows its message quoted).

    >>> str(UserKeyError("no journaled job 'job_x'"))
    "no journaled job 'job_x'"
    """

    shown_as = "KeyError"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MappingError(UserError, ValueError):
    """The contact columns could not be found or are ambiguous; the message says what to do.

    ``cli_message`` says the same in the command line's words (``-c FIELD=COLUMN`` instead
    of ``columns={...}``); it defaults to the message.

    >>> err = MappingError("pass columns={'first_name': 'A'}", cli_message="pass -c first_name=A")
    >>> str(err), err.cli_message
    ("pass columns={'first_name': 'A'}", 'pass -c first_name=A')
    """

    def __init__(self, message: str, *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = message if cli_message is None else cli_message


class OutputColumnCollision(UserError, ValueError):
    """An output column would overwrite an input column (checked before any request)."""


class SelectionError(UserError, ValueError):
    """``where=`` (or another row selection) cannot be applied to the frame: a mask that is
    not boolean, holds missing values, or is not aligned with the frame's rows. Raised
    before any request; the message names the option and the fix.

    >>> raise SelectionError("where=: 2 missing values")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    SelectionError: where=: 2 missing values
    """


class JobBusyError(UserError):
    """The same job is being run by another process (another kernel or script)."""


class CleanlistWarning(UserWarning):
    """A run finished with rows left over (budget, credits, an ambiguous submission...), or
    with most rows skipped for a missing field that an unused column looks like.

    ``cli_message`` says the same in the command line's words; it defaults to the message.

    >>> w = CleanlistWarning("columns={'first_name': 'A'}", cli_message="-c first_name=A")
    >>> str(w), w.cli_message
    ("columns={'first_name': 'A'}", '-c first_name=A')
    """

    def __init__(self, message: str = "", *, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = message if cli_message is None else cli_message


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, *, cli_message: str | None = None) -> None:
    """Warn (:class:`CleanlistWarning`) at the user's line: the first frame outside this
    package, however deep the call (the accessor, the Polars accessor, ``aenrich``, the
    waiting thread's tick), so Jupyter and ``python -W error`` name the cell or line that
    ran the enrichment, not a line of ours. ``cli_message``: the same in the command line's
    words (the warning's ``cli_message``).

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn_user("rows left over")
    >>> seen[0].filename.startswith("<doctest")   # this line, not one of the package's
    True
    """
    level = 1  # warn_user's own frame; stacklevel n names the (n-1)-th caller above it
    frame = sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(CleanlistWarning(message, cli_message=cli_message), stacklevel=level)


#: ``cl_status`` values of rows whose look-up is over (the rest is skipped or still to come).
_DONE = ("enriched", "not_found", "failed")
#: ``cl_status`` values of rows a re-run of the same call may still fill.
_TO_COME = ("pending", "not_submitted", "awaiting_credits", "unknown")


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _some(counts: Mapping[str, int], names: Sequence[str]) -> str:
    return ", ".join(f"{counts[k]:,} {k}" for k in names if counts.get(k))


class EnrichmentInterrupted(KeyboardInterrupt):
    """Ctrl-C (or Kernel → Interrupt) during ``enrich()``: ``partial_result`` holds every
    row, finished or not (``clp.last_result()`` returns the same frame); ``counts`` are its
    rows by ``cl_status``; ``call`` is the call that resumes.

    The journal keeps every submitted workflow: run the same call again to resume (nothing
    already submitted is paid twice). It stays a ``KeyboardInterrupt`` so that ``except
    KeyboardInterrupt`` and "run all cells" stop at it (see :mod:`cleanlist_pandas._interrupt`
    for a plain script's exit status). In IPython and Jupyter it shows as a few lines — what
    is done, what is pending, where the rows are, how to resume — not as a traceback.

    >>> import pandas as pd
    >>> exc = EnrichmentInterrupted("Interrupted.", partial_result=pd.DataFrame(),
    ...     job_id="job_1", counts={"enriched": 3, "not_found": 1, "pending": 6},
    ...     call="df.cleanlist.enrich('full')")
    >>> for line in exc._render_traceback_(): print(line)   # doctest: +NORMALIZE_WHITESPACE
    Interrupted; nothing paid for is lost. Cleanlist job job_1: 4 of 10 rows done (3
    enriched, 1 not_found); 6 pending.
    The rows so far:  out = clp.last_result()
    Resume for free:  run the same call again, df.cleanlist.enrich('full') (finished rows
    come from the cache; submitted rows are collected, not paid again)
    """

    def __init__(
        self,
        message: str,
        *,
        partial_result: pd.DataFrame,
        job_id: str,
        counts: Mapping[str, int] | None = None,
        call: str | None = None,
    ):
        super().__init__(message)
        self.partial_result = partial_result
        self.job_id = job_id
        self.counts: dict[str, int] = dict(counts or {})
        self.call = call

    def _render_traceback_(self, width: int = 100) -> list[str]:
        """What IPython shows instead of the traceback: a few wrapped lines, no frames
        (``sys.last_traceback`` still has them)."""
        if not self.counts:  # made by hand: the message is all there is
            return render_user_error(self, width=width)
        c = self.counts
        done = sum(c.get(k, 0) for k in _DONE)
        state = f"{done:,} of {_rows(sum(c.values()))} done"
        if done:
            state += f" ({_some(c, _DONE)})"
        rest = "; ".join(
            part for part in (_some(c, _TO_COME), f"{c['skipped']:,} skipped (never sent)"
                              if c.get("skipped") else "") if part
        )
        again = f"run the same call again, {self.call}" if self.call else "run the same call again"
        paras = [
            f"Interrupted; nothing paid for is lost. Cleanlist job {self.job_id}: {state}"
            + (f"; {rest}." if rest else "."),
            "The rows so far:  out = clp.last_result()",
            f"Resume for free:  {again} (finished rows come from the cache; submitted rows "
            "are collected, not paid again)",
        ]
        return [line for para in paras for line in textwrap.wrap(
            para, width, break_on_hyphens=False, break_long_words=False)]


class ConfigurationError(UserError, ValueError):
    """A missing or unusable setting: API key, base URL, timeout, loop strategy...

    >>> raise ConfigurationError("no API key")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ConfigurationError: no API key
    """


class InputValidationError(UserError, ValueError):
    """Contacts that the API would reject, found locally before any request was sent.

    ``problems`` lists ``(index, field, reason)``; ``index`` is the contact's position in
    the list given to ``submit`` (``None`` when the whole request is wrong, e.g. empty).
    """

    def __init__(self, message: str, problems: Sequence[tuple[int | None, str, str]] = ()):
        super().__init__(message)
        self.problems: tuple[tuple[int | None, str, str], ...] = tuple(problems)

    @property
    def indexes(self) -> tuple[int, ...]:
        """The contact indexes that failed, in order, without repeats."""
        seen: dict[int, None] = {}
        for index, _, _ in self.problems:
            if index is not None:
                seen.setdefault(index, None)
        return tuple(seen)


class LoopThreadError(CleanlistError, RuntimeError):
    """A blocking (sync) call was made from the thread that runs the client's event loop."""


class WaitTimeoutError(UserError, TimeoutError):
    """``wait()`` reached its total timeout before the workflow ended.

    The workflow keeps running on the server; ``last`` is the last status read (or None).
    """

    def __init__(self, message: str, *, workflow_id: str, last: Any = None):
        super().__init__(message)
        self.workflow_id = workflow_id
        self.last = last


class APIError(CleanlistError):
    """An error that came from talking to the API.

    Attributes: ``method`` and ``path`` of the request (never the full URL with a key — keys
    never go into URLs anyway), ``workflow_id`` when the request concerned one, ``detail``
    (the API's own message, if any) and ``hint`` (the next step).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        workflow_id: str | None = None,
        detail: Any = None,
        hint: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.workflow_id = workflow_id
        self.detail = detail
        self.hint = hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class APIConnectionError(APIError):
    """No usable answer: connection refused, DNS failure, reset, protocol error."""


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, write or waiting for a pooled connection)."""


class UnexpectedResponseError(APIError):
    """A success status whose body could not be read as the spec describes."""

    def __init__(self, message: str, *, status_code: int | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.status_code = status_code


class AmbiguousSubmissionError(APIError):
    """``POST /enrich/bulk`` may or may not have created a workflow (spec §7).

    The request reached the network, but no definitive answer came back (a time-out, a
    dropped connection, or a 500/502/504). The API has no idempotency key, so re-sending
    could bill twice: the client does **not** re-send. ``contacts`` are the contacts whose
    fate is unknown, ``enrichment_type`` and ``webhook_url`` what was asked; ``status_code``
    is set when a 5xx answer came. Check the balance/ledger or your webhook receiver before
    re-submitting them.
    """

    def __init__(
        self,
        message: str,
        *,
        contacts: Sequence[Mapping[str, Any]] = (),
        enrichment_type: str | None = None,
        webhook_url: str | None = None,
        status_code: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(message, **kwargs)
        self.contacts: tuple[Mapping[str, Any], ...] = tuple(contacts)
        self.enrichment_type = enrichment_type
        self.webhook_url = webhook_url
        self.status_code = status_code


class APIStatusError(APIError):
    """The API answered with an error status. ``status_code`` and ``body`` are kept."""

    #: The status this class stands for (``None`` for the generic class).
    status: int | None = None

    def __init__(self, message: str, *, status_code: int, body: Any = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.status_code = status_code
        self.body = body


class BadRequestError(APIStatusError):
    """400: e.g. an empty or over-long contact list, or a bad status query."""

    status = 400


class AuthenticationError(APIStatusError, UserError):
    """401: the key is missing, malformed, unknown or revoked (or validate-key said invalid)."""

    status = 401


class InsufficientCreditsError(APIStatusError, UserError):
    """402: the organization cannot pay for this request. Nothing was submitted."""

    status = 402


class PermissionDeniedError(APIStatusError, UserError):
    """403: e.g. "Your plan does not include API access"."""

    status = 403


class NotFoundError(APIStatusError, UserError):
    """404: unknown workflow or task id (or wrong base URL)."""

    status = 404


class ValidationError(APIStatusError, UserError):
    """422: the API rejected contacts. ``contact_indexes`` come from each error's ``loc``."""

    status = 422

    def __init__(
        self, message: str, *, contact_indexes: Sequence[int] = (), **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.contact_indexes: tuple[int, ...] = tuple(contact_indexes)


class RateLimitError(APIStatusError, UserError):
    """429: over the rate limit, and retrying was not allowed or did not help.

    ``retry_after`` is the server's delay in seconds (None if it gave none).
    """

    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the service failed; GET requests were already retried with backoff."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: ValidationError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status.

    >>> status_error_class(402).__name__, status_error_class(503).__name__
    ('InsufficientCreditsError', 'ServerError')
    """
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIStatusError)
