"""The sandbox's deterministic oracle: what the "look-up" finds for one contact.

Every outcome is a pure function of the contact's five fields (as received) and the seed,
computed with :mod:`hashlib` (never ``hash()``), so the same contact and seed give the same
result in any process.

>>> from cleanlist_pandas.sandbox.oracle import decide
>>> a = decide({"first_name": "Ada", "last_name": "Lovelace", "company_domain": "acme.com"}, 0)
>>> a == decide({"first_name": "Ada", "last_name": "Lovelace", "company_domain": "acme.com"}, 0)
True
>>> a.prospect["full_name"], a.company["name"]
('Ada Lovelace', 'Acme')
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cleanlist_pandas._constants import CONTACT_FIELDS, PROSPECTING_DISCOVERY_CAP

__all__ = ["Outcome", "canonical_contact", "contact_fingerprint", "decide"]

T = TypeVar("T")

_HEADLINES = (
    "VP Sales",
    "Head of Marketing",
    "Software Engineer",
    "Account Executive",
    "CTO",
    "Founder & CEO",
    "Product Manager",
    "Director of Operations",
    "Data Scientist",
    "Customer Success Manager",
    "Head of Growth",
    "Chief Financial Officer",
)
_LOCATIONS = (
    "San Francisco, CA",
    "New York, NY",
    "Austin, TX",
    "London, UK",
    "Berlin, Germany",
    "Toronto, Canada",
    "Paris, France",
    "Seattle, WA",
    "Boston, MA",
    "Amsterdam, Netherlands",
)
_INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Marketing & Advertising",
    "Education",
    "Logistics",
    "Real Estate",
    "Media",
)
_HEADCOUNTS = (8, 25, 60, 120, 250, 600, 1_200, 5_000, 12_000)
_FIRST = (
    "Alex",
    "Sam",
    "Jordan",
    "Taylor",
    "Morgan",
    "Casey",
    "Riley",
    "Jamie",
    "Avery",
    "Quinn",
    "Maria",
    "David",
    "Sofia",
    "Liam",
    "Emma",
    "Noah",
    "Olivia",
    "Lucas",
    "Mia",
    "Ethan",
)
_LAST = (
    "Smith",
    "Johnson",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Moore",
    "Martin",
    "Lee",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "King",
    "Scott",
)
_COMPANIES = (
    "Northwind Traders",
    "Globex",
    "Initech",
    "Umbrella Analytics",
    "Hooli",
    "Vandelay Industries",
    "Stark Logistics",
    "Wayne Media",
    "Tyrell Systems",
    "Cyberdyne Labs",
    "Soylent Foods",
)
_AREA_CODES = ("212", "310", "415", "512", "617", "646", "206", "312", "303", "404")
_LEGAL_SUFFIXES = {
    "inc",
    "llc",
    "ltd",
    "gmbh",
    "corp",
    "corporation",
    "co",
    "sa",
    "sas",
    "bv",
    "plc",
    "limited",
    "ag",
    "srl",
    "pty",
}
_FAILURE_ERRORS = (
    "Lookup failed: upstream provider timeout",
    "Lookup failed: profile could not be resolved",
    "Lookup failed: data provider error",
)


def canonical_contact(contact: dict[str, Any]) -> dict[str, str]:
    """Return the contact reduced to the five API fields that were sent with a value.

    Unknown keys and ``null`` values are dropped; strings are kept exactly as received.

    >>> canonical_contact({"last_name": "Doe", "first_name": "J", "company_name": None, "x": 1})
    {'first_name': 'J', 'last_name': 'Doe'}
    """
    return {k: contact[k] for k in CONTACT_FIELDS if contact.get(k) is not None}


def contact_fingerprint(contact: dict[str, Any]) -> str:
    """SHA-256 (hex) of the contact as received, in canonical JSON.

    Canonical JSON = :func:`canonical_contact`, ``sort_keys=True``, separators ``(",", ":")``,
    ``ensure_ascii=False``, UTF-8 (lone surrogates, which JSON can carry, pass through).

    >>> len(contact_fingerprint({"linkedin_url": "https://www.linkedin.com/in/x"}))
    64
    """
    text = json.dumps(
        canonical_contact(contact), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What the oracle decided for one contact, independent of the enrichment type.

    >>> decide({"linkedin_url": "https://www.linkedin.com/in/jane-roe-42"}, 1).prospect["last_name"]
    'Roe'
    """

    failed: bool
    error: str | None
    prospect: dict[str, Any]
    company: dict[str, Any]
    primary_email: str | None
    primary_email_status: str | None
    other_emails: list[str]
    phones: list[str]
    discovered: list[dict[str, Any]] = field(default_factory=list)


