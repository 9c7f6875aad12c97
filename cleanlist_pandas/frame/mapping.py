"""Find the contact columns of a DataFrame, normalize them and check each row.

Why one module of this size: detecting a column, normalizing its values and the reason a
row is skipped are one decision per field (a website column is found, reduced to its
registered domain, and judged by the same rules); the per-field normalizers share the
vectorized machinery (factorize once, work on distinct values) that makes 1M rows cheap.

The whole step is keyed by row *position* (0..n-1), never by index label, so duplicate
labels and MultiIndexes are fine. It is vectorized the pandas way: every input column is
factorized first (``pd.factorize``), the string clean-up runs once per *distinct* raw value
(a CRM export repeats first names, companies and websites a lot), and the results are
gathered back to rows with ``numpy.take`` on the codes. The public-suffix look-up
(``tldextract``, bundled snapshot, never the network) also runs once per distinct host.

>>> import pandas as pd
>>> df = pd.DataFrame({"First Name": [" Ada ", "Bob"], "Last Name": ["Lovelace", None],
...                    "Website": ["https://www.acme.co.uk/about", "bob.io"]})
>>> m = map_contacts(df)
>>> m.contacts.loc[0, "company_domain"], bool(m.valid[0]), m.reason[1]
('acme.co.uk', True, 'missing last_name')
"""

from __future__ import annotations

import functools
import re
import shlex
import unicodedata
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import CONTACT_FIELDS
from cleanlist_pandas._perf import gc_paused
from cleanlist_pandas.errors import MappingError, UserTypeError, UserValueError

__all__ = [
    "EXTRA_SOURCES",
    "FREE_MAIL_DOMAINS",
    "HEADER_ALIASES",
    "HINT_SAMPLE",
    "HINT_SHARE",
    "LANGUAGE_HEADERS",
    "VALUE_FIELDS",
    "MappedContacts",
    "MappingHint",
    "canonical_linkedin_urls",
    "map_contacts",
    "normalize_domains",
    "value_column",
]


def _py_columns(pairs: Sequence[tuple[str, Hashable | None]], option: str = "columns") -> str:
    """``columns={...}`` (or another option's ``{field: column}``) as a user would type it.

    >>> _py_columns([("first_name", "Vorname"), ("email", None)])
    "columns={'first_name': 'Vorname', 'email': None}"
    >>> _py_columns([("phone", "Mobile")], "only_missing")
    "only_missing={'phone': 'Mobile'}"
    """
    return option + "={" + ", ".join(f"{f!r}: {c!r}" for f, c in pairs) + "}"


def _cli_columns(pairs: Sequence[tuple[str, Hashable | None]], flag: str = "-c") -> str:
    """The same as ``-c FIELD=COLUMN`` options of the command line (``FIELD=`` is None).

    >>> _cli_columns([("first_name", "Vorname"), ("email", None), ("last_name", "Nach name")])
    "-c first_name=Vorname -c email= -c 'last_name=Nach name'"
    >>> _cli_columns([("phone", "Mobile")], "--only-missing")
    '--only-missing phone=Mobile'
    """
    return " ".join(
        f"{flag} " + shlex.quote(f"{f}={'' if c is None else c}") for f, c in pairs
    )


#: Source keys accepted by ``columns=`` besides the five contact fields.
EXTRA_SOURCES: tuple[str, ...] = ("email", "full_name")

#: A header is compared by its *key*: Unicode-normalized (NFKD), accents dropped, case-folded
#: and every character that is not a letter or digit removed, so ``First Name``,
#: ``first_name``, ``FIRST-NAME`` all read ``firstname`` and ``Prénom``, ``PRENOM``,
#: ``prénom`` all read ``prenom``. A label that is not text (a number, a MultiIndex tuple)
#: spells no header.
_KEY_STRIP = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=4096)
def _text_key(label: str) -> str:
    text = unicodedata.normalize("NFKD", label.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _KEY_STRIP.sub("", text)


def _header_key(label: Hashable) -> str:
    r"""The comparison key of a column label (see ``_KEY_STRIP``).

    >>> _header_key("Prénom"), _header_key(" PRENOM "), _header_key("Apellido(s)")
    ('prenom', 'prenom', 'apellidos')
    >>> _header_key("E-Mail-Adresse"), _header_key("Téléphone portable"), _header_key(3)
    ('emailadresse', 'telephoneportable', '\x003')
    """
    if not isinstance(label, str):
        return "\0" + str(label)  # never an alias: a key holds letters and digits only
    return _text_key(str(label))


#: English header spellings per field, as keys (see :func:`_header_key`).
_ENGLISH_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": (
        "firstname",
        "fname",
        "givenname",
        "first",
        "forename",
        "contactfirstname",
        "personfirstname",
        "leadfirstname",
        "vorname",
        "prenom",
    ),
    "last_name": (
        "lastname",
        "surname",
        "lname",
        "familyname",
        "last",
        "contactlastname",
        "personlastname",
        "leadlastname",
        "nachname",
    ),
    "company_name": (
        "company",
        "companyname",
        "organization",
        "organisation",
        "organizationname",
        "organisationname",
        "accountname",
        "account",
        "employer",
        "org",
        "firm",
        "businessname",
        "currentcompany",
    ),
    "company_domain": (
        "website",
        "companywebsite",
        "domain",
        "companydomain",
        "url",
        "companyurl",
        "websiteurl",
        "companywebsiteurl",
        "web",
        "homepage",
        "site",
        "accountwebsite",
        "organizationwebsite",
        "emaildomain",
    ),
    "linkedin_url": (
        "linkedin",
        "linkedinurl",
        "linkedinprofile",
        "linkedinprofileurl",
        "personlinkedinurl",
        "contactlinkedinurl",
        "linkedinlink",
        "li",
        "liurl",
    ),
    "email": (
        "email",
        "workemail",
        "emailaddress",
        "businessemail",
        "mail",
        "workemailaddress",
        "contactemail",
        "email1",
        "primaryemail",
    ),
    "full_name": ("fullname", "name", "contactname", "personname", "leadname"),
    # not a contact field: the column a found phone would go to (only_missing=, fill=)
    "phone": (
        "phone",
        "phonenumber",
        "phoneno",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "mobilephonenumber",
        "mobileno",
        "cell",
        "cellphone",
        "cellnumber",
        "telephone",
        "telephonenumber",
        "tel",
        "phone1",
        "primaryphone",
        "workphone",
        "directphone",
        "directdial",
        "businessphone",
        "officephone",
        "personalphone",
        "contactphone",
    ),
}

