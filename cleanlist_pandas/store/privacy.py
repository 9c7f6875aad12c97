"""Personal data on this machine has a lifecycle: erase one person (:func:`forget`).

The result cache holds results with names, e-mail addresses and phones; the job journal
holds the fingerprints of contacts. An erasure request (GDPR art. 17, CCPA) is answered by
:func:`forget`, which removes every cached result and every journal reference of one person,
in every enrichment type, scope and job, matched by what a person knows of themselves: an
e-mail address, a LinkedIn URL, or their name and company (domain or name) — whatever other
fields the run had for them. The spend ledger is not touched: it holds ids and credits
only. Retention (``clp.configure(max_age=...)``) is the other half: see
:mod:`cleanlist_pandas.store.cache` and :mod:`cleanlist_pandas.store.journal`.

Deleted records are overwritten, not only unlinked, and the write-ahead log is truncated
afterwards (:meth:`~cleanlist_pandas.store.files.SQLiteFile.erasing`), so the data does not
linger in free pages of the files.

>>> import tempfile
>>> from cleanlist_pandas.store.cache import ResultCache
>>> from cleanlist_pandas.store.provenance import Scope
>>> d = tempfile.mkdtemp()
>>> with ResultCache(d, scope=Scope("https://api.cleanlist.ai", "org_1")) as c:
...     _ = c.put_many([("fp1", {"status": "completed", "primary_email": "Ada@Acme.io"},
...                     "wf", "t1")], "partial")
>>> print(forget(email="ada@acme.io", cache_dir=d))
removed 1 cached result(s) and 0 journal reference(s) of 1 contact(s) matching the email given
>>> print(forget(email="ada@acme.io", cache_dir=d))
nothing found for the email given: no cached result or journal entry matches
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cleanlist_pandas._constants import CONTACT_FIELDS
from cleanlist_pandas.errors import UserTypeError, UserValueError
from cleanlist_pandas.store.files import journal_path

__all__ = ["Forgotten", "forget", "person_fingerprints"]

#: forget()'s arguments: the contact fields a run fingerprints, and the e-mail address
_ARGS = ("email", *CONTACT_FIELDS)


@dataclass(frozen=True)
class Forgotten:
    """What :func:`forget` removed: ``cache_entries`` (cached results, all enrichment
    types), ``journal_references`` (the person's places in journaled chunks), the
    ``fingerprints`` of the person's contacts that were found (content hashes, no personal
    data), and ``looked_for``: what was looked for, in words (for the message that nothing
    matched). ``found`` is False when nothing of the person was on this machine.

    >>> f = Forgotten(0, 0, (), "the email given")
    >>> f.found, str(f)
    (False, 'nothing found for the email given: no cached result or journal entry matches')
    """

    cache_entries: int
    journal_references: int
    fingerprints: tuple[str, ...]
    looked_for: str = ""

    @property
    def removed(self) -> int:
        """Everything removed, cache entries and journal references together."""
        return self.cache_entries + self.journal_references

    @property
    def found(self) -> bool:
        """Whether anything of the person was found (and removed)."""
        return bool(self.fingerprints) or self.removed > 0

    def __str__(self) -> str:
        if not self.found:
            return (
                f"nothing found for {self.looked_for}: no cached result or journal entry "
                "matches"
            )
        return (
            f"removed {self.cache_entries:,} cached result(s) and {self.journal_references:,} "
            f"journal reference(s) of {len(self.fingerprints):,} contact(s) matching "
            f"{self.looked_for}"
        )


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
    hashed by the same code as a run (:func:`~cleanlist_pandas.frame.mapping.map_contacts`,
    :func:`~cleanlist_pandas.frame.plan.fingerprint`). ``email`` takes part only as a
    run's e-mail column does: as the source of the company domain when there is none.

    >>> from cleanlist_pandas.frame.mapping import map_contacts
    >>> from cleanlist_pandas.frame.plan import plan
    >>> df = pd.DataFrame({"First Name": ["ADA"], "Last Name": ["Lovelace"],
    ...                    "Email": ["ada@acme.io"]})
    >>> run_fp = plan(map_contacts(df), "partial").fingerprints[0]
    >>> run_fp in person_fingerprints({"first_name": "Ada", "last_name": "Lovelace",
    ...                                "email": "ada@acme.io"})
    True
    """
    from cleanlist_pandas.frame.mapping import map_contacts
    from cleanlist_pandas.frame.plan import fingerprint

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


