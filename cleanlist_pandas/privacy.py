"""Personal data on this machine has a lifecycle: erase one person (:func:`forget`).

The result cache holds results with names, e-mail addresses and phones; the job journal
holds the fingerprints of contacts. An erasure request (GDPR art. 17, CCPA) is answered by
:func:`forget`, which removes every cached result and every journal reference of one person,
in every enrichment type, matched the way a run matches a contact. The spend ledger is not
touched: it holds ids and credits only. Retention (``clp.configure(max_age=...)``) is the
other half: see :mod:`cleanlist_pandas.cache` and :mod:`cleanlist_pandas.enrich.journal`.

Deleted records are overwritten, not only unlinked, and the write-ahead log is truncated
afterwards (:meth:`~cleanlist_pandas._store.SQLiteFile.erasing`), so the data does not
linger in free pages of the files.

>>> import tempfile
>>> from cleanlist_pandas.cache import ResultCache
>>> d = tempfile.mkdtemp()
>>> with ResultCache(d) as c:
...     _ = c.put_many([("fp1", {"status": "completed", "primary_email": "Ada@Acme.io"},
...                     "wf", "t1")], "partial")
>>> forget(email="ada@acme.io", cache_dir=d)
Forgotten(cache_entries=1, journal_references=0, fingerprints=('fp1',))
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cleanlist_pandas._constants import CONTACT_FIELDS
from cleanlist_pandas._store import journal_path
from cleanlist_pandas.errors import UserTypeError, UserValueError

__all__ = ["Forgotten", "forget", "person_fingerprints"]

#: forget()'s arguments: the contact fields a run fingerprints, and the e-mail address
_ARGS = ("email", *CONTACT_FIELDS)


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget` removed: ``cache_entries`` (cached results, all enrichment
    types), ``journal_references`` (the person's places in journaled chunks) and the
    person's ``fingerprints`` (content hashes, no personal data) that were looked for."""

    cache_entries: int
    journal_references: int
    fingerprints: tuple[str, ...]

    @property
    def removed(self) -> int:
        """Everything removed, cache entries and journal references together."""
        return self.cache_entries + self.journal_references