#: Header spellings of CRM and tool exports in other languages, per language and field, as
#: they are written (Outlook's contact CSV in each language, the field labels of HubSpot,
#: Salesforce, Pipedrive and Zoho, and the usual hand-made sheets); matched by key like the
#: English ones. ``Nom`` is the French *last*
#: name, ``Nombre`` (Spanish) and ``Nome`` (Portuguese) the *first* name, as those CRMs
#: label them; a bare ``Name``/``Naam`` is a full name, as in English.
LANGUAGE_HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "de": {
        "first_name": ("Vorname", "Rufname", "Person - Vorname"),
        "last_name": ("Nachname", "Familienname", "Zuname", "Person - Nachname"),
        "full_name": ("Vollständiger Name", "Kontaktname", "Ansprechpartner"),
        "company_name": (
            "Firma",
            "Firmenname",
            "Unternehmen",
            "Unternehmensname",
            "Name des Unternehmens",
            "Arbeitgeber",
            "Accountname",
        ),
        "company_domain": (
            "Webseite",
            "Firma Website",
            "Firmenwebsite",
            "Unternehmenswebsite",
            "Internetseite",
            "Internetadresse",
            "Webadresse",
            "Firmendomain",
        ),
        "linkedin_url": ("LinkedIn Profil", "LinkedIn-Profil-URL", "LinkedIn Profil Link"),
        "email": (
            "E-Mail-Adresse",
            "E-Mail geschäftlich",
            "Geschäftliche E-Mail",
            "Mailadresse",
        ),
        "phone": (
            "Telefon",
            "Telefonnummer",
            "Telefon geschäftlich",
            "Mobiltelefon",
            "Mobiltelefonnummer",
            "Mobil",
            "Mobilnummer",
            "Handy",
            "Handynummer",
            "Rufnummer",
        ),
    },
    "fr": {
        "first_name": ("Prénom", "Prénom du contact"),
        "last_name": ("Nom", "Nom de famille"),
        "full_name": ("Nom complet", "Nom et prénom", "Prénom et nom"),
        "company_name": (
            "Entreprise",
            "Société",
            "Nom de l'entreprise",
            "Nom de la société",
            "Nom du compte",
            "Organisation - Nom",
            "Raison sociale",
            "Employeur",
        ),
        "company_domain": (
            "Site web",
            "Site internet",
            "Site web de l'entreprise",
            "Site de l'entreprise",
            "URL du site web",
            "Page web",
            "Domaine",
        ),
        "linkedin_url": (
            "Profil LinkedIn",
            "URL LinkedIn",
            "URL du profil LinkedIn",
            "Lien LinkedIn",
        ),
        "email": (
            "Adresse e-mail",
            "Courriel",
            "Adresse courriel",
            "Adresse électronique",
            "Adresse de messagerie",
            "E-mail professionnel",
        ),
        "phone": (
            "Téléphone",
            "Numéro de téléphone",
            "Téléphone portable",
            "Téléphone mobile",
            "Tél. mobile",
            "Portable",
            "Numéro de portable",
            "Téléphone bureau",
            "Téléphone professionnel",
        ),
    },
    "es": {
        "first_name": ("Nombre", "Nombre de pila", "Primer nombre"),
        "last_name": ("Apellido", "Apellidos", "Apellido(s)"),
        "full_name": ("Nombre completo", "Nombre y apellidos"),
        "company_name": (
            "Empresa",
            "Compañía",
            "Nombre de la empresa",
            "Nombre de la compañía",
            "Nombre de la cuenta",
            "Organización",
            "Organización - Nombre",
            "Razón social",
            "Empleador",
        ),
        "company_domain": (
            "Sitio web",
            "Página web",
            "Sitio web de la empresa",
            "URL del sitio web",
            "Dominio",
        ),
        "linkedin_url": (
            "Perfil de LinkedIn",
            "Perfil LinkedIn",
            "URL de LinkedIn",
            "URL del perfil de LinkedIn",
        ),
        "email": (
            "Correo electrónico",
            "Correo",
            "Dirección de correo",
            "Dirección de correo electrónico",
        ),
        "phone": (
            "Teléfono",
            "Número de teléfono",
            "Móvil",
            "Teléfono móvil",
            "Celular",
            "Teléfono celular",
            "Teléfono del trabajo",
        ),
    },
    "pt": {
        "first_name": ("Nome", "Primeiro nome", "Prenome"),
        "last_name": ("Sobrenome", "Apelido", "Último nome"),
        "full_name": ("Nome completo",),
        "company_name": (
            "Empresa",
            "Companhia",
            "Nome da empresa",
            "Nome da conta",
            "Organização",
            "Organização - Nome",
            "Razão social",
            "Empregador",
        ),
        "company_domain": (
            "Site",
            "Site da empresa",
            "Website da empresa",
            "URL do site",
            "Página web",
            "Domínio",
        ),
        "linkedin_url": (
            "Perfil do LinkedIn",
            "Perfil no LinkedIn",
            "URL do LinkedIn",
            "URL do perfil do LinkedIn",
        ),
        "email": ("Endereço de e-mail", "Correio eletrônico", "Correio electrónico"),
        "phone": (
            "Telefone",
            "Número de telefone",
            "Celular",
            "Telefone celular",
            "Número de celular",
            "Telemóvel",
        ),
    },
    "nl": {
        "first_name": ("Voornaam", "Roepnaam"),
        "last_name": ("Achternaam", "Familienaam"),
        "full_name": ("Naam", "Volledige naam", "Contactpersoon"),
        "company_name": (
            "Bedrijf",
            "Bedrijfsnaam",
            "Organisatie",
            "Organisatie - Naam",
            "Onderneming",
            "Werkgever",
            "Accountnaam",
        ),
        "company_domain": (
            "Website",
            "Webadres",
            "Bedrijfswebsite",
            "Webpagina",
            "Internetadres",
            "Domein",
        ),
        "linkedin_url": ("LinkedIn-profiel", "LinkedIn-profiel URL", "LinkedIn-URL"),
        "email": ("E-mailadres", "E-mail"),
        "phone": (
            "Telefoon",
            "Telefoonnummer",
            "Mobiel",
            "Mobiel nummer",
            "Mobiele telefoon",
            "Mobiel telefoonnummer",
            "GSM",
        ),
    },
}


def _all_aliases() -> dict[str, tuple[str, ...]]:
    """English keys first, then each language's, without repeats (same field twice is fine:
    ``Empresa`` is Spanish and Portuguese)."""
    out: dict[str, list[str]] = {f: list(keys) for f, keys in _ENGLISH_ALIASES.items()}
    for fields in LANGUAGE_HEADERS.values():
        for f, spellings in fields.items():
            for key in map(_header_key, spellings):
                if key not in out[f]:
                    out[f].append(key)
    return {f: tuple(keys) for f, keys in out.items()}


#: Header keys recognised per field (:func:`_header_key`: ``First Name``, ``first_name``,
#: ``FIRST-NAME`` all read ``firstname``; ``Prénom``, ``PRENOM`` read ``prenom``): the English
#: spellings and those of :data:`LANGUAGE_HEADERS` (German, French, Spanish, Portuguese,
#: Dutch).
HEADER_ALIASES: dict[str, tuple[str, ...]] = _all_aliases()

#: Fields whose *values* a run finds (``cl_email``, ``cl_phone``) and whose column in the
#: frame ``only_missing=`` reads and ``fill=`` writes; detected like the contact columns.
VALUE_FIELDS: tuple[str, ...] = ("email", "phone")
#: How their headers are spelled, for messages (case, accents, spaces and punctuation ignored).
VALUE_FIELD_EXAMPLES: dict[str, str] = {
    "email": "Email, E-mail, Work Email, Email Address, email_address, E-Mail-Adresse, "
    "Adresse e-mail, Correo electrónico, E-mailadres",
    "phone": "Phone, Mobile, Phone Number, Mobile Phone, Cell, Telephone, phone_number, "
    "Telefon, Mobiltelefon, Téléphone, Portable, Teléfono, Móvil, Telefone, Celular, "
    "Telefoonnummer, Mobiel",
}

#: Free-mail providers: their domain says nothing about the employer, so an e-mail address
#: at one of them is never used as the company domain.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "ymail.com",
        "rocketmail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "protonmail.com",
        "proton.me",
        "pm.me",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "zoho.com",
        "qq.com",
        "163.com",
        "126.com",
        "fastmail.com",
        "tutanota.com",
        "hey.com",
        "free.fr",
        "orange.fr",
        "laposte.net",
        "t-online.de",
        "libero.it",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "naver.com",
        "daum.net",
    }
)

#: Text that means "no value" in CRM exports (compared case-insensitively).
_BLANK_WORDS = frozenset({"nan", "none", "null", "n/a", "#n/a", "-", "--", "—", "<na>"})
#: Only text this short can be a blank word (case folding never shortens text), so longer
#: values skip the look-up. Derived from the list: a longer blank word is still caught.
_BLANK_MAX_LEN = max(len(w) for w in _BLANK_WORDS)

#: A "name" with no letter in it but a digit: ``123``, ``4.5``, ``+1 (555)``.
_NUMERIC_NAME = re.compile(r"(?=\D*\d)[\d\W_]+\Z")
#: Scheme, user and host of a URL, e-mail address or bare host. A lone surrogate in the
#: host makes the match fail (atomic prefix, possessive host, then a look-ahead): such a
#: value has no domain, and it is named as unusable rather than cut short at the surrogate.
_HOST_RE = re.compile(
    r"(?>(?:[a-z][a-z0-9+.\-]*://|mailto:|//)?(?:[^@/?#\s]*@)?)"
    r"([^/?#:\s\ud800-\udfff]*+)(?![\ud800-\udfff])"
)
#: Characters a profile slug never holds raw: delimiters, whitespace, controls, surrogates.
_SLUG_CHARS = r"[^/?#\s\x00-\x1f\x7f\ud800-\udfff]"
#: A ``/in/`` profile URL; the slug (group 1) holds at least one letter or digit.
_LI_RE = re.compile(
    r"(?:https?://)?(?:[a-z0-9\-]+\.)?linkedin\.com/in/"
    rf"((?={_SLUG_CHARS}*?[^\W_]){_SLUG_CHARS}++)(?:[/?#]\S*)?\Z"
)
#: A run of percent-escapes (the URL is lower-cased first).
_PCT_RUN = re.compile(r"(?:%[0-9a-f]{2})+")
#: ASCII characters an escape may be decoded to in a slug: RFC 3986 "unreserved" ones.
_UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._~")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
LINKEDIN_PREFIX = "https://www.linkedin.com/in/"

# Problem bits for the reason of an invalid row (order = order in the message).
_LI_BAD = 1
_FIRST_MISSING = 2
_FIRST_BAD = 4
_LAST_MISSING = 8
_LAST_BAD = 16
_COMPANY_MISSING = 32
_DOMAIN_BAD = 64
_EMPTY = 128
_LI_SLUG = 256
_LINKEDIN_REASON = "invalid linkedin_url: not a profile URL (/in/…)"
_SLUG_REASON = (
    "invalid linkedin_url: the profile name is blank or holds an encoded space, control or "
    "reserved character (%20, %0A, %2F, %3F, %23 …)"
)