class _Draws:
    """A cheap deterministic stream of uniform draws: SHA-256 blocks of (seed, salt,
    fingerprint, counter), 8 bytes per draw. Identical in every process."""

    __slots__ = ("_buf", "_key", "_n", "_pos")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._n = 0
        self._buf = b""
        self._pos = 0

    def random(self) -> float:
        if self._pos + 8 > len(self._buf):
            self._buf = hashlib.sha256(self._key + self._n.to_bytes(4, "big")).digest()
            self._n += 1
            self._pos = 0
        value = int.from_bytes(self._buf[self._pos : self._pos + 8], "big")
        self._pos += 8
        return (value >> 11) / 9007199254740992.0  # 53 bits -> [0, 1)

    def randrange(self, start: int, stop: int) -> int:
        return start + int(self.random() * (stop - start))

    def randint(self, a: int, b: int) -> int:
        return self.randrange(a, b + 1)

    def choice(self, seq: Sequence[T]) -> T:
        return seq[int(self.random() * len(seq))]


def _rng(seed: int, fingerprint: str, salt: str) -> _Draws:
    return _Draws(f"{seed}|{salt}|{fingerprint}|".encode())


@functools.lru_cache(maxsize=65536)
def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _clean(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _names_from_slug(url: str) -> tuple[str | None, str | None]:
    m = re.search(r"linkedin\.com/in/([^/?#]+)", url, flags=re.IGNORECASE)
    slug = m.group(1) if m else url.rstrip("/").rsplit("/", 1)[-1]
    tokens = [t for t in re.split(r"[-_.]+", slug) if t and t.isalpha()]
    if not tokens:
        return None, None
    if len(tokens) == 1:
        return tokens[0].capitalize(), None
    return tokens[0].capitalize(), " ".join(t.capitalize() for t in tokens[1:])


def _domain_of(value: str) -> str:
    v = value.strip().lower()
    v = re.sub(r"^[a-z]+://", "", v)
    v = v.split("/", 1)[0].split("@")[-1]
    return v.removeprefix("www.")


def _name_from_domain(domain: str) -> str:
    label = domain.split(".")[0]
    return " ".join(p.capitalize() for p in re.split(r"[-_]+", label) if p) or domain


def _domain_from_name(name: str) -> str:
    words = [_ascii(w) for w in re.split(r"[\s,]+", name)]
    words = [w for w in words if w and w not in _LEGAL_SUFFIXES]
    return ("".join(words) or "company") + ".com"


def _phone(rng: _Draws) -> str:
    return f"+1{rng.choice(_AREA_CODES)}555{rng.randrange(100, 200):04d}"


def _email_variants(first: str | None, last: str | None, domain: str) -> list[str]:
    f, la = _ascii(first or ""), _ascii(last or "")
    if f and la:
        locals_ = [f"{f}.{la}", f"{f[0]}{la}", f, f"{f}{la[0]}", f"{f}_{la}"]
    elif f or la:
        locals_ = [f or la, f"hello.{f or la}"]
    else:
        locals_ = ["contact"]
    return [f"{lp}@{domain}" for lp in locals_]


def decide(
    contact: dict[str, Any],
    seed: int,
    *,
    email_found_rate: float = 0.7,
    phone_found_rate: float = 0.5,
    failure_rate: float = 0.02,
    discovery_cap: int = PROSPECTING_DISCOVERY_CAP,
    discover: bool = True,
    fingerprint: str | None = None,
) -> Outcome:
    """Decide the outcome of one contact from its fields and the seed (pure, deterministic).

    >>> o = decide({"first_name": "Bo", "last_name": "Li", "company_name": "Acme, Inc."}, 7)
    >>> o.company["domain"]
    'acme.com'

    ``discover=False`` skips the (prospecting) discovered contacts, which every other
    field ignores; ``fingerprint`` may pass a precomputed :func:`contact_fingerprint`.
    """
    fp = fingerprint or contact_fingerprint(contact)
    rng = _rng(seed, fp, "outcome")
    linkedin = _clean(contact.get("linkedin_url"))
    first, last = _clean(contact.get("first_name")), _clean(contact.get("last_name"))
    if (first is None or last is None) and linkedin:
        sf, sl = _names_from_slug(linkedin)
        first, last = first or sf, last or sl
    domain_in, cname_in = _clean(contact.get("company_domain")), _clean(contact.get("company_name"))
    if domain_in:
        domain = _domain_of(domain_in)
        cname = cname_in or _name_from_domain(domain)
    elif cname_in:
        cname, domain = cname_in, _domain_from_name(cname_in)
    else:
        cname = rng.choice(_COMPANIES)
        domain = _domain_from_name(cname)
    full = " ".join(p for p in (first, last) if p) or None
    if not linkedin:
        slug = "-".join(_ascii(p) for p in (first, last) if p) or "member"
        linkedin = f"https://www.linkedin.com/in/{slug}-{fp[:6]}"
    prospect = {
        "first_name": first,
        "last_name": last,
        "full_name": full,
        "headline": rng.choice(_HEADLINES),
        "location": rng.choice(_LOCATIONS),
        "linkedin_url": linkedin,
    }
    company = {
        "name": cname,
        "domain": domain,
        "industry": rng.choice(_INDUSTRIES),
        "headcount": rng.choice(_HEADCOUNTS),
    }
    # Independent draws, each from its own salted stream, so changing one rate never
    # reshuffles the others.
    failed = _rng(seed, fp, "fail").random() < failure_rate
    if failed:
        err = _rng(seed, fp, "error").choice(_FAILURE_ERRORS)
        return Outcome(True, err, prospect, company, None, None, [], [])
    erng = _rng(seed, fp, "email")
    email_found = erng.random() < email_found_rate
    primary: str | None = None
    status: str | None = None
    others: list[str] = []
    if email_found:
        variants = _email_variants(first, last, domain)
        primary = variants[0] if erng.random() < 0.6 else erng.choice(variants)
        r = erng.random()
        status = "reliable" if r < 0.75 else ("risky" if r < 0.9 else "unknown")
        rest = [v for v in variants if v != primary]
        others = rest[: erng.randrange(0, min(2, len(rest)) + 1)]
    prng = _rng(seed, fp, "phone")
    phones: list[str] = []
    if prng.random() < phone_found_rate:
        phones = sorted({_phone(prng) for _ in range(prng.choice((1, 1, 1, 2)))})
    drng = _rng(seed, fp, "discover")
    discovered: list[dict[str, Any]] = []
    if discover and discovery_cap > 0:
        n = drng.randint(min(2, discovery_cap), discovery_cap)
        for i in range(n):
            df, dl = drng.choice(_FIRST), drng.choice(_LAST)
            slug = f"{_ascii(df)}-{_ascii(dl)}-{fp[i * 4 : i * 4 + 4]}"
            discovered.append(
                {
                    "first_name": df,
                    "last_name": dl,
                    "full_name": f"{df} {dl}",
                    "headline": drng.choice(_HEADLINES),
                    "location": drng.choice(_LOCATIONS),
                    "linkedin_url": f"https://www.linkedin.com/in/{slug}",
                    "email": f"{_ascii(df)}.{_ascii(dl)}@{domain}",
                    "email_status": "reliable" if drng.random() < 0.8 else "risky",
                }
            )
    return Outcome(False, None, prospect, company, primary, status, others, phones, discovered)