def _check(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UserTypeError(f"forget(): {name} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise UserValueError(f"forget(): {name} is blank; pass a value or leave it out")
    return value.strip()


def person_fingerprints(fields: Mapping[str, str]) -> list[str]:
    """The fingerprints a run gives this person's contact, for every valid combination of
    the given fields (a run may have had only some of these columns), normalized and
    hashed by the same code as a run (:func:`~cleanlist_pandas.enrich.mapping.map_contacts`,
    :func:`~cleanlist_pandas.enrich.plan.fingerprint`). ``email`` takes part only as a
    run's e-mail column does: as the source of the company domain when there is none.

    >>> from cleanlist_pandas.enrich.mapping import map_contacts
    >>> from cleanlist_pandas.enrich.plan import plan
    >>> df = pd.DataFrame({"First Name": ["ADA"], "Last Name": ["Lovelace"],
    ...                    "Email": ["ada@acme.io"]})
    >>> run_fp = plan(map_contacts(df), "partial").fingerprints[0]
    >>> run_fp in person_fingerprints({"first_name": "Ada", "last_name": "Lovelace",
    ...                                "email": "ada@acme.io"})
    True
    """
    from cleanlist_pandas.enrich.mapping import map_contacts
    from cleanlist_pandas.enrich.plan import fingerprint

    present = [f for f in CONTACT_FIELDS if fields.get(f)]
    email = fields.get("email")
    rows: list[dict[str, str | None]] = []
    for r in range(1, len(present) + 1):
        for combo in itertools.combinations(present, r):
            row: dict[str, str | None] = {f: fields[f] for f in combo}
            rows.append(row)
            if email and "company_domain" not in combo:
                rows.append({**row, "email": email})  # the domain from the e-mail column
    if not rows:
        return []
    frame = pd.DataFrame(rows, columns=list(_ARGS), dtype=object)
    mapped = map_contacts(frame, columns={f: f for f in _ARGS})
    fps = fingerprint(mapped)[mapped.valid]
    return sorted(dict.fromkeys(str(f) for f in fps))


def _same_email(value: Any, email: str) -> bool:
    return isinstance(value, str) and value.strip().casefold() == email.casefold()


def _emails(result: Mapping[str, Any]) -> Iterable[Any]:
    yield result.get("primary_email")
    others = result.get("other_emails")
    if isinstance(others, list):
        yield from others
    for d in result.get("discovered_contacts") or ():
        if isinstance(d, Mapping):
            yield d.get("email")


def _linkedin_urls(result: Mapping[str, Any]) -> Iterable[Any]:
    prospect = result.get("prospect")
    if isinstance(prospect, Mapping):
        yield prospect.get("linkedin_url")
    for d in result.get("discovered_contacts") or ():
        if isinstance(d, Mapping):
            yield d.get("linkedin_url")


def forget(
    *,
    email: str | None = None,
    linkedin_url: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    company_domain: str | None = None,
    company_name: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Forgotten:
    """Erase one person from this machine: every cached result and every journal entry of
    theirs, in every enrichment type. Returns the counts (:class:`Forgotten`); prints
    nothing.

    What each argument matches:

    * ``first_name``, ``last_name``, ``company_domain``, ``company_name``, ``linkedin_url``
      — the contact as a run sends it: normalized and fingerprinted by the same code as
      ``enrich()`` (names case-insensitive, a domain from a URL, the canonical LinkedIn
      profile URL). Every valid combination of the fields given is tried (a LinkedIn URL
      alone, names and a domain, both…), since the run may have had only some of these
      columns. Each fingerprint found is removed from the cache (all types) and from every
      journaled chunk.
    * ``email`` — cached results whose found e-mail (``primary_email``, ``other_emails``,
      or a discovered contact's ``email``) is this address, case-insensitive; also, with
      names, the company domain taken from it, as a run's e-mail column gives it.
    * ``linkedin_url`` — also cached results whose found profile (``prospect.linkedin_url``,
      or a discovered contact's) is this profile.

    A result matched by content removes its whole cache entry (a ``prospecting_only`` entry
    that lists the person among discovered contacts goes too: the next run looks it up
    again) and its fingerprint from the journal.

    In the journal a forgotten contact is taken out of its chunks together with its task id,
    so an unfinished job stays resumable for everyone else; if the same frame is run again
    the person is sent as a new contact (and paid again). Run it while no enrichment of
    this cache directory is running: a run in progress may store the person's result again.

    Args:
        cache_dir: the directory of the cache and journal (default: the cache directory).

    >>> import cleanlist_pandas as clp
    >>> clp.forget(email="ada@acme.io", linkedin_url="linkedin.com/in/ada")  # doctest: +SKIP
    Forgotten(cache_entries=2, journal_references=1, fingerprints=('3f2a…', …))
    """
    from cleanlist_pandas.cache import ResultCache
    from cleanlist_pandas.enrich.journal import Journal
    from cleanlist_pandas.enrich.mapping import canonical_linkedin_urls

    given = {
        name: v
        for name, value in (
            ("email", email),
            ("linkedin_url", linkedin_url),
            ("first_name", first_name),
            ("last_name", last_name),
            ("company_domain", company_domain),
            ("company_name", company_name),
        )
        if (v := _check(name, value)) is not None
    }
    if not given:
        raise UserValueError(
            "forget() needs at least one of email=, linkedin_url=, first_name=, last_name=, "
            "company_domain=, company_name="
        )
    profile: str | None = None
    if linkedin_url is not None:
        profile = canonical_linkedin_urls([given["linkedin_url"]])[0]
        if profile is None:
            raise UserValueError(
                f"forget(): linkedin_url={given['linkedin_url']!r} is not a LinkedIn profile "
                "URL (linkedin.com/in/...)"
            )
    if email is not None and "@" not in given["email"]:
        raise UserValueError(f"forget(): email={given['email']!r} is not an e-mail address")

    fps = set(person_fingerprints(given))
    with ResultCache(cache_dir) as cache:
        if email is not None:
            address = given["email"]
            for fp, _t, entry in cache.entries_containing(address.casefold()):
                if any(_same_email(e, address) for e in _emails(entry.result)):
                    fps.add(fp)
        if profile is not None:
            slug = profile.rsplit("/in/", 1)[1]
            for fp, _t, entry in cache.entries_containing(slug):
                found = [u for u in _linkedin_urls(entry.result) if isinstance(u, str)]
                if found and profile in canonical_linkedin_urls(found).tolist():
                    fps.add(fp)
        ordered = sorted(fps)
        n_cache = cache.delete_many(ordered, None, erase=True) if ordered else 0
    journal = Journal(journal_path(cache_dir))
    try:
        n_journal = journal.forget(ordered)
    finally:
        journal.close()
    return Forgotten(
        cache_entries=n_cache, journal_references=n_journal, fingerprints=tuple(ordered)
    )