# Unusable cells: a value that cannot be read as text (list, dict, set, bytearray: pandas
# cannot even hash it) or text with a lone surrogate (not valid Unicode: it cannot be sent
# as JSON/UTF-8). The row is skipped and its reason names the column. Per distinct value:
_NOT_TEXT = 1
_SURROGATE = 2
#: Source columns, in reason order; source ``i`` has bit ``_NOT_TEXT_BIT << i`` and
#: ``_SURROGATE_BIT << i`` in a row's problem bits.
_SOURCES = (
    "first_name",
    "last_name",
    "full_name",
    "company_name",
    "company_domain",
    "email",
    "linkedin_url",
)
_NOT_TEXT_BIT = 1 << 9
_SURROGATE_BIT = 1 << 16
_UNUSABLE = sum((_NOT_TEXT_BIT | _SURROGATE_BIT) << i for i in range(len(_SOURCES)))


class _NotText:
    """Stands for every unhashable cell of a column while it is factorized."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not text>"


_NOT_TEXT_CELL = _NotText()


@functools.lru_cache(maxsize=1)
def _extractor() -> Any:
    """A tldextract instance that only ever reads its bundled public-suffix snapshot."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


# --------------------------------------------------------------------------- cleaning
def _to_text(v: Any) -> str:
    """A raw cell (not missing) as text: numbers without a spurious ``.0``."""
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _texts(uniques: np.ndarray) -> list[str]:
    """Uniques (never missing) as str; a fast path when they all are str already."""
    vals = uniques.tolist()
    if pd.api.types.infer_dtype(uniques, skipna=False) == "string":
        return vals
    return [_to_text(v) for v in vals]


def _drop_blank_words(out: np.ndarray) -> np.ndarray:
    limit = _BLANK_MAX_LEN
    short = np.fromiter((len(v) <= limit for v in out), bool, len(out)) if len(out) else None
    if short is not None and short.any():
        idx = np.flatnonzero(short)
        blank = [i for i in idx if (v := out[i]) == "" or v.casefold() in _BLANK_WORDS]
        out[blank] = None
    return out


def _clean_texts(texts: list[str]) -> np.ndarray:
    """Trim, collapse inner whitespace, blank words → None. Object array out."""
    out = np.empty(len(texts), dtype=object)
    out[:] = [" ".join(v.split()) for v in texts]
    return _drop_blank_words(out)


def _factorize(
    col: pd.Series, *, clean: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Codes (-1 = missing), uniques (object; cleaned unless ``clean=False``) and kinds.

    Factorizes the column's object values in one pass (the cost of the whole mapping step
    is dominated by touching every cell once), then works on the distinct values only.

    ``kinds`` is None when every value is usable, else a uint8 array per unique:
    ``_NOT_TEXT`` (an unhashable cell: list, dict, set, bytearray), ``_SURROGATE`` (text
    with a lone surrogate; checked here when ``clean``, else by the caller's normalizer,
    which reads every value anyway); those uniques are None. An unhashable cell makes the
    hash table raise, so the check costs nothing when there is none (and only an object
    column can hold one).
    """
    values = np.asarray(col, dtype=object)
    not_text = False
    try:
        codes, u = _object_factorize(values)
    except TypeError:
        if col.dtype != object:
            raise
        codes, u = _object_factorize(_stand_in_for_unhashable(values))
        not_text = True
    texts = _texts(u)
    kinds: np.ndarray | None = None
    if not_text:
        kinds = np.zeros(len(u), dtype=np.uint8)
        kinds[[i for i, v in enumerate(u.tolist()) if v is _NOT_TEXT_CELL]] = _NOT_TEXT
    if clean:
        sur = _surrogates(texts)
        if sur is not None:
            kinds = np.zeros(len(u), dtype=np.uint8) if kinds is None else kinds
            kinds[sur] = _SURROGATE
        out = _clean_texts(texts)
    else:
        out = np.empty(len(u), dtype=object)
        out[:] = texts
    if kinds is not None:
        out[kinds != 0] = None
    return codes, out, kinds


def _stand_in_for_unhashable(values: np.ndarray) -> np.ndarray:
    """A copy of ``values`` with every unhashable cell replaced by ``_NOT_TEXT_CELL``."""
    out = values.copy()
    for i, v in enumerate(values.tolist()):
        try:
            hash(v)
        except TypeError:
            out[i] = _NOT_TEXT_CELL
    return out


def _surrogates(texts: list[str]) -> np.ndarray | None:
    """Bool per text, True where it holds a lone surrogate; None when none does.

    One join and an ``isascii``/latin-1 test settle the usual case in C (a surrogate needs
    a wide string); only text outside Latin-1 is encoded to UTF-8 to be sure.
    """
    joined = "".join(texts)
    if joined.isascii():
        return None
    try:
        joined.encode("latin-1")
        return None
    except UnicodeEncodeError:
        pass
    try:
        joined.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    return np.fromiter((_SURROGATE_RE.search(t) is not None for t in texts), bool, len(texts))


def _row_kinds(codes: np.ndarray, kinds: np.ndarray | None, source: str) -> np.ndarray | None:
    """Per-row problem bits of a source's unusable cells (None when it has none)."""
    if kinds is None or not kinds.any():
        return None
    i = _SOURCES.index(source)
    k = np.append(kinds, 0).take(codes)
    bits = np.where(k == _NOT_TEXT, _NOT_TEXT_BIT << i, 0)
    bits |= np.where(k == _SURROGATE, _SURROGATE_BIT << i, 0)
    return bits.astype(np.uint32)


