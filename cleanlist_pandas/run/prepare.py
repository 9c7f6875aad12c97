"""What is decided before the first request of a run: mapping, plan, the journal's job and
its lock, and what to send and what to poll again (the resume decisions).

Resume rules: a journaled chunk that was submitted (or done, with results not all in the
cache) is polled again, never resent; one in doubt (``sending``/``ambiguous``) is reported
``unknown`` unless ``resend_unknown``; contacts an earlier run could not pay for
(``awaiting_credits``) are sent again; everything else not in the cache is sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import MAX_CONTACTS_PER_REQUEST, MAX_UNIT_COST
from cleanlist_pandas._sandbox_info import SandboxInfo
from cleanlist_pandas.errors import JobBusyError, UserKeyError, UserValueError
from cleanlist_pandas.events import JobPlanned
from cleanlist_pandas.frame.mapping import map_contacts
from cleanlist_pandas.frame.merge import FlattenedResults
from cleanlist_pandas.frame.plan import Plan, identity_digests, plan
from cleanlist_pandas.frame.select import Selection, select
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.run.options import Options, check_options, job_key
from cleanlist_pandas.store.cache import ResultCache
from cleanlist_pandas.store.files import (
    JobLock,
    cache_dir_for,
    default_cache_dir,
    defer,
    journal_path,
)
from cleanlist_pandas.store.journal import (
    AMBIGUOUS,
    AWAITING_CREDITS,
    DONE,
    SENDING,
    SUBMITTED,
    ChunkRecord,
    Journal,
)
from cleanlist_pandas.store.provenance import Scope

__all__ = [
    "LATER",
    "Prepared",
    "ToSend",
    "for_server",
    "journaled_type",
    "sync_client_for",
]


class ToSend(Sequence[tuple[str, dict[str, str]]]):
    """The ``(fingerprint, contact)`` pairs a run sends, made a slice at a time, as the
    engine takes its chunks: the first chunk leaves without waiting for the contact objects
    of all the others (7 ms at 5,000 rows), and a run of a million never holds them all.

    >>> import pandas as pd
    >>> p = plan(map_contacts(pd.DataFrame({"LinkedIn": ["linkedin.com/in/a", "x"]})),
    ...          "partial")
    >>> send = ToSend(p, p.send_ids); len(send), send[0][1]
    (1, {'linkedin_url': 'https://www.linkedin.com/in/a'})
    >>> send[:5] == list(send) and send.fingerprints == [send[0][0]]
    True
    """

    def __init__(self, plan: Plan, unique_ids: np.ndarray) -> None:
        self._plan = plan
        self._ids = np.asarray(unique_ids, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, i: int) -> tuple[str, dict[str, str]]: ...

    @overload
    def __getitem__(self, i: slice) -> list[tuple[str, dict[str, str]]]: ...

    def __getitem__(
        self, i: int | slice
    ) -> tuple[str, dict[str, str]] | list[tuple[str, dict[str, str]]]:
        if isinstance(i, slice):
            ids = self._ids[i]
            fps = self._plan.fingerprints[ids].tolist()
            return list(zip(map(str, fps), self._plan.contact_dicts(ids), strict=True))
        u = self._ids[i]
        return str(self._plan.fingerprints[u]), self._plan.contact_dicts([u])[0]

    def __iter__(self) -> Iterator[tuple[str, dict[str, str]]]:
        for start in range(0, len(self), MAX_CONTACTS_PER_REQUEST):
            yield from self[start : start + MAX_CONTACTS_PER_REQUEST]

    @property
    def fingerprints(self) -> list[str]:
        """The fingerprints alone (no contact object is made)."""
        return [str(fp) for fp in self._plan.fingerprints[self._ids].tolist()]


class Later:
    """``Prepared(..., scope=LATER)``: the scope is bound afterwards (:meth:`Prepared.bind`)."""


#: see :class:`Later`
LATER = Later()


class Prepared:
    """Everything decided before the first request, in two steps.

    ``Prepared(df, options, scope=...)`` maps, selects, learns the run's
    :class:`~cleanlist_pandas.store.provenance.Scope` (``scope`` is called with the cache directory
    once every local check has passed: it may ask the API, free, whose organization the key
    is) and plans against that scope's cached results: nothing is written, no lock is taken,
    so the caller can look at ``key`` first (e.g. attach to the same run going on in this
    process). Without a scope (``estimate()`` with no key) nothing cached or journaled is
    looked at. :meth:`open_job` then opens or resumes the journal's job — with
    ``create=True`` it creates the job and takes its cross-process lock; ``False`` (for
    ``estimate()``) only reads — and decides what to send and what to poll. :meth:`close`
    releases everything, on every exit path.

    >>> import pandas as pd, tempfile, pathlib
    >>> from cleanlist_pandas.store.provenance import Scope
    >>> df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/ada-l"]})
    >>> p = Prepared(df, Options(cache_dir=pathlib.Path(tempfile.mkdtemp())),
    ...              scope=lambda _dir: Scope("https://api.cleanlist.ai", "org_1"))
    >>> p.open_job(create=False); (len(p.to_send), p.job_id, str(p.scope))
    (1, '', 'org_1 at https://api.cleanlist.ai')
    >>> p.close()
    """

    def __init__(
        self,
        df: pd.DataFrame,
        options: Options,
        *,
        scope: Scope | Callable[[Path], Scope | None] | Later | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        check_options(options)
        self.options = options
        self._owns_job = False  # this process created or locked the journal job
        self._closed = False
        self.job_id = ""
        self._lock: JobLock | None = None
        self._finish_job = False  # finish the journal job at close (finish_job_when_cached)
        #: where the cache, the journal and the ledger of this run live (``cache_dir``, else
        #: ``options.cache_dir``, else the default: see _store.default_cache_dir); with
        #: ``scope=LATER`` it may be given to :meth:`bind` instead
        chosen = cache_dir or options.cache_dir
        if chosen is None and not isinstance(scope, Later):
            chosen = default_cache_dir()
        self.cache_dir = Path(chosen) if chosen is not None else Path()
        self._base = self.cache_dir
        self.scope: Scope | None = None
        #: the job's worst case when an earlier run started it (a resumed job), else None
        self.job_worst_case: float | None = None
        self.cache: ResultCache | None = None
        #: where the identities of the contacts this run sends are written (the cache's
        #: file; its own handle when ``cache=False``): what ``clp.forget()`` looks them up by
        self.index: ResultCache | None = None
        self._indexed: set[str] = set()  # fingerprints whose identities are queued
        self.journal: Journal | None = None
        self.to_send: Sequence[tuple[str, dict[str, str]]] = []
        #: contacts an earlier run of this job could not pay for (sent again now)
        self.awaiting: set[str] = set()
        self.resume_chunks: list[ChunkRecord] = []
        self.resumed_workflows = 0
        try:
            self.mapped = map_contacts(df, options.columns)
            t = options.enrichment_type
            # where=, only_missing=, fill=: checked against the frame before any request
            self.selection: Selection = select(
                df,
                where=options.where,
                only_missing=options.only_missing,
                fill=options.fill,
                columns=options.columns,
                enrichment_type=t,
            )
            if not isinstance(scope, Later):
                # every local check has passed: now whose results may serve this run (a
                # run with no contact to send asks nothing: it has nothing to look up)
                if callable(scope):
                    scope = scope(self._base) if self.sendable else None
                self.bind(scope)
        except BaseException:
            self.close()
            raise

    @property
    def sendable(self) -> int:
        """Rows that may be sent: valid and kept by ``where=``/``only_missing=`` (local)."""
        return int((self.mapped.valid & self.selection.kept).sum())

    def nothing_to_send(self) -> str:
        """Why no row may be sent, in words (known before any request).

        >>> import pandas as pd
        >>> p = Prepared(pd.DataFrame({"LinkedIn": [None]}), Options(), scope=LATER)
        >>> print(p.nothing_to_send())  # doctest: +ELLIPSIS
        of 1 rows, 0 are left out by where=/only_missing= and 1 are invalid ({'no contact...': 1})
        """
        kept = self.selection.kept
        invalid = kept & ~self.mapped.valid
        reasons = self.mapped.reason_counts(invalid)
        return (
            f"of {self.mapped.n_rows:,} rows, {self.selection.n_excluded:,} are left out by "
            f"where=/only_missing= and {int(invalid.sum()):,} are invalid "
            f"({reasons or 'see df.cleanlist.mapping().describe()'})"
        )

    def bind(self, scope: Scope | None, cache_dir: Path | None = None) -> None:
        """Plan against the cached results of ``scope`` (None: nothing cached is looked at),
        once: for a caller that learns the scope after the local checks of ``__init__``
        (``Prepared(df, options, scope=LATER)``, e.g. an async one), and, if given, the
        cache directory (the server's, see :func:`for_server`).
        """
        options, t = self.options, self.options.enrichment_type
        if cache_dir is not None:
            self.cache_dir = self._base = Path(cache_dir)
        elif self.cache_dir == Path():
            self.cache_dir = self._base = default_cache_dir()
        try:
            self.scope = scope
            if options.cache and scope is not None:
                kw: dict[str, Any] = (
                    {} if options.max_age is None else {"max_age": options.max_age}
                )
                self.cache = ResultCache(self._base, scope=scope, **kw)
            cache = self.cache
            lookup = (lambda fps: cache.get_many(fps, t)) if cache is not None else None
            self.plan: Plan = plan(self.mapped, t, cache_lookup=lookup, selection=self.selection)
            self.key = job_key(t, self.plan.fingerprints)
        except BaseException:
            self.close()
            raise

    def open_job(self, *, create: bool = True) -> None:
        """Open (``create``) or look up the journal's job and decide what to send and poll.

        ``create=True`` takes the job's cross-process lock (:class:`JobBusyError` when
        another process holds it). Raises, and releases everything, on any failure.
        """
        try:
            self._open_job(create)
        except BaseException:
            self.close()  # every lock and file handle, on every exit path
            raise

    def _open_job(self, create_job: bool) -> None:
        options = self.options
        t = options.enrichment_type
        base = self._base
        scope = self.scope
        if scope is None:
            # a run with no contact to send (it needs no job), or estimate() with no key
            # (no job of anyone's can be resumed)
            if create_job and len(self.plan.send_ids):
                raise RuntimeError("a run needs a scope (the API's origin and organization)")
            self.journal = Journal(journal_path(base)) if create_job else None
            self.to_send = ToSend(self.plan, self.plan.send_ids)
            self.flat = FlattenedResults(
                self.plan.n_unique, enrichment_type=t, prefix=options.prefix
            )
            return
        self.journal = Journal(journal_path(base))
        # estimate() only looks: it must not leave a job behind in the journal
        job = (
            self.journal.open_job(
                self.key,
                t,
                rows=self.plan.n_rows,
                scope=scope,
                worst_case=self._capped(len(self.plan.send_ids)),
            )
            if create_job
            else self.journal.find_open(self.key, scope)
        )
        self.job_id = job.job_id if job is not None else ""
        if create_job:
            self._lock_job(base)
            self._owns_job = True
            self.index = self.cache or ResultCache(base, scope=scope)
        chunks = self.journal.chunks(self.job_id) if job is not None else []
        cached = self.plan.cached
        journaled: set[str] = set()
        for c in chunks:
            if c.state in (SENDING, AMBIGUOUS) and options.resend_unknown:
                if create_job:
                    self.journal.forget_chunk(self.job_id, c.number)  # the user settled it
                continue
            self.awaiting.update(c.retry)
            if c.state == AWAITING_CREDITS:
                if create_job:
                    self.journal.forget_chunk(self.job_id, c.number)  # this run sends them
                continue
            journaled.update(c.fingerprints)
            journaled.difference_update(c.retry)
            if c.state == DONE and all(fp in cached or fp in c.retry for fp in c.fingerprints):
                continue  # every result of it is in the cache: no need to poll again
            if c.state in (SUBMITTED, DONE, SENDING, AMBIGUOUS):
                self.resume_chunks.append(c)
        fps = self.plan.fingerprints
        ids = self.plan.send_ids
        keep = [i for i in ids.tolist() if fps[i] not in journaled] if journaled else ids
        keep_fps = [str(fps[i]) for i in keep] if chunks else []
        self.to_send = ToSend(self.plan, np.asarray(keep, dtype=np.int64))
        self.resumed_workflows = sum(1 for c in self.resume_chunks if c.state in (SUBMITTED, DONE))
        if job is not None and chunks:
            # a job an earlier run started: its worst case as it was then (older journals
            # did not record it: the contacts it holds, at the type's unit cost)
            self.job_worst_case = (
                job.worst_case
                if job.worst_case is not None
                else self._capped(
                    len({fp for c in chunks for fp in c.fingerprints} | set(keep_fps))
                )
            )
        # Results are flattened as workflows arrive (by the thread waiting for the run, at
        # each tick; by the loop in batches otherwise), so the final merge only gathers.
        self.flat = FlattenedResults(self.plan.n_unique, enrichment_type=t, prefix=options.prefix)

    def adopt(self, results: Mapping[str, tuple[dict[str, Any], str]]) -> None:
        """Take the fresh results of another run on the same contacts (``{fingerprint:
        (result, workflow_id)}``) for this plan's merge, without opening a job: a frame that
        attaches to a job already running on the same contacts."""
        t = self.options.enrichment_type
        self.flat = FlattenedResults(self.plan.n_unique, enrichment_type=t,
                                     prefix=self.options.prefix)
        index = self.fp_index
        self.flat.add([index[fp] for fp in results], [res for res, _wf in results.values()])

    @functools.cached_property
    def fp_index(self) -> dict[str, int]:
        """fingerprint -> unique id in the plan."""
        return dict(zip(self.plan.fingerprints.tolist(), range(self.plan.n_unique), strict=True))

    def on_results(self, workflow_id: str, fresh: list[tuple[str, dict[str, Any]]]) -> None:
        """Per finished workflow (loop thread): cache its results and flatten them now, while
        the run still waits on the network, instead of all at the end. The cache writes on
        its own thread (the loop does not wait on the disk); :meth:`close` flushes it."""
        if self.cache is not None:
            self.cache.put_many_later(
                [(fp, res, workflow_id, res.get("task_id")) for fp, res in fresh],
                self.options.enrichment_type,
            )
        self._index_later([fp for fp, _ in fresh])
        index = self.fp_index
        self.flat.add([index[fp] for fp, _ in fresh], [res for _, res in fresh])

    def _index_later(self, fingerprints: Sequence[str]) -> None:
        """Queue the identities of these contacts (computed on the writer thread)."""
        fps = [fp for fp in fingerprints if fp not in self._indexed]
        if self.index is None or not fps:
            return
        self._indexed.update(fps)
        self.index.put_identities_later(functools.partial(self.identity_rows, fps))

    def identity_rows(self, fingerprints: Sequence[str]) -> list[tuple[str, str]]:
        """``(identity digest, fingerprint)`` of these contacts of the plan (see
        :func:`~cleanlist_pandas.frame.plan.identity_digests`)."""
        index = self.fp_index
        fps = [fp for fp in fingerprints if fp in index]
        if not fps:
            return []
        rows = self.plan.first_rows[np.fromiter((index[fp] for fp in fps), np.int64, len(fps))]
        contacts = self.plan.mapped.contacts.iloc[rows]
        return [
            (d, fp)
            for digests in identity_digests(contacts)
            for d, fp in zip(digests.tolist(), fps, strict=True)
            if d is not None
        ]

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
        return self._capped(len(self.to_send))

    def _capped(self, contacts: int) -> float:
        worst = float(contacts * MAX_UNIT_COST[self.options.enrichment_type])
        if self.options.max_credits is not None:
            worst = min(worst, float(self.options.max_credits))
        return worst

    def planned_event(self) -> JobPlanned:
        """The event that opens the run: rows, unique, cached, to send, chunks, worst case.

        Its worst case also counts the journaled workflows this run collects (a resumed
        run is charged for what it collects), so a resume's summary does not read
        "163 of 0 worst case"; the balance check (:attr:`worst_case`) counts only what is
        sent."""
        p = self.plan
        resumed = sum(len(c.fingerprints) for c in self.resume_chunks if c.state != AMBIGUOUS)
        return JobPlanned(
            job_id=self.job_id,
            rows=p.n_rows,
            unique=p.n_unique,
            cached=p.n_cached,
            to_send=len(self.to_send) + resumed,
            chunks=-(-len(self.to_send) // MAX_CONTACTS_PER_REQUEST),
            worst_case_credits=self.worst_case
            + resumed * MAX_UNIT_COST[self.options.enrichment_type],
            resumed_workflows=self.resumed_workflows,
            enrichment_type=self.options.enrichment_type,
            excluded=p.n_excluded,
            pilot=self.options.pilot,
            job_worst_case=self.job_worst_case,
        )

    def finish_job_when_cached(self) -> None:
        """Mark the journal job finished when it is closed (every row has its outcome),
        once the results the cache writer still holds are on disk: a finished job is not
        resumed, so results lost to a crash (or a failed write) would be paid for again by
        the next run; unwritten, the job stays open and the next run reads its workflows
        again, for free."""
        self._finish_job = True

    def close(self) -> None:
        """Release the job lock, the cache and the journal (idempotent). While the cache
        writer still has results to write, that wait, finishing the job and closing the
        files happen on the finisher thread (:func:`~cleanlist_pandas.store.files.defer`): the
        caller has its frame at once, and the next run in this process waits for them."""
        if self._closed:
            return
        self._closed = True
        journal = self.journal
        if (
            journal is not None
            and self._owns_job
            and self.job_id
            and not journal.chunks(self.job_id)
        ):
            # nothing was ever sent for it (an error before the first request, or a run
            # served from the cache): no open job left behind for `cleanlist-pandas jobs`
            journal.discard_job(self.job_id)
            self.remove_lock_file()
        elif self._owns_job and self.job_id and self.index is not None:
            # what this run may have sent and did not collect (pending, failed, in doubt):
            # its identities too, so forget() finds its journal entries
            self._index_later(
                [*self.to_send_fingerprints(), *(fp for c in self.resume_chunks
                                                  for fp in c.fingerprints)]
            )
        index = self.index
        if index is not None and index.busy:
            defer(self._finish_and_release)
        else:
            self._finish_and_release()

    def to_send_fingerprints(self) -> list[str]:
        """The fingerprints of what this run sends."""
        send = self.to_send
        return send.fingerprints if isinstance(send, ToSend) else [fp for fp, _c in send]

    def _finish_and_release(self) -> None:
        cache, index, journal = self.cache, self.index, self.journal
        try:
            written = index is None or (index.flush() and not index.failed_writes)
            if self._finish_job and written and journal is not None:
                journal.finish_job(self.job_id)
                self.remove_lock_file()
        finally:
            if self._lock is not None:
                self._lock.release()
            if cache is not None:
                cache.close()
            if index is not None and index is not cache:
                index.close()
            if journal is not None:
                journal.close()

    def remove_lock_file(self) -> None:
        """Once the job is finished its lock file is not needed any more."""
        if self._lock is not None:
            self._lock.remove()

    def _lock_job(self, base: Path) -> None:
        """Hold the job's cross-process lock while this process runs it, so a second kernel
        running the same call cannot submit the same contacts; the OS drops it if the
        process dies (so a killed run can be resumed). On every platform (``filelock``)."""
        job_id = self.job_id
        self._lock = JobLock(
            base / f"{job_id}.lock",
            busy=lambda _path: JobBusyError(
                f"Cleanlist job {job_id} (the same rows and enrichment type) is running in "
                "another process right now. Wait for it to finish, then run this call again: "
                "its results will come from the cache."
            ),
        )
        self._lock.acquire()



def journaled_type(
    df: pd.DataFrame,
    job_id: str,
    columns: Mapping[str, Hashable | None] | None = None,
    cache_dir: Path | None = None,
    *,
    where: Any = None,
    only_missing: Any = None,
    client: Any = None,
) -> str:
    """The enrichment type of journaled job ``job_id``, after checking that ``df`` (with
    ``columns``, ``where=`` and ``only_missing=``) holds the same contacts it was started on
    and, given the ``client`` that would resume it, that the job was started at the same
    server and organization (its workflows exist nowhere else: resumed elsewhere, it would
    be sent again, and paid again).

    >>> journaled_type(df, "job_3f2a9c...")        # doctest: +SKIP
    'full'
    """
    if client is not None and cache_dir is None:
        _options, cache_dir = for_server(Options(), client.sandbox_info())
    journal = Journal(journal_path(cache_dir))
    try:
        job = journal.job(job_id)
    finally:
        journal.close()
    if job is None:
        raise UserKeyError(
            f"no journaled job {job_id!r}: `cleanlist-pandas jobs` lists the jobs of this "
            "machine's cache directory"
        )
    if client is not None:
        from cleanlist_pandas.store.provenance import scope_of

        here = scope_of(client, cache_dir or default_cache_dir(client.base_url))
        if job.scope != here:
            started = str(job.scope) if job.scope is not None else "an unknown server (0.1)"
            raise UserValueError(
                f"job {job_id} was started at {started}; this client is {here}. Its "
                "workflows exist only there: resume it with a client of that server and "
                "organization (base_url=, api_key=), or run enrich() here to start afresh "
                "(it is paid again)"
            )
    mapped = map_contacts(df, columns)
    t = job.enrichment_type
    chosen = select(df, where=where, only_missing=only_missing, columns=columns, enrichment_type=t)
    if job_key(t, plan(mapped, t, selection=chosen).fingerprints) != job.key:
        raise UserValueError(
            f"job {job_id} was started on other rows, another column mapping or another "
            "selection; pass the same frame (and columns=, where=, only_missing=) it was "
            "started with"
        )
    return t


def for_server(options: Options, sandbox: SandboxInfo | None) -> tuple[Options, Path]:
    """The run's options and cache directory once the server is known: against a local
    sandbox (``sandbox``, from :meth:`~cleanlist_pandas.client.Client.sandbox_info`), the
    workflows are read at the sandbox's speed (``PollPolicy().scaled(time_scale)``, unless
    ``poll=`` was given) and the cache, journal and ledger are its scratch directory's,
    unless a directory was chosen (:func:`~cleanlist_pandas.store.files.cache_dir_for`).

    >>> from cleanlist_pandas._sandbox_info import SandboxInfo
    >>> o, d = for_server(Options(cache_dir=Path("/tmp/x")), SandboxInfo(time_scale=0.1))
    >>> o.poll.first, d.as_posix()
    (0.5, '/tmp/x')
    """
    if sandbox is not None and options.poll is None:
        options = replace(options, poll=PollPolicy().scaled(sandbox.time_scale))
    cache_dir = options.cache_dir or cache_dir_for(sandbox.scratch_dir if sandbox else None)
    return options, Path(cache_dir)


def sync_client_for(api_key: str | None, base_url: str | None, client: Any) -> tuple[Any, bool]:
    """The client to use, and whether the run owns it (and closes it at the end): the given
    one, or a new :class:`~cleanlist_pandas.client.Client` (configuration errors raise here,
    before anything is opened)."""
    if client is not None:
        return client, False
    from cleanlist_pandas.client import Client

    return Client(api_key=api_key, base_url=base_url), True


