"""Where a stored result came from: the API's origin and the organization that paid for it.

Every result the cache keeps, every job the journal keeps and every run the spend ledger
records is attributed to a :class:`Scope` — the API's origin (``https://api.cleanlist.ai``,
or a local sandbox's ``http://127.0.0.1:PORT``) and the organization id the API gave for
the key (``GET /auth/validate-key``, free). A result is only ever served to a run of the
same scope: a sandbox's invented results never answer a run against the real API, and one
organization's results never answer another's.

The organization of a key is asked once and remembered under the key's fingerprint
(:func:`~cleanlist_pandas.config.key_fingerprint`, never the key) in the ``accounts`` table
of the spend ledger's file, next to the billing history it explains; a later run of the
same key at the same origin asks nothing.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> asked = []
>>> def ask():
...     asked.append(1)
...     return "org_1"
>>> s = remembered_scope(d, "https://api.cleanlist.ai", "fp", ask)
>>> s, remembered_scope(d, "https://api.cleanlist.ai", "fp", ask) == s, len(asked)
(Scope(origin='https://api.cleanlist.ai', organization_id='org_1'), True, 1)
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cleanlist_pandas._sandbox_info import origin_of
from cleanlist_pandas.errors import RateLimitError
from cleanlist_pandas.store.files import SQLiteFile, spend_path

__all__ = ["Scope", "ascope_of", "remembered_scope", "scope_of", "sole_scope"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    origin TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    checked_at REAL NOT NULL,
    PRIMARY KEY (origin, key_fingerprint)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Scope:
    """The API's origin and the organization that paid: what every stored result, job and
    run is attributed to.

    >>> str(Scope("https://api.cleanlist.ai", "org_1"))
    'org_1 at https://api.cleanlist.ai'
    """

    origin: str
    organization_id: str

    def __str__(self) -> str:
        return f"{self.organization_id} at {self.origin}"


def _lookup(path: Path, origin: str, key_fp: str) -> str | None:
    db = SQLiteFile(path, schema=_SCHEMA, name="accounts")
    try:
        with db.lock:
            row = db.conn.execute(
                "SELECT organization_id FROM accounts WHERE origin = ? AND key_fingerprint = ?",
                (origin, key_fp),
            ).fetchone()
        return None if row is None else str(row[0])
    finally:
        db.close(wait=True)


def _remember(path: Path, origin: str, key_fp: str, organization_id: str) -> None:
    db = SQLiteFile(path, schema=_SCHEMA, name="accounts")
    try:
        with db.lock:
            db.conn.execute(
                "INSERT OR REPLACE INTO accounts VALUES (?, ?, ?, ?)",
                (origin, key_fp, organization_id, time.time()),
            )
    finally:
        db.close(wait=True)


def sole_scope(cache_dir: str | os.PathLike[str], origin: str) -> Scope | None:
    """The scope of the one organization this cache directory has used at ``origin``, or
    None (none, or several): for a look that pays nothing and has no key to ask with, such
    as ``estimate()`` without a key, which then shows that organization's cached results.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> sole_scope(d, "https://a.io") is None
    True
    >>> _ = remembered_scope(d, "https://a.io", "fp", lambda: "org_1")
    >>> sole_scope(d, "https://a.io")
    Scope(origin='https://a.io', organization_id='org_1')
    """
    path = spend_path(cache_dir)
    if not path.exists():
        return None
    db = SQLiteFile(path, schema=_SCHEMA, name="accounts")
    try:
        with db.lock:
            orgs = {
                r[0]
                for r in db.conn.execute(
                    "SELECT organization_id FROM accounts WHERE origin = ?", (origin,)
                )
            }
    finally:
        db.close(wait=True)
    return Scope(origin, orgs.pop()) if len(orgs) == 1 else None


def remembered_scope(
    cache_dir: str | os.PathLike[str],
    origin: str,
    key_fp: str,
    ask: Callable[[], str],
) -> Scope:
    """The scope of a key at an origin: remembered in ``cache_dir``, else ``ask()``-ed (the
    organization id, from ``validate-key``) and remembered."""
    path = spend_path(cache_dir)
    org = _lookup(path, origin, key_fp)
    if org is None:
        org = ask()
        _remember(path, origin, key_fp, org)
    return Scope(origin, org)


class _KeyInfo(Protocol):
    @property
    def organization_id(self) -> str | None: ...


class _Settings(Protocol):
    @property
    def rate_limit_patience(self) -> float: ...


class _SyncClient(Protocol):
    @property
    def base_url(self) -> str: ...

    @property
    def settings(self) -> _Settings: ...

    @property
    def key_fingerprint(self) -> str: ...

    def validate_key(self) -> _KeyInfo: ...


class _AsyncClient(Protocol):
    @property
    def base_url(self) -> str: ...

    @property
    def settings(self) -> _Settings: ...

    @property
    def key_fingerprint(self) -> str: ...

    def validate_key(self) -> Awaitable[_KeyInfo]: ...


def scope_of(client: _SyncClient, cache_dir: str | os.PathLike[str]) -> Scope:
    """The scope of a sync client's runs (one free ``validate-key`` the first time a key is
    seen at an origin in this cache directory; a bad key raises ``AuthenticationError``
    there, before anything is paid).

    >>> scope_of(clp.Client(), "/tmp/c")                # doctest: +SKIP
    Scope(origin='https://api.cleanlist.ai', organization_id='org_...')
    """
    fp = client.key_fingerprint

    def ask() -> str:
        give_up = time.monotonic() + client.settings.rate_limit_patience
        while True:
            try:
                return _organization(client.validate_key().organization_id, fp)
            except RateLimitError as exc:  # another client of the organization: wait
                wait = _patient_wait(exc, give_up)
                if wait is None:
                    raise
                time.sleep(wait)

    return remembered_scope(cache_dir, origin_of(client.base_url), fp, ask)


def _patient_wait(exc: RateLimitError, give_up: float) -> float | None:
    """How long to wait before asking again after a 429, or None once the run's patience
    (``rate_limit_patience``) would be spent: a 429 is a reason to wait, as in a run.

    >>> e = RateLimitError("x", status_code=429, retry_after=2.0)
    >>> _patient_wait(e, time.monotonic() + 60), _patient_wait(e, time.monotonic())
    (2.0, None)
    """
    wait = max(float(exc.retry_after if exc.retry_after is not None else 1.0), 0.0)
    return None if time.monotonic() + wait > give_up else wait


def _organization(organization_id: str | None, key_fp: str) -> str:
    """The organization id ``validate-key`` gave, or — when it gave none (a tolerant read
    of an answer without it) — the key itself stands for it, by its fingerprint, so the
    key's results serve that key alone.

    >>> _organization("org_1", "ab12"), _organization(None, "ab12")
    ('org_1', 'key:ab12')
    """
    return organization_id or f"key:{key_fp}"


async def ascope_of(client: _AsyncClient, cache_dir: str | os.PathLike[str]) -> Scope:
    """:func:`scope_of` for an :class:`~cleanlist_pandas.client.AsyncClient`.

    >>> await ascope_of(clp.AsyncClient(), "/tmp/c")     # doctest: +SKIP
    """
    origin = origin_of(client.base_url)
    path = spend_path(cache_dir)
    fp = client.key_fingerprint
    org = _lookup(path, origin, fp)
    if org is None:
        give_up = time.monotonic() + client.settings.rate_limit_patience
        while org is None:
            try:
                org = _organization((await client.validate_key()).organization_id, fp)
            except RateLimitError as exc:
                wait = _patient_wait(exc, give_up)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
        _remember(path, origin, fp, org)
    return Scope(origin, org)