def _object_factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` of an object array: int64 codes (-1 = missing), object uniques.

    (It used pandas' private ``PyObjectHashTable`` with a table sized from a sample; on the
    1M-row benchmark frame that saved 0.03 s of 1.1 s over all columns, within noise, so
    the public call is used.)
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)


def _missing(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(values), dtype=bool)


def _bad_mask(raw: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Raw value present (and not a blank word) but normalized to nothing.

    Only the raw values whose result is missing are read: the raw strings are the
    caller's, scattered in memory, and one pass over all of them costs ~0.3 µs each in
    cache misses (the results are fresh and compact).
    """
    bad = np.zeros(len(raw), dtype=bool)
    idx = np.flatnonzero(_missing(result))
    if not len(idx):
        return bad
    sub = raw[idx]
    present = ~_missing(sub)
    hits = [
        i
        for i, v in zip(idx[present].tolist(), sub[present].tolist(), strict=True)
        if not isinstance(v, str) or (v.strip() and v.strip().casefold() not in _BLANK_WORDS)
    ]
    bad[hits] = True
    return bad


def _surrogates_at(values: np.ndarray, where: np.ndarray) -> np.ndarray | None:
    """Bool per value, True where ``where`` holds and the text has a lone surrogate
    (None when there is none); ``values[where]`` are str."""
    idx = np.flatnonzero(where)
    sur = _surrogates(values[idx].tolist())
    if sur is None:
        return None
    out = np.zeros(len(values), dtype=bool)
    out[idx[sur]] = True
    return out


def _gather(codes: np.ndarray, uniques: np.ndarray) -> np.ndarray:
    """Row values from codes; code -1 → None."""
    ext = np.empty(len(uniques) + 1, dtype=object)
    ext[:-1] = uniques
    ext[-1] = None
    return ext.take(codes)


def normalize_domains(values: Any, *, skip_free_mail: bool = False) -> np.ndarray:
    """Registered domains of hosts, URLs or e-mail addresses (object array, None = none).

    Lower-cases, strips scheme, user, path, port and ``www.``, then keeps the registered
    domain by the public-suffix list (bundled snapshot). Runs tldextract once per distinct
    host. ``skip_free_mail`` drops gmail.com & co. (for e-mail columns). A host with a lone
    surrogate (invalid Unicode) has no domain.

    >>> normalize_domains(["https://blog.acme.co.uk/x", "jo@Example.COM", "nope"]).tolist()
    ['acme.co.uk', 'example.com', None]
    """
    return _domains(values, skip_free_mail=skip_free_mail)[0]


def _domains(values: Any, *, skip_free_mail: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`normalize_domains`, and per value True where its host holds a lone surrogate.

    Such a host fails ``_HOST_RE`` and stands in as ``_NO_HOST``, which is put first so that
    it always has host code 0: no extra pass over the values to find them.
    """
    arr = np.asarray(values, dtype=object)
    hosts = np.empty(len(arr) + 1, dtype=object)
    hosts[0] = _NO_HOST
    match = _HOST_RE.match
    hosts[1:] = [
        None
        if v is None or v in _BLANK_WORDS
        else (m.group(1).strip(".").removeprefix("www.") if (m := match(v)) else _NO_HOST)
        for v in [
            v.strip().lower() if type(v) is str else None if v is None else _to_text(v).lower()
            for v in arr.tolist()
        ]
    ]
    hcodes, huniq = _object_factorize(hosts)
    hcodes = hcodes[1:]
    reg_arr = np.empty(len(huniq), dtype=object)
    reg_arr[1:] = [_registered_domain(h) for h in huniq[1:].tolist()]
    reg_arr[0] = None
    if skip_free_mail and len(reg_arr):
        reg_arr[np.isin(reg_arr, list(FREE_MAIL_DOMAINS))] = None
    return _gather(hcodes, reg_arr), hcodes == 0


#: The host of a value whose host holds a lone surrogate (``_HOST_RE`` never reads a space).
_NO_HOST = " "


@functools.lru_cache(maxsize=200_000)
def _registered_domain(host: str) -> str | None:
    """Registered domain of a host by the public-suffix list, or None."""
    if not host:
        return None
    if _PLAIN_HOST.match(host) is not None and "xn--" not in host:
        trie = _suffix_trie()
        if trie is not None:
            return _walk_suffix_trie(trie, host.split("."))
    return _extractor().extract_str(host).top_domain_under_public_suffix or None


#: A lower-case ASCII host of non-empty labels: tldextract's URL parsing, dot folding and
#: punycode decoding are all no-ops on it, so its trie walk can be done directly.
_PLAIN_HOST = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*\Z")


# tldextract's suffix trie is private (``_get_tld_extractor().tlds_excl_private_trie``, its
# nodes' ``matches`` and ``end``). Walking it by hand for plain hosts measured 0.064 s per
# 100k hosts against 0.283 s through the public ``extract_str`` (tldextract 5.4); the 1M-row
# benchmark frame has ~200k distinct hosts, so ~0.4 s of the map step. The fall-back is
# ``extract_str`` (any host, and every host if the internals are gone); a tldextract release
# that changes them fails loudly in tests/enrich/test_private_internals.py and in
# test_fast_suffix_walk_matches_tldextract_on_every_rule, instead of going slow unnoticed.
@functools.lru_cache(maxsize=1)
def _suffix_trie() -> Any:
    """tldextract's public-suffix trie (ICANN section), or None if its internals changed."""
    try:
        trie = _extractor()._get_tld_extractor().tlds_excl_private_trie
        trie.matches  # noqa: B018 - the attributes the walk uses
        trie.end  # noqa: B018
    except Exception:  # pragma: no cover - a tldextract release without these internals
        return None
    return trie


def _walk_suffix_trie(trie: Any, labels: list[str]) -> str | None:
    """``top_domain_under_public_suffix`` of plain labels, as tldextract's ``suffix_index``.

    Same trie, same walk (longest matching rule from the right; ``*`` wildcards and ``!``
    exceptions), ~10x less overhead per host (about 8 µs → 1 µs).
    """
    n = len(labels)
    node = trie
    suffix_idx = idx = n
    for label in reversed(labels):
        nxt = node.matches.get(label)
        if nxt is not None:
            idx -= 1
            node = nxt
            if node.end:
                suffix_idx = idx
            continue
        if "*" in node.matches:
            suffix_idx = idx if "!" + label in node.matches else idx - 1
        break
    if suffix_idx >= n or suffix_idx < 1:
        return None
    domain = labels[suffix_idx - 1]
    return ".".join(labels[suffix_idx - 1 :]) if domain else None


def _canonical_slug(slug: str) -> str | None:
    """A lower-cased slug with percent-escapes, canonical; None when it is no profile name.

    Escapes of unreserved ASCII characters (letters, digits, ``-._~``) and of UTF-8 encoded
    non-ASCII letters are decoded (``j%c3%bcrgen`` → ``jürgen``). Reserved characters,
    whitespace and controls are never decoded: an escape of one (``%2f``, ``%3f``, ``%23``,
    ``%20``, ``%0a``), an escape that is not UTF-8, or a stray ``%`` makes the slug invalid,
    as does a slug without a letter or digit once decoded.
    """
    ok = True

    def decode(m: re.Match[str]) -> str:
        nonlocal ok
        try:
            text = bytes.fromhex(m.group().replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            ok = False
            return m.group()
        for ch in text:
            allowed = ch.lower() in _UNRESERVED if ch.isascii() else _printable_non_space(ch)
            ok = ok and allowed
        return text

    out = _PCT_RUN.sub(decode, slug).lower()
    if not ok or "%" in out or not any(ch.isalnum() for ch in out):
        return None
    return out


def _printable_non_space(ch: str) -> bool:
    """A non-ASCII character that may stand in a slug: not a control, format or space."""
    return unicodedata.category(ch)[0] not in "CZ"


def _linkedin_urls(values: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`canonical_linkedin_urls`, and per value True where the profile slug is invalid
    (None when no slug is): blank or holding an escaped reserved character."""
    arr = np.asarray(values, dtype=object)
    out = np.empty(len(arr), dtype=object)
    match = _LI_RE.match
    prefix = LINKEDIN_PREFIX
    out[:] = [
        None
        if v is None
        or (m := match(v.strip().lower() if type(v) is str else _to_text(v).lower())) is None
        else prefix + m.group(1)
        for v in arr
    ]
    pct = [i for i, v in enumerate(out) if v is not None and "%" in v]
    bad_slug: np.ndarray | None = None
    for i in pct:
        slug = _canonical_slug(out[i][len(prefix) :])
        if slug is None:
            if bad_slug is None:
                bad_slug = np.zeros(len(arr), dtype=bool)
            bad_slug[i] = True
            out[i] = None
        else:
            out[i] = prefix + slug
    return out, bad_slug


def canonical_linkedin_urls(values: Any) -> np.ndarray:
    """Canonical LinkedIn profile URLs (object array; None = not a ``/in/`` profile URL).

    ``https://www.linkedin.com/in/<slug>``: scheme, country subdomain, trailing slash, query,
    fragment and sub-pages dropped; the slug lower-cased. Percent-escapes of letters, digits
    and ``-._~`` are decoded, also to Unicode (``j%C3%BCrgen`` → ``jürgen``), so each
    profile has one spelling whichever way it was copied; JSON carries the Unicode text as
    is. Reserved characters are never decoded (``a%2Fb`` is not ``a/b``, another profile):
    a slug with an escaped reserved character, space or control (``%2F``, ``%3F``, ``%23``,
    ``%20``, ``%0A``), or without a letter or digit, is not a profile URL (None).

    >>> canonical_linkedin_urls(["linkedin.com/in/John-Doe/?utm=x",
    ...                          "https://www.linkedin.com/company/acme",
    ...                          "linkedin.com/in/a%2Fb", "linkedin.com/in/%20"]).tolist()
    ['https://www.linkedin.com/in/john-doe', None, None, None]
    """
    return _linkedin_urls(values)[0]


def _split_full_names(uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``John van Doe`` → (John, van Doe); ``Doe, John`` → (John, Doe); one word → first."""
    first = np.empty(len(uniques), dtype=object)
    last = np.empty(len(uniques), dtype=object)
    for i, v in enumerate(uniques):
        if v is None:
            first[i] = last[i] = None
            continue
        if "," in v:
            a, _, b = v.partition(",")
            f, la = b.strip(), a.strip()
        else:
            f, _, la = v.partition(" ")
        first[i] = f or None
        last[i] = la or None
    return first, last


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class FieldColumn:
    """One normalized contact field, factorized: ``values[codes]`` are the row values.

    ``codes`` has one entry per row (-1 = missing); ``values`` is an object array of
    normalized strings (or None) — not necessarily distinct. ``bad`` flags values that were
    present in the input but malformed (numeric name, not a domain, not a profile URL).
    """

    codes: np.ndarray
    values: np.ndarray
    bad: np.ndarray

    def rows(self) -> np.ndarray:
        """Per-row object array (None = missing)."""
        return _gather(self.codes, self.values)

    def rows_at(self, positions: np.ndarray) -> np.ndarray:
        """Object array of the values at some row positions (None = missing)."""
        return _gather(self.codes[positions], self.values)

    def row_bad(self) -> np.ndarray:
        """Per-row bool: the input had a value here but it was malformed."""
        ext = np.append(self.bad, False)
        return ext.take(self.codes)

    def row_present(self) -> np.ndarray:
        """Per-row bool: a usable normalized value."""
        ok = ~_missing(self.values)
        return np.append(ok, False).take(self.codes)


@dataclass(frozen=True, eq=False)
class MappedContacts:
    """Normalized contacts of a frame, by row position.

    Attributes:
        contacts: DataFrame with the five contact fields (``CONTACT_FIELDS`` order),
            ``string`` dtype, ``RangeIndex`` 0..n-1; <NA> where missing or malformed.
        valid: bool array, True where the row satisfies the API's rule
            (``linkedin_url``, or ``first_name`` + ``last_name`` + domain or company).
        reason: ``string`` array, <NA> for valid rows, else why the row is skipped.
        mapping: field → source column label, for the fields that were found (also
            ``"email"`` / ``"full_name"`` when used as a source).
    """

    contacts: pd.DataFrame
    valid: np.ndarray
    reason: pd.api.extensions.ExtensionArray
    mapping: dict[str, Hashable]
    fields: dict[str, FieldColumn] = field(repr=False, default_factory=dict)
    #: what :meth:`hint` reads: the frame, the rows' problem bits, the columns in use
    _lookalike: _HintSource | None = field(repr=False, default=None)

    @property
    def n_rows(self) -> int:
        """Number of input rows."""
        return len(self.valid)

    def reason_counts(self, rows: np.ndarray | None = None) -> dict[str, int]:
        """Invalid rows per reason, most frequent first (among ``rows``, a bool per row, if
        given)."""
        reason = self.reason if rows is None else self.reason[np.asarray(rows, dtype=bool)]
        vc = pd.Series(reason).value_counts(dropna=True)
        return {str(k): int(v) for k, v in vc.items()}

    def hint(self, rows: np.ndarray | None = None) -> MappingHint | None:
        """When over a third of the rows (of ``rows``, a bool per row, if given) are skipped
        for a missing field, the columns the mapping does not use that look like it, and
        the ``columns=`` call that maps them; None otherwise (or when no column looks like
        it). See :class:`MappingHint`.

        >>> df = pd.DataFrame({"Vorname": ["Ada", "Bob"], "Nachname": ["L", "M"],
        ...                    "Firma (Account)": ["Acme", "Beta"]})
        >>> print(map_contacts(df).hint().message)  # doctest: +NORMALIZE_WHITESPACE
        2 of 2 rows are skipped for a missing company_domain or company_name. Unused columns
        that look like it: 'Firma (Account)' (company_name). Map them with:
        columns={'company_name': 'Firma (Account)'}
        """
        if self._lookalike is None:
            return None
        return _lookalike_hint(self, self._lookalike, rows)

    def describe(self, *, hint: bool = True) -> str:
        """The mapping for humans, one line per field; then, with ``hint``, the
        :meth:`hint` (unused columns that look like a field most rows miss) if there is one.

        >>> import pandas as pd
        >>> print(map_contacts(pd.DataFrame({"LinkedIn": ["linkedin.com/in/x"]})).describe())
        linkedin_url   ← 'LinkedIn'
        first_name     ← (not found)
        last_name      ← (not found)
        company_domain ← (not found)
        company_name   ← (not found)
        1 of 1 rows valid
        """
        lines = []
        for f in CONTACT_FIELDS:
            src = self.mapping.get(f)
            text = "(not found)" if src is None else repr(src)
            if f in ("first_name", "last_name") and src is None and "full_name" in self.mapping:
                text = f"split from {self.mapping['full_name']!r}"
            if f == "company_domain" and "email" in self.mapping:
                via = f"domain of {self.mapping['email']!r} (free-mail skipped)"
                text = via if src is None else f"{text}, else {via}"
            lines.append(f"{f:<14} ← {text}")
        lines.append(f"{int(self.valid.sum())} of {self.n_rows} rows valid")
        for r, c in self.reason_counts().items():
            lines.append(f"  skipped {c}: {r}")
        found = self.hint() if hint else None
        if found is not None:
            lines.append(f"hint: {found.message}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"MappedContacts(rows={self.n_rows}, valid={int(self.valid.sum())}, "
            f"mapping={self.mapping!r})"
        )


# --------------------------------------------------------------------------- look-alikes
#: A hint is given when more than this share of the rows is skipped for a missing field.
HINT_SHARE = 1 / 3
#: At most this many of the skipped rows are read to judge a column by its values.
HINT_SAMPLE = 200
#: At most this many columns are named per field.
_HINT_COLUMNS = 3

#: Parts of a header key that make a column the mapping does not use look like a field
#: (``Company (Account)``, ``Firma Website 2``, ``Linkedin Profil URL``): the stems of the
#: aliases, in every language of :data:`LANGUAGE_HEADERS`.
_LOOKALIKE_STEMS: dict[str, tuple[str, ...]] = {
    "first_name": (
        "firstname", "givenname", "forename", "vorname", "rufname", "prenom", "nombre",
        "nome", "voornaam", "roepnaam",
    ),
    "last_name": (
        "lastname", "surname", "familyname", "nachname", "familienname", "zuname",
        "nomdefamille", "apellido", "sobrenome", "apelido", "ultimonome", "achternaam",
        "familienaam",
    ),
    "full_name": (
        "fullname", "contactname", "vollstandigername", "ansprechpartner", "nomcomplet",
        "nombrecompleto", "nomecompleto", "volledigenaam", "contactpersoon",
    ),
    "company_name": (
        "company", "companies", "organization", "organisation", "organisatie", "organizacion",
        "organizacao", "employer", "arbeitgeber", "werkgever", "employeur", "empleador",
        "empregador", "firma", "firmen", "unternehmen", "entreprise", "societe", "empresa",
        "compania", "companhia", "bedrijf", "onderneming", "accountname", "accountnaam",
        "nomducompte", "nombredelacuenta", "nomedaconta", "raisonsociale", "razonsocial",
        "razaosocial",
    ),
    "company_domain": (
        "website", "webseite", "webpage", "webpagina", "homepage", "domain", "domaine",
        "dominio", "domein", "siteweb", "siteinternet", "sitioweb", "paginaweb", "webadres",
        "internetseite", "internetadres", "url", "site", "web",
    ),
    "linkedin_url": ("linkedin",),
    "email": ("email", "mail", "correo", "courriel", "correio", "messagerie"),
}
#: A column whose header holds one of these is about something else (an address, a phone,
#: a size, an owner, a link…) and is never offered for a name or a company name.
_OTHER_STEMS: tuple[str, ...] = (
    *_LOOKALIKE_STEMS["company_domain"], "linkedin", "mail", "correo", "courriel", "correio",
    "adress", "address", "adres", "direcc", "endereco", "street", "strasse", "city", "stadt",
    "ville", "ciudad", "cidade", "country", "pays", "pais", "zip", "postal", "postleit", "plz",
    "industr", "branche", "secteur", "sector", "setor", "size", "grosse", "taille", "tamano",
    "tamanho", "grootte", "employees", "mitarbeiter", "revenue", "umsatz", "phone", "telef",
    "mobil", "movil", "celular", "handy", "portable", "fax", "typ", "tipo", "status", "owner",
    "besitzer", "inhaber", "eigenaar", "proprietaire", "propietario", "proprietario", "logo",
    "description", "beschreibung", "twitter", "facebook", "xing", "instagram",
)
_OTHER_SUFFIXES: tuple[str, ...] = ("id", "nr", "nummer", "number", "numero", "code", "land")
#: Fields judged by their values; the others (names, company name) by their header.
_LINKEDIN, _EMAIL, _DOMAIN, _NO_LETTER, _TEXT = range(5)
_KIND_FIELD = {_LINKEDIN: "linkedin_url", _EMAIL: "email", _DOMAIN: "company_domain"}
_TEXT_FIELDS = ("first_name", "last_name", "full_name", "company_name")
#: Hosts of profile links, never a company's website.
_SOCIAL_DOMAINS = frozenset(
    {"linkedin.com", "twitter.com", "x.com", "facebook.com", "instagram.com", "youtube.com",
     "xing.com", "github.com", "tiktok.com", "pinterest.com"}
)
_EMAIL_RE = re.compile(r"(?:mailto:)?[^@\s]+@[^@\s]+\.[^@\s.]+\Z")
#: The skip groups: problem bit, how the reason names it, and the fields that would fix it.
_HINT_GROUPS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (_FIRST_MISSING, "first_name", ("first_name", "full_name", "linkedin_url")),
    (_LAST_MISSING, "last_name", ("last_name", "full_name", "linkedin_url")),
    (
        _COMPANY_MISSING,
        "company_domain or company_name",
        ("company_name", "company_domain", "email", "linkedin_url"),
    ),
)


@dataclass(frozen=True, eq=False)
class _HintSource:
    """What :meth:`MappedContacts.hint` reads (kept by reference: nothing is copied)."""

    frame: pd.DataFrame
    #: per row, the problem bits of its reason (0 for a valid row)
    problems: np.ndarray
    #: positions of the columns the mapping reads
    used: frozenset[int]
    #: position of a full-name column that was found but not used (first or last name is)
    spare_full_name: int | None
    #: the ``columns=`` the caller gave, in order
    explicit: tuple[tuple[str, Hashable | None], ...]


@dataclass(frozen=True)
class MappingHint:
    """Over a third of the rows are skipped for a missing field, and columns the mapping
    does not use look like it: by their header (a spelling of the field inside it, in any of
    the recognised languages: ``Firma (Account)``, ``Company 2``, ``Linkedin Profil URL``)
    or by their values (LinkedIn profile URLs, e-mail addresses, websites, read from at most
    :data:`HINT_SAMPLE` skipped rows). Only a column with a value in some skipped row is named.

    Attributes:
        rows: the rows looked at.
        skipped: (what is missing, rows skipped for it) per group over the share.
        candidates: field → column labels that look like it, best first.
        explicit: the ``columns=`` the caller gave (kept in :attr:`call`).

    ``message`` says it in Python's words (``columns={...}``), ``cli_message`` in the command
    line's (``-c FIELD=COLUMN``); ``summary`` is the part they share.

    >>> h = MappingHint(48, (("company_domain or company_name", 43),),
    ...                 {"company_name": ("Firma (Account)",)})
    >>> h.call, h.cli_call
    ("columns={'company_name': 'Firma (Account)'}", "-c 'company_name=Firma (Account)'")
    """

    rows: int
    skipped: tuple[tuple[str, int], ...]
    candidates: Mapping[str, tuple[Hashable, ...]]
    explicit: tuple[tuple[str, Hashable | None], ...] = ()

    @property
    def fix(self) -> dict[str, Hashable]:
        """field → the best-looking column, for every field with a candidate."""
        return {f: cols[0] for f, cols in self.candidates.items()}

    @property
    def call(self) -> str:
        """The ``columns=`` argument that maps them (the caller's own entries kept)."""
        return _py_columns([*self.explicit, *self.fix.items()])

    @property
    def cli_call(self) -> str:
        """The ``-c FIELD=COLUMN`` options to add to the command."""
        return _cli_columns(list(self.fix.items()))

    @property
    def summary(self) -> str:
        """How many rows are skipped for what, and the columns that look like it."""
        parts = [f"{n:,} for a missing {what}" for what, n in self.skipped]
        parts[0] = parts[0].replace(" for", f" of {self.rows:,} rows are skipped for", 1)
        looks = ", ".join(
            f"{' or '.join(map(repr, cols))} ({f})" for f, cols in self.candidates.items()
        )
        pronoun = "them" if len(self.skipped) > 1 else "it"
        return f"{' and '.join(parts)}. Unused columns that look like {pronoun}: {looks}."

    @property
    def message(self) -> str:
        """The hint with the ``columns=`` call that maps the columns."""
        return f"{self.summary} Map them with: {self.call}"

    @property
    def cli_message(self) -> str:
        """The hint with the ``-c`` options that map the columns (on a line of their own:
        the command line wraps its messages, and a wrapped option cannot be copied)."""
        return f"{self.summary} Add to the command:\n  {self.cli_call}"


def _sample_texts(col: pd.Series) -> list[str]:
    """The non-blank values of a (small) column as cleaned text; cells that are missing or
    not text or a number are left out."""
    out = []
    for v in col.tolist():
        if isinstance(v, str):
            t = v
        elif isinstance(v, int | float) and not isinstance(v, bool) and v == v:
            t = _to_text(v)
        else:
            continue
        t = " ".join(t.split())
        if t and t.casefold() not in _BLANK_WORDS:
            out.append(t)
    return out


def _value_kind(texts: list[str]) -> tuple[int | None, bool]:
    """The kind most (over half) of ``texts`` are, or None; and whether one of them is an
    e-mail address at a domain that is not free-mail (one that can give a company domain)."""
    lower = [t.lower() for t in texts]
    domains = _domains(lower)[0].tolist()
    kinds = []
    for t, d in zip(lower, domains, strict=True):
        if _LI_RE.match(t):
            kinds.append(_LINKEDIN)
        elif "@" in t:
            kinds.append(_EMAIL if _EMAIL_RE.match(t) else _TEXT)
        elif d is not None and " " not in t and d not in _SOCIAL_DOMAINS:
            kinds.append(_DOMAIN)
        elif not any(ch.isalpha() for ch in t):
            kinds.append(_NO_LETTER)
        else:
            kinds.append(_TEXT)
    counts = np.bincount(np.asarray(kinds, dtype=np.int64), minlength=_TEXT + 1)
    best = int(counts.argmax())
    kind = best if 2 * int(counts[best]) > len(kinds) else None
    work_mail = kind == _EMAIL and any(
        d is not None for d in _domains([t for t in lower if "@" in t], skip_free_mail=True)[0]
    )
    return kind, work_mail


def _text_field(key: str) -> str | None:
    """The name or company field whose stem the header key holds (the longest stem wins:
    ``nomedaempresa`` is a company, not a ``nome``), None when it holds none or also a
    stem of something else (an address, a website, a phone…)."""
    if any(stem in key for stem in _OTHER_STEMS) or key.endswith(_OTHER_SUFFIXES):
        return None
    best: tuple[int, str] | None = None
    for f in _TEXT_FIELDS:
        for stem in _LOOKALIKE_STEMS[f]:
            if stem in key and (best is None or len(stem) > best[0]):
                best = (len(stem), f)
    return None if best is None else best[1]


def _wanted_fields(m: MappedContacts, src: _HintSource, groups: Sequence[str]) -> set[str]:
    """The fields of the triggered groups a ``columns=`` entry could still add."""
    mapping = m.mapping
    given = {f for f, _ in src.explicit}
    names_split = "full_name" in mapping
    wanted = set()
    for _bit, what, fields in _HINT_GROUPS:
        if what not in groups:
            continue
        for f in fields:
            if f in mapping or f in given:
                continue
            if f in ("first_name", "last_name") and names_split:
                continue
            if f == "full_name" and ("first_name" in mapping or "last_name" in mapping):
                continue
            wanted.add(f)
    return wanted


def _lookalike_hint(
    m: MappedContacts, src: _HintSource, rows: np.ndarray | None
) -> MappingHint | None:
    """:meth:`MappedContacts.hint`: count the skipped rows per group (vectorized); only
    when a group is over the share, read the headers and a sample of the skipped rows."""
    problems = src.problems if rows is None else src.problems[np.asarray(rows, dtype=bool)]
    n = len(problems)
    positions = np.arange(len(src.problems)) if rows is None else np.flatnonzero(rows)
    skipped: list[tuple[str, int]] = []
    hit = np.zeros(n, dtype=bool)
    for bit, what, _fields in _HINT_GROUPS:
        mask = (problems & bit) != 0
        k = int(mask.sum())
        if k and k > n * HINT_SHARE:
            skipped.append((what, k))
            hit |= mask
    if not skipped:
        return None
    wanted = _wanted_fields(m, src, [what for what, _ in skipped])
    if not wanted:
        return None
    sample = positions[hit]
    if len(sample) > HINT_SAMPLE:
        sample = sample[np.linspace(0, len(sample) - 1, HINT_SAMPLE).round().astype(np.int64)]
    frame = src.frame
    dtypes = frame.dtypes.tolist()
    by_values = bool(wanted & set(_KIND_FIELD.values()))
    scored: dict[str, list[tuple[int, int]]] = {}
    for j, label in enumerate(frame.columns):
        if j in src.used:
            continue
        key = _header_key(label)
        spare = src.spare_full_name == j
        named = _text_field(key)
        text_field = spare or named in wanted
        if not (text_field or by_values):
            continue
        dtype = dtypes[j]
        if not (
            pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
        ):
            continue  # numbers, dates, booleans: neither a name nor a link
        texts = _sample_texts(frame.iloc[sample, j])
        if not texts:
            continue  # no value in the skipped rows: mapping it would not help
        kind, work_mail = _value_kind(texts)
        if kind in _KIND_FIELD:
            f = _KIND_FIELD[kind]
            if f not in wanted or (f == "email" and not work_mail):
                continue
            header = any(stem in key for stem in _LOOKALIKE_STEMS[f])
            scored.setdefault(f, []).append((0 if header else 1, j))
        elif kind == _TEXT and spare:
            for f in ("first_name", "last_name"):
                if f in wanted:
                    scored.setdefault(f, []).append((1, j))
        elif kind == _TEXT and named is not None and named in wanted:
            scored.setdefault(named, []).append((0, j))
    if not scored:
        return None
    order = (*_TEXT_FIELDS, "company_domain", "email", "linkedin_url")
    candidates = {
        f: tuple(frame.columns[j] for _, j in sorted(scored[f])[:_HINT_COLUMNS])
        for f in order
        if f in scored
    }
    return MappingHint(n, tuple(skipped), candidates, src.explicit)


# --------------------------------------------------------------------------- detection
def _positions(df: pd.DataFrame, label: Hashable) -> list[int]:
    return [i for i, c in enumerate(df.columns) if c is label or c == label]


def _fix_pair(
    key: Hashable, value: Hashable | None, known: Sequence[str]
) -> tuple[str, Hashable | None] | None:
    """What an unknown ``columns=`` entry most likely meant, or None: a reversed pair
    ``{column: field}``, or a field spelled like a header (``{"First Name": ...}``).

    >>> _fix_pair("Vorname", "first_name", ("first_name",))
    ('first_name', 'Vorname')
    >>> _fix_pair("First Name", "Vorname", ("first_name",)), _fix_pair("x", "y", ("first_name",))
    (('first_name', 'Vorname'), None)
    """
    if isinstance(value, str) and value in known:
        return value, key
    hk = _header_key(key)
    for f in known:
        if hk == _header_key(f) or hk in HEADER_ALIASES.get(f, ()):
            return f, value
    return None


def _resolve_columns(
    df: pd.DataFrame, columns: Mapping[str, Hashable | None] | None
) -> dict[str, int]:
    """field → column position. Raises MappingError on unknown keys, missing, ambiguous."""
    known = (*CONTACT_FIELDS, *EXTRA_SOURCES)
    explicit = dict(columns or {})
    unknown = [k for k in explicit if k not in known]
    if unknown:
        given = list(explicit.items())
        what = (
            f"{unknown[0]!r} is not a field" if len(unknown) == 1 else f"{unknown!r} are not fields"
        )
        # columns= is {field: column}, the reverse of DataFrame.rename(columns={old: new}):
        # a user who wrote {"Vorname": "first_name"} (or {"First Name": "Vorname"}) gets the
        # mapping they meant.
        fixed = [_fix_pair(k, v, known) if k in unknown else (k, v) for k, v in given]
        if all(f is not None for f in fixed):
            sure = [f for f in fixed if f is not None]
            swapped = any(k in unknown and v in known for k, v in given)
            why = (
                "columns= maps {field: column}, the reverse of DataFrame.rename(columns="
                "{old: new})" if swapped else "columns= maps {field: column}"
            )
            raise MappingError(
                f"{_py_columns(given)}: {what}. {why}: did you mean {_py_columns(sure)}?",
                cli_message=f"{_cli_columns(given)}: {what}. -c takes FIELD=COLUMN: did you "
                f"mean {_cli_columns(sure)}?",
            )
        fields = ", ".join(known)
        raise MappingError(
            f"{_py_columns(given)}: {what}. columns= maps {{field: column}}; fields are "
            f"{fields} (values are column labels of the frame, or None to ignore a field)",
            cli_message=f"{_cli_columns(given)}: {what}. -c takes FIELD=COLUMN; fields are "
            f"{fields} (FIELD= with no column ignores a field)",
        )
    chosen: dict[str, int] = {}
    for f, label in explicit.items():
        if label is not None:
            chosen[f] = _explicit_position(df, f, label)

    keys = [_header_key(c) for c in df.columns]
    for f in known:
        if f in explicit:
            continue
        found = _detected_position(df, f, keys)
        if found is not None:
            chosen[f] = found
    return chosen


def _explicit_position(
    df: pd.DataFrame, f: str, label: Hashable, option: str = "columns", flag: str = "-c"
) -> int:
    """The position of column ``label`` named for field ``f`` by ``option`` (CLI: ``flag``);
    MappingError when the frame has no such column or has it twice."""
    pos = _positions(df, label)
    if not pos:
        existing = list(df.columns)
        raise MappingError(
            f"{_py_columns([(f, label)], option)}: no column {label!r} in the frame; "
            f"columns are {existing!r}",
            cli_message=f"{_cli_columns([(f, label)], flag)}: no column {label!r} in the "
            f"file; columns are {existing!r}",
        )
    if len(pos) > 1:
        raise MappingError(
            f"column label {label!r} (for {f}) appears {len(pos)} times in the frame; "
            f"rename the duplicates first, e.g. df.columns = [...]",
            cli_message=f"column {label!r} (for {f}) appears {len(pos)} times in the "
            "file's header; rename the duplicates first",
        )
    return pos[0]


def _detected_position(
    df: pd.DataFrame,
    f: str,
    keys: Sequence[str] | None = None,
    option: str = "columns",
    flag: str = "-c",
) -> int | None:
    """The position of the one column whose header spells field ``f`` (``HEADER_ALIASES``),
    None when there is none; MappingError naming ``option`` when several match."""
    keys = [_header_key(c) for c in df.columns] if keys is None else keys
    aliases = HEADER_ALIASES[f]
    cands = [i for i, k in enumerate(keys) if k in aliases]
    if not cands:
        return None
    if len(cands) > 1:
        labels = [df.columns[i] for i in cands]
        if len({_header_key(x) for x in labels}) == 1 and len(set(map(str, labels))) == 1:
            raise MappingError(
                f"column label {labels[0]!r} (for {f}) appears {len(cands)} times in the "
                f"frame; rename the duplicates first",
                cli_message=f"column {labels[0]!r} (for {f}) appears {len(cands)} times "
                "in the file's header; rename the duplicates first",
            )
        pick, none = [(f, labels[0])], [(f, None)]
        py_none = f" (or {_py_columns(none)} to use none)" if option == "columns" else ""
        cli_none = f" (or {_cli_columns(none)} to use none)" if option == "columns" else ""
        raise MappingError(
            f"ambiguous column for {f}: {labels!r} all match. Pick one with "
            f"{_py_columns(pick, option)}{py_none}",
            cli_message=f"ambiguous column for {f}: {labels!r} all match. Pick one with "
            f"{_cli_columns(pick, flag)}{cli_none}",
        )
    return cands[0]


def value_column(
    df: pd.DataFrame,
    field: str,
    label: Hashable | None = None,
    *,
    option: str = "only_missing",
    flag: str = "--only-missing",
) -> int:
    """The position of the column of ``df`` that holds ``field``'s values (``email`` or
    ``phone``, :data:`VALUE_FIELDS`): column ``label`` when given, else the one whose header
    spells the field (``Email``, ``E-mail``, ``Work Email``; ``Phone``, ``Mobile``,
    ``phone_number``…, as the contact columns are detected). Raises
    :class:`~cleanlist_pandas.errors.MappingError` naming ``option`` (``flag`` on the
    command line) when there is none, or several.

    >>> df = pd.DataFrame({"Name": ["Ada"], "E-mail": ["a@x.io"], "Mobile": [None]})
    >>> value_column(df, "email"), value_column(df, "phone"), value_column(df, "email", "Name")
    (1, 2, 0)
    >>> value_column(df.drop(columns="Mobile"), "phone")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cleanlist_pandas.errors.MappingError: only_missing: no phone column found (looked for ...
    """
    if field not in VALUE_FIELDS:
        raise UserValueError(f"{option}: {field!r} is not one of {list(VALUE_FIELDS)}")
    if label is not None:
        return _explicit_position(df, field, label, option, flag)
    found = _detected_position(df, field, None, option, flag)
    if found is None:
        looked = (
            f"no {field} column found (looked for a header like "
            f"{VALUE_FIELD_EXAMPLES[field]}; case, accents, spaces and punctuation ignored); "
            f"columns are {list(df.columns)!r}. Name it with "
        )
        raise MappingError(
            f"{option}: {looked}{_py_columns([(field, 'COLUMN')], option)}",
            cli_message=f"{flag}: {looked}{flag} {field}=COLUMN",
        )
    return found


# --------------------------------------------------------------------------- main
def _empty_field(n: int) -> FieldColumn:
    return FieldColumn(
        np.full(n, -1, dtype=np.int64), np.empty(0, dtype=object), np.empty(0, dtype=bool)
    )


def _name_field(codes: np.ndarray, vals: np.ndarray) -> FieldColumn:
    bad = np.fromiter(
        (v is not None and _NUMERIC_NAME.match(v) is not None for v in vals), bool, len(vals)
    )
    vals = vals.copy()
    vals[bad] = None
    return FieldColumn(codes, vals, bad)


@gc_paused()
def map_contacts(
    df: pd.DataFrame, columns: Mapping[str, Hashable | None] | None = None
) -> MappedContacts:
    """Find, normalize and validate the contact columns of ``df``.

    Args:
        df: the leads. Not modified. Any index (duplicates, MultiIndex); any column labels.
        columns: optional explicit mapping ``{field: column label}``; keys are the contact
            fields (``first_name``, ``last_name``, ``company_name``, ``company_domain``,
            ``linkedin_url``) or ``email`` / ``full_name``; a value ``None`` means "do not
            use this field". Fields not given are still auto-detected from the headers
            (English, German, French, Spanish, Portuguese and Dutch spellings:
            :data:`HEADER_ALIASES`).

    Returns:
        :class:`MappedContacts`, by row position.

    Raises:
        MappingError: unknown key, missing or duplicated column, ambiguous detection.

    Notes:
        - ``company_domain`` comes from the domain/website column; where that is blank and
          an e-mail column exists, from the e-mail's domain unless it is free-mail.
        - ``first_name``/``last_name`` are split from a full-name column only when the
          frame has neither a first- nor a last-name column.
        - Malformed values (a name with digits and no letters, a host without a registered
          domain, a LinkedIn URL that is not an ``/in/`` profile) become <NA> and are named
          in ``reason`` if the row ends up invalid.

    >>> import pandas as pd
    >>> m = map_contacts(pd.DataFrame({"Vorname": ["Ada"], "Nachname": ["L"], "Firma": ["X"]}),
    ...                  columns={"company_name": "Firma"})
    >>> m.mapping
    {'company_name': 'Firma', 'first_name': 'Vorname', 'last_name': 'Nachname'}
    """
    if not isinstance(df, pd.DataFrame):
        raise UserTypeError(f"map_contacts expects a pandas DataFrame, got {type(df).__name__}")
    pos = _resolve_columns(df, columns)
    n = len(df)
    if not any(f in pos for f in ("linkedin_url", "first_name", "last_name", "full_name")):
        no_columns = (
            "no contact columns found: need a LinkedIn URL column, or first/last name "
            "(or full name) plus company name or domain. Columns are "
            f"{list(df.columns)!r}; map them with "
        )
        raise MappingError(
            no_columns + "columns={'first_name': ..., 'last_name': ..., 'company_domain': ..., "
            "'linkedin_url': ...}",
            cli_message=no_columns + "-c first_name=COLUMN -c last_name=COLUMN "
            "-c company_domain=COLUMN, or -c linkedin_url=COLUMN",
        )
    mapping: dict[str, Hashable] = {f: df.columns[p] for f, p in pos.items()}

    # per-row problem bits of unusable cells (a row with any is skipped), None while none
    unusable: np.ndarray | None = None

    def flag(codes: np.ndarray, kinds: np.ndarray | None, source: str) -> None:
        nonlocal unusable
        bits = _row_kinds(codes, kinds, source)
        if bits is not None:
            unusable = bits if unusable is None else unusable | bits

    def raw(f: str) -> tuple[np.ndarray, np.ndarray]:
        codes, vals, kinds = _factorize(df.iloc[:, pos[f]])
        flag(codes, kinds, f)
        return codes, vals

    def surrogate_kinds(kinds: np.ndarray | None, sur: np.ndarray | None) -> np.ndarray | None:
        if sur is None or not sur.any():
            return kinds
        kinds = np.zeros(len(sur), dtype=np.uint8) if kinds is None else kinds.copy()
        kinds[sur] = _SURROGATE
        return kinds

    fields: dict[str, FieldColumn] = {}
    # names
    for f in ("first_name", "last_name"):
        if f in pos:
            fields[f] = _name_field(*raw(f))
    if "full_name" in pos and "first_name" not in pos and "last_name" not in pos:
        codes, vals = raw("full_name")
        fst, lst = _split_full_names(vals)
        fields["first_name"] = _name_field(codes, fst)
        fields["last_name"] = _name_field(codes, lst)
    else:
        mapping.pop("full_name", None)
    # company name
    if "company_name" in pos:
        codes, vals = raw("company_name")
        fields["company_name"] = FieldColumn(codes, vals, np.zeros(len(vals), bool))
    # domain, with e-mail fallback
    dom: FieldColumn | None = None
    if "company_domain" in pos:
        codes, vals, kinds = _factorize(df.iloc[:, pos["company_domain"]], clean=False)
        d, sur = _domains(vals)
        flag(codes, surrogate_kinds(kinds, sur), "company_domain")
        dom = FieldColumn(codes, d, _bad_mask(vals, d) & ~sur)
    if "email" in pos:
        need = np.ones(n, dtype=bool) if dom is None else ~dom.row_present()
        ecodes = np.full(n, -1, dtype=np.int64)
        evals = np.empty(0, dtype=object)
        ekinds: np.ndarray | None = None
        if need.any():
            idx = np.flatnonzero(need)
            ecol = df.iloc[:, pos["email"]]
            sub = ecol if len(idx) == n else ecol.iloc[idx]
            sub_codes, evals, ekinds = _factorize(sub, clean=False)
            ecodes[idx] = sub_codes
        ed, esur = _domains(evals, skip_free_mail=True)
        flag(ecodes, surrogate_kinds(ekinds, esur), "email")
        efield = FieldColumn(ecodes, ed, np.zeros(len(ed), bool))
        if dom is None:
            dom = efield
        elif need.any():
            off = len(dom.values)
            use_email = efield.row_present()
            codes2 = np.where(use_email, efield.codes + off, dom.codes)
            vals2 = np.concatenate([dom.values, efield.values])
            bad2 = np.concatenate([dom.bad, np.zeros(len(efield.values), bool)])
            dom = FieldColumn(codes2, vals2, bad2)
    else:
        mapping.pop("email", None)
    if dom is not None:
        fields["company_domain"] = dom
    slug_bad_rows: np.ndarray | None = None
    if "linkedin_url" in pos:
        codes, vals, kinds = _factorize(df.iloc[:, pos["linkedin_url"]], clean=False)
        li, slug_bad = _linkedin_urls(vals)
        bad = _bad_mask(vals, li)
        # a surrogate in the slug fails _LI_RE: look for one among the (few) failures only
        li_sur = _surrogates_at(vals, bad)
        flag(codes, surrogate_kinds(kinds, li_sur), "linkedin_url")
        if li_sur is not None:
            bad &= ~li_sur
        if slug_bad is not None:
            slug_bad_rows = np.append(slug_bad, False).take(codes)
        fields["linkedin_url"] = FieldColumn(codes, li, bad)
    for f in CONTACT_FIELDS:
        fields.setdefault(f, _empty_field(n))

    # string arrays of the (few) distinct values, then one take per column: the 1M-row
    # columns are never validated/converted element by element
    contacts = pd.DataFrame(
        {
            f: pd.array(fields[f].values, dtype="string").take(fields[f].codes, allow_fill=True)
            for f in CONTACT_FIELDS
        },
        index=pd.RangeIndex(n),
        copy=False,
    )
    present = {f: fields[f].row_present() for f in CONTACT_FIELDS}
    malformed = {f: fields[f].row_bad() for f in CONTACT_FIELDS}
    company_ok = present["company_domain"] | present["company_name"]
    names_ok = present["first_name"] & present["last_name"] & company_ok
    valid = present["linkedin_url"] | names_ok

    problems = np.zeros(n, dtype=np.uint32)
    li_bit = _LI_BAD if slug_bad_rows is None else np.where(slug_bad_rows, _LI_SLUG, _LI_BAD)
    problems |= np.where(malformed["linkedin_url"], li_bit, 0).astype(np.uint32)
    problems |= np.where(
        ~present["first_name"] & ~malformed["first_name"], _FIRST_MISSING, 0
    ).astype(np.uint32)
    problems |= np.where(malformed["first_name"], _FIRST_BAD, 0).astype(np.uint32)
    problems |= np.where(~present["last_name"] & ~malformed["last_name"], _LAST_MISSING, 0).astype(
        np.uint32
    )
    problems |= np.where(malformed["last_name"], _LAST_BAD, 0).astype(np.uint32)
    problems |= np.where(~company_ok, _COMPANY_MISSING, 0).astype(np.uint32)
    problems |= np.where(malformed["company_domain"] & ~company_ok, _DOMAIN_BAD, 0).astype(
        np.uint32
    )
    anything = np.zeros(n, dtype=bool)
    for f in CONTACT_FIELDS:
        anything |= present[f] | malformed[f]
    problems |= np.where(anything, 0, _EMPTY).astype(np.uint32)
    problems[valid] = 0
    if unusable is not None:
        # an unusable cell skips the row whatever else it has; the reason names only it
        hit = unusable != 0
        valid &= ~hit
        problems[hit] = unusable[hit]
    ucodes, uniq = pd.factorize(problems)
    texts = np.array([_reason_text(int(b), mapping) for b in uniq], dtype=object)
    reason = pd.array(texts, dtype="string").take(np.asarray(ucodes, dtype=np.intp))
    spare = pos.get("full_name") if "full_name" not in mapping else None
    return MappedContacts(
        contacts=contacts,
        valid=np.asarray(valid, dtype=bool),
        reason=reason,
        mapping=mapping,
        fields=fields,
        _lookalike=_HintSource(
            frame=df,
            problems=problems,
            used=frozenset(p for p in pos.values() if p != spare),
            spare_full_name=spare,
            explicit=tuple(dict(columns or {}).items()),
        ),
    )


def _reason_text(bits: int, mapping: Mapping[str, Hashable]) -> str | None:
    if bits == 0:
        return None
    if bits & _UNUSABLE:
        return "; ".join(
            f"unusable {src} in column {mapping.get(src)!r}: {what}"
            for i, src in enumerate(_SOURCES)
            for bit, what in (
                (_NOT_TEXT_BIT, "not text (a list, dict, set, bytearray or similar)"),
                (_SURROGATE_BIT, "invalid Unicode text (a lone surrogate such as \\ud800)"),
            )
            if bits & (bit << i)
        )
    if bits & _EMPTY:
        return (
            "no contact data (need linkedin_url, or first_name + last_name + "
            "company_domain or company_name)"
        )
    parts = []
    if bits & _LI_BAD:
        parts.append(_LINKEDIN_REASON)
    if bits & _LI_SLUG:
        parts.append(_SLUG_REASON)
    missing = [
        name
        for bit, name in ((_FIRST_MISSING, "first_name"), (_LAST_MISSING, "last_name"))
        if bits & bit
    ]
    if missing:
        parts.append("missing " + ", ".join(missing))
    if bits & _FIRST_BAD:
        parts.append("invalid first_name: no letters")
    if bits & _LAST_BAD:
        parts.append("invalid last_name: no letters")
    if bits & _COMPANY_MISSING:
        text = "missing company_domain or company_name"
        if bits & _DOMAIN_BAD:
            text += " (company_domain is not a domain)"
        parts.append(text)
    return "; ".join(parts)
