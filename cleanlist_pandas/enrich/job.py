"""One enrichment run from a DataFrame: map → plan → submit/poll → merge, and its handle.

:func:`enrich` is what ``df.cleanlist.enrich()`` calls. It maps and plans (network-free),
asks the journal whether the same call was started before (then it *resumes*: journaled
workflows are polled, never submitted again), runs the async :class:`Engine` on the client's
loop thread, writes finished results to the cache, and merges everything back onto the
caller's rows. :class:`EnrichmentJob` is the handle of a run started with ``wait=False``.

Statuses of ``cl_status``: ``enriched``, ``not_found``, ``failed``, ``skipped`` (invalid
input, never sent), ``not_submitted`` (the run stopped before this row: budget, 401/403,
cancel), ``awaiting_credits`` (the organization could not pay for it: a 402, or a task that
failed for lack of credits; the next identical call after a top-up sends exactly these rows),
``unknown`` (an ambiguous submission, spec §7: never resent on its own), and
``pending`` (submitted, but the run was interrupted before its result came back: re-run the
same call to collect it, at no new cost).

>>> import pandas as pd, cleanlist_pandas                    # doctest: +SKIP
>>> out = pd.DataFrame({"LinkedIn": ["linkedin.com/in/ada"]}).cleanlist.enrich()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import html
import logging
import os
import threading
import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import ENRICHMENT_TYPES, MAX_UNIT_COST
from cleanlist_pandas._display import html_table, text_table
from cleanlist_pandas.cache import ResultCache, default_cache_dir
from cleanlist_pandas.config import DEFAULT_RATE_LIMIT_PATIENCE, validate_webhook_url
from cleanlist_pandas.enrich.engine import Engine, EngineOutcome, PollPolicy
from cleanlist_pandas.enrich.events import (
    Event,
    JobFinished,
    JobPlanned,
    Listener,
    Waiting,
    emit,
)
from cleanlist_pandas.enrich.journal import (
    AMBIGUOUS,
    AWAITING_CREDITS,
    DONE,
    SENDING,
    SUBMITTED,
    Journal,
)
from cleanlist_pandas.enrich.mapping import map_contacts
from cleanlist_pandas.enrich.merge import (
    FlattenedResults,
    OutputColumnCollision,
    build_output,
    check_output_names,
    discovered_contacts_frame,
)
from cleanlist_pandas.enrich.plan import Plan, plan
from cleanlist_pandas.errors import (
    AuthenticationError,
    CleanlistError,
    InsufficientCreditsError,
    PermissionDeniedError,
)
from cleanlist_pandas.progress import ProgressBar

log = logging.getLogger(__name__)

Errors = Literal["warn", "raise", "ignore"]
JOURNAL_FILENAME = "journal.sqlite3"

_running: set[EnrichmentJob] = set()
_running_lock = threading.Lock()


def running_jobs() -> list[EnrichmentJob]:
    """Jobs of this process that are still running (for the panel).

    >>> running_jobs()
    []
    """
    with _running_lock:
        return sorted(_running, key=lambda j: j.job_id)


class JobBusyError(CleanlistError):
    """The same job is being run by another process (another kernel or script)."""

    user_error = True  # IPython shows the message and the fix, not the frames


class CleanlistWarning(UserWarning):
    """A run finished with rows left over (budget, credits, an ambiguous submission...)."""


class EnrichmentInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``enrich()``: ``partial_result`` holds every row finished so far.

    The journal keeps every submitted workflow: run the same call again to resume (nothing
    already submitted is paid twice).
    """

    def __init__(self, message: str, *, partial_result: pd.DataFrame, job_id: str):
        super().__init__(message)
        self.partial_result = partial_result
        self.job_id = job_id


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


def _check_options(o: Options) -> None:
    if o.enrichment_type not in ENRICHMENT_TYPES:
        raise ValueError(
            f"enrichment_type={o.enrichment_type!r} is not one of {list(ENRICHMENT_TYPES)}"
        )
    if o.errors not in ("warn", "raise", "ignore"):
        raise ValueError(f"errors={o.errors!r}: use 'warn', 'raise' or 'ignore'")
    if o.max_credits is not None and o.max_credits < 0:
        raise ValueError(f"max_credits must be >= 0, got {o.max_credits}")
    if o.webhook_url is not None:
        validate_webhook_url(o.webhook_url)  # before any request, not per chunk