def person_digests(fields: Mapping[str, str]) -> list[str]:
    """The identity digests of what the person gave (see
    :func:`~cleanlist_pandas.frame.plan.identity_digests`): their LinkedIn profile, their
    name at their company's domain (given, or taken from their e-mail address as a run's
    e-mail column gives it), their name at their company's name.

    >>> a = person_digests({"first_name": "Ada", "last_name": "Lovelace",
    ...                     "company_domain": "https://www.acme.io/team"})
    >>> a == person_digests({"first_name": "ADA", "last_name": "Lovelace",
    ...                      "email": "ada@acme.io"})
    True
    >>> len(person_digests({"linkedin_url": "linkedin.com/in/ada"}))
    1
    """
    from cleanlist_pandas.frame.mapping import map_contacts
    from cleanlist_pandas.frame.plan import identity_digests

    row = {f: fields.get(f) for f in _ARGS}
    frame = pd.DataFrame([row], columns=list(_ARGS), dtype=object)
    mapped = map_contacts(frame, columns={f: f for f in _ARGS})
    return sorted({str(d[0]) for d in identity_digests(mapped) if d[0] is not None})


def _looked_for(given: Mapping[str, str]) -> str:
    """What forget() looked for, in words: the fields given, never their values (the
    result may be shown, logged or saved in a notebook).

    >>> _looked_for({"email": "a@x.io", "first_name": "Ada", "last_name": "L"})
    'the email, first_name and last_name given'
    """
    names = list(given)
    words = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"the {words} given"


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
    theirs, in every enrichment type, scope and job. Returns what it removed
    (:class:`Forgotten`, whose ``str`` says it in words, or that nothing matched and what
    was looked for); prints nothing.

    A person asking to be erased gives what they know of themselves; any one of these finds
    them, whatever other fields a run had for them (a run indexes each contact it sends by
    these identities: :func:`~cleanlist_pandas.frame.plan.identity_digests`):

    * ``email`` — cached results whose found e-mail (``primary_email``, ``other_emails``,
      or a discovered contact's) is this address, case-insensitive; with a name, also the
      contacts of that name at the e-mail's domain (as a run's e-mail column gives it).
    * ``linkedin_url`` — the contacts a run sent with this profile (made canonical as a
      run makes it), and cached results whose found profile is this one.
    * ``first_name`` + ``last_name`` + ``company_domain`` (a domain, a website or an
      e-mail address at it) or ``company_name`` — the contacts a run sent with this name
      at this company. Names and the company name are compared case-insensitively. A name
      alone is refused: too many people share one.

    A result matched by content removes its whole cache entry (a ``prospecting_only`` entry
    that lists the person among discovered contacts goes too: the next run looks it up
    again). In the journal a forgotten contact is taken out of its chunks together with its
    task id, so an unfinished job stays resumable for everyone else; if the same frame is
    run again the person is sent as a new contact (and paid again). Run it while no
    enrichment of this cache directory is running: a run in progress may store the person's
    result again.

    Args:
        cache_dir: the directory of the cache and journal (default: the cache directory).

    >>> import cleanlist_pandas as clp
    >>> print(clp.forget(first_name="Ada", last_name="Lovelace",
    ...                  company_domain="acme.io"))                      # doctest: +SKIP
    removed 2 cached result(s) and 1 journal reference(s) of 1 contact(s) matching ...
    """
    from cleanlist_pandas.frame.mapping import canonical_linkedin_urls
    from cleanlist_pandas.store.cache import ResultCache
    from cleanlist_pandas.store.journal import Journal

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
            "forget() needs what the person knows of themselves: email=, linkedin_url=, or "
            "first_name= + last_name= + company_domain= (or company_name=)"
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
    named = {"first_name", "last_name"} & given.keys()
    if named and not given.keys() & {"email", "linkedin_url", "company_domain", "company_name"}:
        raise UserValueError(
            "forget(): a name alone matches too many people; add the company "
            "(company_domain= or company_name=), the e-mail address or the LinkedIn URL"
        )

    fps = set(person_fingerprints(given))
    digests = person_digests(given)
    with ResultCache(cache_dir) as cache:
        fps |= cache.fingerprints_of(digests)
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
        stored = cache.present(ordered)
        n_cache = cache.delete_many(ordered, None, erase=True) if ordered else 0
        journal = Journal(journal_path(cache.dir))
    try:
        n_journal = journal.forget(ordered, found=stored)
    finally:
        journal.close()
    return Forgotten(
        cache_entries=n_cache,
        journal_references=n_journal,
        # only the fingerprints something was stored under: the others were only computed
        fingerprints=tuple(sorted(stored)),
        looked_for=_looked_for(given),
    )