def job_key(enrichment_type: str, fingerprints: np.ndarray) -> str:
    """The journal key of a call: the type and the set of unique contacts.

    >>> job_key("partial", np.array(["b", "a"], dtype=object)) == job_key(
    ...     "partial", np.array(["a", "b"], dtype=object))
    True
    """
    h = hashlib.blake2b(enrichment_type.encode(), digest_size=16)
    for fp in np.sort(fingerprints.astype(str)):
        h.update(fp.encode())
    return h.hexdigest()


def _running_with_key(key: str) -> EnrichmentJob | None:
    with _running_lock:
        return next((j for j in _running if j.key == key), None)


class _AlreadyRunning(Exception):
    """The same call is already running in this process (e.g. a re-run cell, wait=False)."""

    def __init__(self, job: EnrichmentJob) -> None:
        super().__init__(job.job_id)
        self.job = job


class _Prepared:
    """Everything decided before the first request: mapping, plan, journal job, to-send."""

    def __init__(self, df: pd.DataFrame, options: Options, *, create_job: bool = True) -> None:
        _check_options(options)
        if create_job:  # estimate() reports collisions instead of raising
            check_output_names(df, options.enrichment_type, options.prefix)
        self.options = options
        self._owns_job = False  # this process created or locked the journal job
        self._closed = False
        self.job_id = ""
        self._lock_fd: int | None = None
        self._lock_path: Path | None = None
        base = options.cache_dir or default_cache_dir()
        self.cache: ResultCache | None = None
        if options.cache:
            kw: dict[str, Any] = {} if options.max_age is None else {"max_age": options.max_age}
            self.cache = ResultCache(base, **kw)
        self.journal = Journal(Path(base) / JOURNAL_FILENAME)
        try:
            self._prepare(df, options, Path(base), create_job)
        except BaseException:
            self.close()  # every lock and file handle, on every exit path
            raise

    def _prepare(self, df: pd.DataFrame, options: Options, base: Path, create_job: bool) -> None:
        self.mapped = map_contacts(df, options.columns)
        t = options.enrichment_type
        cache = self.cache
        lookup = (lambda fps: cache.get_many(fps, t)) if cache is not None else None
        self.plan: Plan = plan(self.mapped, t, cache_lookup=lookup)
        self.key = job_key(t, self.plan.fingerprints)
        if create_job:
            running = _running_with_key(self.key)
            if running is not None:
                raise _AlreadyRunning(running)
        # estimate() only looks: it must not leave a job behind in the journal
        job = (
            self.journal.open_job(self.key, t, rows=self.plan.n_rows)
            if create_job
            else self.journal.find_open(self.key)
        )
        self.job_id = job.job_id if job is not None else ""
        if create_job:
            self._lock_job(base)
            self._owns_job = True
        chunks = self.journal.chunks(self.job_id) if job is not None else []
        cached = self.plan.cached
        journaled: set[str] = set()
        #: contacts an earlier run of this job could not pay for (sent again now)
        self.awaiting: set[str] = set()
        self.resume_chunks = []
        for c in chunks:
            if c.state in (SENDING, AMBIGUOUS) and options.resend_unknown:
                if create_job:
                    self.journal.forget_chunk(self.job_id, c.chunk)  # the user settled it
                continue
            self.awaiting.update(c.retry)
            if c.state == AWAITING_CREDITS:
                if create_job:
                    self.journal.forget_chunk(self.job_id, c.chunk)  # this run sends them
                continue
            journaled.update(c.fingerprints)
            journaled.difference_update(c.retry)
            if c.state == DONE and all(fp in cached or fp in c.retry for fp in c.fingerprints):
                continue  # every result of it is in the cache: no need to poll again
            if c.state in (SUBMITTED, DONE, SENDING, AMBIGUOUS):
                self.resume_chunks.append(c)
        fps = self.plan.fingerprints
        ids = self.plan.send_ids
        self.to_send: list[tuple[str, dict[str, str]]] = []
        keep = [i for i in ids.tolist() if fps[i] not in journaled]
        if keep:
            contacts = self.plan.contact_dicts(np.asarray(keep, dtype=np.int64))
            self.to_send = [(str(fps[i]), c) for i, c in zip(keep, contacts, strict=True)]
        self.resumed_workflows = sum(1 for c in self.resume_chunks if c.state in (SUBMITTED, DONE))
        # Results are flattened as each workflow arrives, so the final merge only gathers.
        self.flat = FlattenedResults(self.plan.n_unique, enrichment_type=t, prefix=options.prefix)

    @functools.cached_property
    def fp_index(self) -> dict[str, int]:
        """fingerprint -> unique id in the plan."""
        return dict(zip(self.plan.fingerprints.tolist(), range(self.plan.n_unique), strict=True))

    def on_results(self, workflow_id: str, fresh: list[tuple[str, dict[str, Any]]]) -> None:
        """Per finished workflow (loop thread): cache its results and flatten them now, while
        the run still waits on the network, instead of all at the end."""
        if self.cache is not None:
            self.cache.put_many(
                [(fp, res, workflow_id, res.get("task_id")) for fp, res in fresh],
                self.options.enrichment_type,
            )
        index = self.fp_index
        self.flat.add([index[fp] for fp, _ in fresh], [res for _, res in fresh])

    def awaiting_rows(self) -> int:
        """Rows whose contact an earlier run of this job could not pay for (a 402)."""
        if not self.awaiting:
            return 0
        p = self.plan
        unique = np.isin(p.fingerprints.astype(str), np.array(sorted(self.awaiting)))
        codes = p.row_codes[p.row_codes >= 0]
        return int(unique[codes].sum())

    @property
    def worst_case(self) -> float:
        """Worst-case credits of what this run may submit (capped by ``max_credits``)."""
        worst = float(len(self.to_send) * MAX_UNIT_COST[self.options.enrichment_type])
        if self.options.max_credits is not None:
            worst = min(worst, float(self.options.max_credits))
        return worst

    def planned_event(self) -> JobPlanned:
        p = self.plan
        return JobPlanned(
            job_id=self.job_id,
            rows=p.n_rows,
            unique=p.n_unique,
            cached=p.n_cached,
            to_send=len(self.to_send)
            + sum(len(c.fingerprints) for c in self.resume_chunks if c.state != AMBIGUOUS),
            chunks=-(-len(self.to_send) // 250),
            worst_case_credits=self.worst_case,
            resumed_workflows=self.resumed_workflows,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_job and self.job_id and not self.journal.chunks(self.job_id):
            # nothing was ever sent for it (an error before the first request, or a run
            # served from the cache): no open job left behind for `cleanlist-pandas jobs`
            self.journal.discard_job(self.job_id)
            self.remove_lock_file()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        if self.cache is not None:
            self.cache.close()
        self.journal.close()

    def remove_lock_file(self) -> None:
        """Once the job is finished its lock file is not needed any more."""
        if self._lock_path is not None:
            self._lock_path.unlink(missing_ok=True)

    def _lock_job(self, base: Path) -> None:
        """Hold an advisory lock on the job while this process runs it, so a second kernel
        running the same call cannot submit the same contacts; the OS drops it if the
        process dies (so a killed run can be resumed)."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no cross-process guard
            return
        path = Path(base) / f"{self.job_id}.lock"
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JobBusyError(
                f"Cleanlist job {self.job_id} (the same rows and enrichment type) is running in "
                "another process right now. Wait for it to finish, then run this call again: "
                "its results will come from the cache."
            ) from None
        self._lock_fd = fd
        self._lock_path = path


def _finalize(
    df: pd.DataFrame, prep: _Prepared, outcome: EngineOutcome, in_flight_note: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, int]]:
    """Merge cache hits and fresh results onto ``df`` (by unique contact, then by row)."""
    p = prep.plan
    # cache hits pre-filled (decoded in one pass); fresh results go in by unique id
    results, workflow_ids, statuses = p.initial_results()
    errors: list[str | None] = [None] * p.n_unique
    index = prep.fp_index
    fresh_ids = np.fromiter(
        (index[fp] for fp in outcome.results), dtype=np.int64, count=len(outcome.results)
    )
    for u, (res, wf) in zip(fresh_ids.tolist(), outcome.results.values(), strict=True):
        results[u], workflow_ids[u] = res, wf
    for fp, (status, error) in outcome.missing.items():
        u = index[fp]
        if results[u] is None:
            statuses[u], errors[u] = status, error
    # what is left was never submitted (or was in flight when the run was interrupted)
    for u in np.flatnonzero(
        np.fromiter((r is None for r in results), bool, count=p.n_unique)
    ).tolist():
        if statuses[u] is None:
            if outcome.interrupted and in_flight_note:
                statuses[u], errors[u] = "pending", in_flight_note
            else:
                reason = outcome.stop_reason or "the run stopped"
                statuses[u] = "not_submitted"
                errors[u] = f"not submitted: {reason}. Re-run the same call to continue."
    out = build_output(
        df,
        p,
        results,
        statuses=statuses,
        errors=errors,
        workflow_ids=workflow_ids,
        prefix=prep.options.prefix,
        flat=prep.flat,
    )
    # cl_credits is what *this run* paid for the row: a duplicate row shares its first
    # occurrence's lookup and a cache hit costs nothing, so both show 0 and the column sums
    # to the run's spend.
    credits_col = prep.options.prefix + "credits"
    if credits_col in out.columns and len(out):
        paid_once = np.zeros(len(out), dtype=bool)
        paid_ids = np.fromiter(
            (index[fp] for fp in outcome.results if fp not in outcome.prepaid), dtype=np.int64
        )
        paid_once[p.first_rows[paid_ids]] = True
        col = out[credits_col].copy()
        col[~paid_once & col.notna().to_numpy()] = 0
        out[credits_col] = col
    prospects = None
    if p.enrichment_type == "prospecting_only":
        prospects = discovered_contacts_frame(df, results, p.row_codes)
    counts = {str(k): int(v) for k, v in out[prep.options.prefix + "status"].value_counts().items()}
    return out, prospects, counts


def _left_over(counts: Mapping[str, int]) -> int:
    return sum(
        counts.get(s, 0) for s in ("not_submitted", "awaiting_credits", "unknown", "pending")
    )


def _report(
    prep: _Prepared, outcome: EngineOutcome, frame: pd.DataFrame, counts: Mapping[str, int]
) -> None:
    """Warn or raise (per ``errors=``) when rows are left over; finish the journal job."""
    left = _left_over(counts)
    if not left and not outcome.ambiguous_chunks:
        prep.journal.finish_job(prep.job_id)
        prep.remove_lock_file()
    if prep.options.errors == "ignore":
        return
    exc = outcome.stop_error
    if not left and exc is None:
        return
    parts = [f"Cleanlist job {prep.job_id}: {_counts_text(counts)}."]
    if exc is not None:
        parts.append(f"Stopped by {type(exc).__name__}: {exc}")
    if counts.get("not_submitted"):
        parts.append(
            f"{counts['not_submitted']} rows were not submitted; fix the cause, then run the "
            "same call again: finished rows come from the cache and cost nothing."
        )
    if counts.get("awaiting_credits"):
        n = counts["awaiting_credits"]
        parts.append(
            f"{n} rows are 'awaiting_credits': the organization could not pay for them and "
            f"nothing was charged. They need at most {_awaiting_worst(prep, outcome):,.0f} "
            "credits (the worst case). Top up, then run the same call again "
            f"({_call_text(prep.options)}): it sends exactly these rows and pays for nothing "
            "twice."
        )
    if counts.get("unknown"):
        parts.append(
            f"{counts['unknown']} rows are 'unknown' (a submission whose outcome is not known, "
            "never resent automatically); see cl_error, then re-run with resend_unknown=True "
            "if they were not processed."
        )
    if counts.get("pending"):
        parts.append(
            f"{counts['pending']} rows are 'pending': submitted, but their results were not "
            "read back; run the same call again to collect them (no new charge)."
        )
    message = " ".join(parts)
    if prep.options.errors == "raise":
        if exc is not None:
            exc.add_note(message)
            exc.partial_result = frame  # type: ignore[attr-defined]
            exc.job_id = prep.job_id  # type: ignore[attr-defined]
            raise exc
        err = CleanlistError(message)
        err.partial_result = frame  # type: ignore[attr-defined]
        raise err
    warnings.warn(message, CleanlistWarning, stacklevel=4)


def _awaiting_worst(prep: _Prepared, outcome: EngineOutcome) -> float:
    n = sum(1 for st, _ in outcome.missing.values() if st == AWAITING_CREDITS)
    return float(n * MAX_UNIT_COST[prep.options.enrichment_type])


def _call_text(o: Options) -> str:
    """The call that continues a run, e.g. ``df.cleanlist.enrich("full", max_credits=500)``.

    >>> _call_text(Options(enrichment_type="full", max_credits=500))
    "df.cleanlist.enrich('full', max_credits=500)"
    """
    args = [repr(o.enrichment_type)]
    defaults = Options()
    for name in ("columns", "prefix", "max_credits", "webhook_url", "cache_dir"):
        value = getattr(o, name)
        if value != getattr(defaults, name):
            args.append(f"{name}={value!r}")
    return f"df.cleanlist.enrich({', '.join(args)})"


def _counts_text(counts: Mapping[str, int]) -> str:
    order = [
        "enriched",
        "not_found",
        "failed",
        "skipped",
        "not_submitted",
        "awaiting_credits",
        "unknown",
        "pending",
    ]
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k))


def _client_listener(listeners: list[Listener]) -> Any:
    """Turn the client's pacing/retry events into the engine's ``Waiting`` event."""

    def on_client_event(ev: Any) -> None:
        name = type(ev).__name__
        delay = float(getattr(ev, "delay", 0.0) or getattr(ev, "seconds", 0.0) or 0.0)
        if name == "PacerWait" and delay >= 1.0:
            emit(listeners, Waiting(delay, "rate limit (60 requests/min)"))
        elif name == "RetryScheduled":
            reason = getattr(ev, "reason", "") or "retry"
            emit(listeners, Waiting(delay, f"retrying: {reason}"))

    return on_client_event


def _make_sync_client(api_key: str | None, base_url: str | None, client: Any) -> tuple[Any, bool]:
    if client is not None:
        return client, False
    from cleanlist_pandas.client import Client

    return Client(api_key=api_key, base_url=base_url), True


def _balance_failed(exc: CleanlistError) -> None:
    """The balance pre-check is advisory (the server's 402 still guards the spend): a key or
    plan problem stops the run before anything is sent; a 429 storm or an outage of the
    balance endpoint does not."""
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        raise exc
    log.warning(
        "balance not read (%s: %s); submitting without the pre-check", type(exc).__name__, exc
    )


def _balance_or_none(read: Any) -> float | None:
    try:
        return float(read().credits)
    except CleanlistError as exc:
        _balance_failed(exc)
        return None


async def _abalance_or_none(read: Any) -> float | None:
    try:
        return float((await read()).credits)
    except CleanlistError as exc:
        _balance_failed(exc)
        return None


def _check_balance(prep: _Prepared, credits: float | None) -> None:
    worst = prep.worst_case
    if credits is None or worst <= credits:
        return
    from cleanlist_pandas._advice import balance_warning  # the server's rule, what to do

    msg = balance_warning(
        prep.options.enrichment_type, balance=credits, worst_case=worst, to_send=len(prep.to_send)
    )
    if prep.options.errors == "raise":
        raise InsufficientCreditsError(
            "Nothing was submitted (errors='raise'). " + msg,
            status_code=402,
            detail="worst case exceeds balance",
        )
    if prep.options.errors == "warn":
        warnings.warn(msg, CleanlistWarning, stacklevel=4)


class EnrichmentJob:
    """The handle of a run started with ``wait=False``; the work goes on in the background.

    ``progress`` (counters), ``done()``, ``result(timeout=None)`` (blocks, returns the
    frame), ``cancel()`` (stop submitting; what is in flight is still collected and paid
    results are kept), ``prospects`` (``prospecting_only``: the long frame of discovered
    contacts), ``job_id`` (resume with ``df.cleanlist.resume(job_id)``).

    >>> job = df.cleanlist.enrich(wait=False)     # doctest: +SKIP
    >>> job.progress                              # doctest: +SKIP
    {'done': 250, 'total': 1000, 'found': 201, 'credits': 201.0, 'in_flight': 3, ...}
    >>> out = job.result()                        # doctest: +SKIP
    """

    def __init__(
        self,
        df: pd.DataFrame,
        prep: _Prepared,
        engine: Engine,
        bar: ProgressBar,
        future: concurrent.futures.Future[EngineOutcome],
        loop: asyncio.AbstractEventLoop,
        cleanup: Any,
    ) -> None:
        self.job_id = prep.job_id
        self.key = prep.key
        self.enrichment_type = prep.options.enrichment_type
        self._df: pd.DataFrame | None = df
        self._prep = prep
        self._engine = engine
        self._bar = bar
        self._future = future
        self._loop = loop
        self._cleanup = cleanup
        self._lock = threading.Lock()
        self._frame: pd.DataFrame | None = None
        self._error: BaseException | None = None
        self.prospects: pd.DataFrame | None = None
        self.counts: dict[str, int] = {}
        with _running_lock:
            _running.add(self)
        future.add_done_callback(lambda _f: self._forget())

    def _forget(self) -> None:
        with _running_lock:
            _running.discard(self)

    @property
    def progress(self) -> dict[str, Any]:
        """Counters so far: contacts done/total, found, credits, workflows in flight."""
        b = self._bar
        return {
            "done": b.done,
            "total": b.total,
            "found": b.found,
            "credits": b.credits,
            "in_flight": b.in_flight,
            "note": b.note,
            "finished": self._future.done(),
        }

    def progress_text(self) -> str:
        """One line for the panel and the repr."""
        p = self.progress
        state = "finished" if p["finished"] else "running"
        return (
            f"{state}: {p['done']:,}/{p['total']:,} contacts, {p['found']:,} found, "
            f"{p['credits']:,.0f} credits" + (f" ({p['note']})" if p["note"] else "")
        )

    def done(self) -> bool:
        """True when nothing more will happen in the background."""
        return self._future.done()

    def cancel(self) -> None:
        """Stop submitting; in-flight workflows are still collected (paid results kept)."""
        self._loop.call_soon_threadsafe(self._engine.stop, "cancelled by the user")

    def result(self, timeout: float | None = None) -> pd.DataFrame:
        """Wait for the end and return the enriched frame (raises/warns per ``errors=``)."""
        with self._lock:
            if self._frame is not None:
                return self._frame
            if self._error is not None:
                raise self._error
            try:
                outcome = self._future.result(timeout)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(
                    f"job {self.job_id} still running after {timeout} s: {self.progress_text()}"
                ) from None
            finally:
                if self._future.done():
                    self._cleanup()
            assert self._df is not None
            try:
                frame, self.prospects, self.counts = _finalize(self._df, self._prep, outcome)
                self._frame = frame
                self._df = None  # do not keep the caller's frame alive
                _report(self._prep, outcome, frame, self.counts)
            except BaseException as exc:
                self._error = exc
                raise
            finally:
                self._bar.close()
                self._prep.close()
            return frame

    def __repr__(self) -> str:
        return f"<EnrichmentJob {self.job_id} {self.enrichment_type}: {self.progress_text()}>"

    def _repr_html_(self) -> str:
        p = self.progress
        pct = 100.0 * p["done"] / p["total"] if p["total"] else 100.0
        return (
            f"<div><strong>Cleanlist job</strong> <code>{html.escape(self.job_id)}</code> "
            f"({html.escape(self.enrichment_type)})<br>"
            f"<progress value='{pct:.0f}' max='100'></progress> "
            f"{html.escape(self.progress_text())}</div>"
        )


def _prepare_run(
    df: pd.DataFrame, options: Options, listeners: list[Listener], *, draw_on_event: bool = True
) -> tuple[_Prepared, ProgressBar, list[Listener]]:
    prep = _Prepared(df, options)
    bar = ProgressBar(disable=not options.progress, draw_on_event=draw_on_event)
    all_listeners: list[Listener] = [bar, *listeners]
    return prep, bar, all_listeners


def _new_engine(prep: _Prepared, aclient: Any, listeners: list[Listener]) -> Engine:
    o = prep.options
    return Engine(
        client=aclient,
        journal=prep.journal,
        job_id=prep.job_id,
        enrichment_type=o.enrichment_type,
        webhook_url=o.webhook_url,
        max_credits=o.max_credits,
        poll=o.poll,
        listeners=listeners,
        on_results=prep.on_results,
        rate_limit_patience=getattr(
            getattr(aclient, "settings", None), "rate_limit_patience", DEFAULT_RATE_LIMIT_PATIENCE
        ),
    )


def enrich(
    df: pd.DataFrame,
    options: Options,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: Any = None,
    wait: bool = True,
    listeners: list[Listener] | None = None,
    prospects_out: list[pd.DataFrame | None] | None = None,
) -> pd.DataFrame | EnrichmentJob:
    """Run a whole enrichment from synchronous code (script, IPython, Jupyter).

    See :meth:`cleanlist_pandas.accessor.CleanlistAccessor.enrich` for the parameters.
    ``prospects_out``, if given, receives the long frame of discovered contacts.
    """
    from cleanlist_pandas.runner import get_loop_thread, run_sync

    # Check before paying: options and configuration (key, base URL) fail here, before any
    # journal row or job lock exists.
    _check_options(options)
    sync_client, owned = _make_sync_client(api_key, base_url, client)
    # wait=True: the caller's thread draws the bar (run_sync's tick), never the loop thread
    try:
        prep, bar, all_listeners = _prepare_run(
            df, options, list(listeners or ()), draw_on_event=not wait
        )
    except _AlreadyRunning as running:
        if owned:
            sync_client.close()
        # The same call is still running in the background (a re-run cell): attach to it
        # rather than submit the same contacts a second time.
        log.info("attaching to the running job %s", running.job.job_id)
        return running.job.result() if wait else running.job
    except BaseException:
        if owned:
            sync_client.close()
        raise
    emit(all_listeners, prep.planned_event())
    aclient = sync_client.aio
    hook = _client_listener(all_listeners)
    aclient.add_listener(hook)

    def cleanup() -> None:
        aclient.remove_listener(hook)
        if owned:
            sync_client.close()

    engine = _new_engine(prep, aclient, all_listeners)
    try:
        if prep.to_send:
            _check_balance(prep, _balance_or_none(sync_client.balance))
    except BaseException:
        cleanup()
        bar.close()
        prep.close()
        raise

    def coro() -> Any:
        return engine.run(prep.to_send, resume_chunks=prep.resume_chunks)

    if not wait:
        lt = get_loop_thread()
        future = asyncio.run_coroutine_threadsafe(coro(), lt.loop)
        return EnrichmentJob(df, prep, engine, bar, future, lt.loop, cleanup)

    try:
        outcome = run_sync(coro, tick=bar.refresh)
    except KeyboardInterrupt:
        cleanup()
        note = (
            "submitted, but the run was interrupted before the result came back; run the "
            "same call again to collect it (no new charge)"
        )
        try:
            frame, _, counts = _finalize(df, prep, engine.outcome, in_flight_note=note)
        finally:
            bar.close()
            prep.close()
        raise EnrichmentInterrupted(
            f"Interrupted. Cleanlist job {prep.job_id}: {_counts_text(counts)}. Every "
            "submitted workflow is journaled: run the same call again to resume without "
            "paying twice. The rows so far are in this exception's .partial_result.",
            partial_result=frame,
            job_id=prep.job_id,
        ) from None
    except BaseException:
        cleanup()
        bar.close()
        prep.close()
        raise
    cleanup()
    try:
        frame, prospects, counts = _finalize(df, prep, outcome)
        if prospects_out is not None:
            prospects_out.append(prospects)
        emit(all_listeners, JobFinished(prep.job_id, counts, outcome.credits))
        _report(prep, outcome, frame, counts)
    finally:
        bar.close()
        prep.close()
    return frame


async def aenrich(
    df: pd.DataFrame,
    options: Options,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    client: Any = None,
    listeners: list[Listener] | None = None,
) -> pd.DataFrame:
    """The async twin of :func:`enrich`, for code already running in an event loop."""
    from cleanlist_pandas.client import AsyncClient

    _check_options(options)
    owned = client is None
    aclient = client if client is not None else AsyncClient(api_key=api_key, base_url=base_url)
    try:
        prep, bar, all_listeners = _prepare_run(df, options, list(listeners or ()))
    except _AlreadyRunning as running:
        if owned:
            await aclient.aclose()
        return await asyncio.to_thread(running.job.result)
    except BaseException:
        if owned:
            await aclient.aclose()
        raise
    hook = _client_listener(all_listeners)
    aclient.add_listener(hook)
    try:
        emit(all_listeners, prep.planned_event())
        if prep.to_send:
            _check_balance(prep, await _abalance_or_none(aclient.balance))
        engine = _new_engine(prep, aclient, all_listeners)
        outcome = await engine.run(prep.to_send, resume_chunks=prep.resume_chunks)
        frame, _p, counts = _finalize(df, prep, outcome)
        emit(all_listeners, JobFinished(prep.job_id, counts, outcome.credits))
        _report(prep, outcome, frame, counts)
        return frame
    finally:
        aclient.remove_listener(hook)
        if owned:
            await aclient.aclose()
        bar.close()
        prep.close()


@dataclass(frozen=True)
class Estimate:
    """What a run would do, computed without spending anything or sending a bulk request.

    Text (``print``/``repr``) and HTML (Jupyter) forms; ``to_series()`` for pandas.
    """

    counts: Mapping[str, Any]
    balance: float | None
    resumable_workflows: int = 0
    note: str | None = None
    mapping: str = ""

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
        data = {k: v for k, v in self.counts.items() if k != "invalid_by_reason"}
        for reason, n in self.counts.get("invalid_by_reason", {}).items():
            data[f"invalid: {reason}"] = n
        data["balance"] = self.balance
        data["sufficient"] = self.sufficient
        return pd.Series(data, dtype=object, name="estimate")

    def _lines(self) -> list[tuple[str, str]]:
        c = self.counts
        rows = [
            ("enrichment type", str(c["enrichment_type"])),
            ("rows", f"{c['rows']:,}"),
            ("valid", f"{c['valid']:,}"),
            ("invalid", f"{c['invalid']:,}"),
        ]
        rows += [(f"  {r}", f"{n:,}") for r, n in c.get("invalid_by_reason", {}).items()]
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
            ("balance", "unknown" if self.balance is None else f"{self.balance:,.2f}"),
            (
                "sufficient",
                {None: "unknown", True: "yes", False: "no"}[self.sufficient],
            ),
        ]
        if self.resumable_workflows:
            rows.append(("resumable workflows", str(self.resumable_workflows)))
        if self.note:
            rows.append(("note", self.note))
        return rows

    def __repr__(self) -> str:
        return text_table("Cleanlist estimate", self._lines())

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
    """Plan a run and read the balance (a free GET); no bulk request, nothing spent."""
    prep = _Prepared(df, options, create_job=False)
    try:
        counts = prep.plan.counts()
        counts["to_send"] = len(prep.to_send)
        counts["chunks"] = -(-len(prep.to_send) // 250)
        counts["worst_case_credits"] = prep.worst_case
        counts["awaiting_credits"] = prep.awaiting_rows()
        balance: float | None = None
        notes: list[str] = []
        try:
            check_output_names(df, options.enrichment_type, options.prefix)
        except OutputColumnCollision as exc:
            notes.append(f"enrich() would refuse to start: {exc}")
        try:
            sync_client, owned = _make_sync_client(api_key, base_url, client)
            try:
                balance = float(sync_client.balance().credits)
            finally:
                if owned:
                    sync_client.close()
        except CleanlistError as exc:
            notes.append(f"balance not read: {type(exc).__name__}: {exc}")
        return Estimate(
            counts=counts,
            balance=balance,
            resumable_workflows=prep.resumed_workflows,
            note=" ".join(notes) or None,
            mapping=prep.mapped.describe(),
        )
    finally:
        prep.close()


__all__ = [
    "CleanlistWarning",
    "EnrichmentInterrupted",
    "EnrichmentJob",
    "Estimate",
    "Event",
    "JobBusyError",
    "Options",
    "aenrich",
    "enrich",
    "estimate",
    "running_jobs",
]
