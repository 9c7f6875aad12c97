"""map_contacts: detection, normalization, validation — by row position."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest

from cleanlist_pandas._constants import CONTACT_FIELDS
from cleanlist_pandas.errors import CleanlistError, MappingError
from cleanlist_pandas.frame import mapping as mp
from cleanlist_pandas.frame.mapping import canonical_linkedin_urls, map_contacts, normalize_domains
from cleanlist_pandas.frame.plan import plan


def _base(**cols: list[object]) -> pd.DataFrame:
    return pd.DataFrame(cols)


# ----------------------------------------------------------------- header detection
SPELLINGS = {
    "first_name": [
        "First Name",
        "first_name",
        "fname",
        "Given Name",
        "FirstName",
        "first",
        "FIRST-NAME",
        " first  name ",
    ],
    "last_name": ["Last Name", "Surname", "lname", "Family Name", "last_name", "LastName"],
    "company_name": [
        "Company",
        "Company Name",
        "Organization",
        "Account Name",
        "company_name",
        "Organisation",
    ],
    "company_domain": [
        "Website",
        "Company Website",
        "Domain",
        "Company Domain",
        "URL",
        "company-domain",
    ],
    "linkedin_url": [
        "LinkedIn",
        "LinkedIn URL",
        "linkedin_profile",
        "Person Linkedin Url",
        "linkedin_url",
    ],
}


@pytest.mark.parametrize(("field", "header"), [(f, h) for f, hs in SPELLINGS.items() for h in hs])
def test_header_spellings(field: str, header: str) -> None:
    df = pd.DataFrame({header: ["x"], 7: ["unrelated"]})
    m = map_contacts(df) if field in ("first_name", "last_name", "linkedin_url") else None
    if m is None:  # a company column alone is not enough to map; add a name column
        df["Given Name"] = ["Ada"]
        m = map_contacts(df)
    assert m.mapping[field] == header


def test_email_and_full_name_spellings() -> None:
    for h in ["Email", "Work Email", "e-mail", "Email Address"]:
        m = map_contacts(pd.DataFrame({"Name": ["Ada Lovelace"], h: ["ada@acme.com"]}))
        assert m.mapping["email"] == h
        assert m.contacts.loc[0, "company_domain"] == "acme.com"
    for h in ["Full Name", "full_name", "Name"]:
        m = map_contacts(pd.DataFrame({h: ["Ada Lovelace"], "Company": ["Acme"]}))
        assert m.mapping["full_name"] == h


def test_ambiguous_detection_is_an_error_listing_candidates() -> None:
    df = pd.DataFrame({"First Name": ["a"], "Website": ["a.com"], "Domain": ["b.com"]})
    with pytest.raises(MappingError) as ei:
        map_contacts(df)
    msg = str(ei.value)
    assert "'Website'" in msg and "'Domain'" in msg and "columns=" in msg
    assert isinstance(ei.value, CleanlistError) and isinstance(ei.value, ValueError)
    # resolved by naming one, or by switching the field off
    m = map_contacts(df, columns={"company_domain": "Domain"})
    assert m.mapping["company_domain"] == "Domain"
    m = map_contacts(df, columns={"company_domain": None})
    assert "company_domain" not in m.mapping


def test_explicit_columns_and_errors() -> None:
    df = pd.DataFrame({"Vorname": ["Ada"], "Nachname": ["L"], "Firma": ["X"], 3: ["y"]})
    m = map_contacts(
        df, columns={"first_name": "Vorname", "last_name": "Nachname", "company_name": "Firma"}
    )
    assert m.valid.tolist() == [True]
    with pytest.raises(MappingError, match="'firstname' is not a field") as ei:
        map_contacts(df, columns={"firstname": "Vorname"})
    assert "did you mean columns={'first_name': 'Vorname'}?" in str(ei.value)
    with pytest.raises(MappingError, match=r"'x' is not a field.*fields are linkedin_url"):
        map_contacts(df, columns={"x": "Vorname"})
    with pytest.raises(MappingError, match=r"no column 'Nope'.*Vorname"):
        map_contacts(df, columns={"first_name": "Nope"})
    # non-string labels work as explicit targets
    m = map_contacts(
        df, columns={"first_name": 3, "last_name": "Nachname", "company_name": "Firma"}
    )
    assert m.contacts.loc[0, "first_name"] == "y" and m.mapping["first_name"] == 3


def test_duplicate_column_label_is_an_error() -> None:
    df = pd.DataFrame([["a", "b", "c"]], columns=["First Name", "First Name", "Company"])
    with pytest.raises(MappingError, match="appears 2 times"):
        map_contacts(df)
    df2 = pd.DataFrame([["a", "b", "c"]], columns=["Vorname", "Vorname", "Company"])
    with pytest.raises(MappingError, match="appears 2 times"):
        map_contacts(df2, columns={"first_name": "Vorname"})


def test_no_contact_columns() -> None:
    with pytest.raises(MappingError, match="no contact columns"):
        map_contacts(pd.DataFrame({"a": [1], 2: [3]}))
    with pytest.raises(TypeError):
        map_contacts([1, 2])  # type: ignore[arg-type]


# ----------------------------------------------------------------- normalization
def test_messy_values() -> None:
    df = pd.DataFrame(
        {
            "First Name": [
                "  Ada ",
                None,
                np.nan,
                pd.NA,
                "   ",
                123,
                "Zoë 😀",
                "Jean\t\tPaul",
                "N/A",
            ],
            "Last Name": ["Love   lace", "B", "C", "D", "E", "F", " Ünal ", "Sartre", "x"],
            "Company": ["Acme", "Acme", "Acme", "Acme", "Acme", "Acme", "Acme", None, "Acme"],
        },
        dtype=object,
    )
    m = map_contacts(df)
    c = m.contacts
    assert list(c.columns) == list(CONTACT_FIELDS)
    assert all(str(t) == "string" for t in c.dtypes)
    assert c.loc[0, "first_name"] == "Ada" and c.loc[0, "last_name"] == "Love lace"
    assert c["first_name"].isna().tolist()[1:6] == [True] * 5
    assert c.loc[6, "first_name"] == "Zoë 😀" and c.loc[6, "last_name"] == "Ünal"
    assert c.loc[7, "first_name"] == "Jean Paul"
    assert pd.isna(c.loc[8, "first_name"])  # "N/A" is blank
    assert m.valid.tolist() == [True, False, False, False, False, False, True, False, False]
    r = list(m.reason)
    assert r[0] is pd.NA and r[1] == "missing first_name"
    assert r[5] == "invalid first_name: no letters"
    assert r[7] == "missing company_domain or company_name"
    assert m.reason_counts()["missing first_name"] == 5


def test_numeric_name_column() -> None:
    df = pd.DataFrame({"first": [1, 2], "last": [3.0, 4.5], "company": ["A", "B"]})
    m = map_contacts(df)
    assert not m.valid.any()
    assert m.reason[0] == "invalid first_name: no letters; invalid last_name: no letters"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme.com", "acme.com"),
        ("ACME.COM", "acme.com"),
        ("www.acme.com", "acme.com"),
        ("https://www.acme.com/about?x=1#y", "acme.com"),
        ("http://acme.com:8080/", "acme.com"),
        ("https://blog.acme.co.uk/x", "acme.co.uk"),
        ("shop.example.com.au", "example.com.au"),
        ("john@Sub.Acme.io", "acme.io"),
        ("mailto:jane@acme.de", "acme.de"),
        ("//acme.org/path", "acme.org"),
        ("acme.com.", "acme.com"),
        ("  acme.com  ", "acme.com"),
        ("http://user:pw@acme.com/", "acme.com"),
        ("localhost", None),
        ("192.168.0.1", None),
        ("not a domain", None),
        ("", None),
        ("co.uk", None),
    ],
)
def test_domains(raw: str, expected: str | None) -> None:
    assert normalize_domains([raw]).tolist() == [expected]


def test_domain_free_mail_and_email_fallback() -> None:
    assert normalize_domains(["a@gmail.com", "b@acme.com"], skip_free_mail=True).tolist() == [
        None,
        "acme.com",
    ]
    df = pd.DataFrame(
        {
            "fname": ["A", "B", "C", "D"],
            "lname": ["X", "Y", "Z", "W"],
            "Website": ["acme.com", None, None, "garbage"],
            "Work Email": ["a@other.com", "b@beta.io", "c@gmail.com", None],
        }
    )
    m = map_contacts(df)
    assert m.contacts["company_domain"].tolist() == ["acme.com", "beta.io", pd.NA, pd.NA]
    assert m.valid.tolist() == [True, True, False, False]
    assert m.reason[3] == "missing company_domain or company_name (company_domain is not a domain)"
    assert "free-mail" in m.describe()


def test_domain_only_from_email() -> None:
    m = map_contacts(pd.DataFrame({"Name": ["Ada Lovelace"], "Email": ["ada@ACME.co.uk"]}))
    assert m.contacts.loc[0].tolist()[1:4] == ["Ada", "Lovelace", "acme.co.uk"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("linkedin.com/in/John-Doe/?utm=x", "https://www.linkedin.com/in/john-doe"),
        ("http://uk.linkedin.com/in/johndoe", "https://www.linkedin.com/in/johndoe"),
        ("www.linkedin.com/in/johndoe/", "https://www.linkedin.com/in/johndoe"),
        ("https://www.linkedin.com/in/johndoe", "https://www.linkedin.com/in/johndoe"),
        ("HTTPS://WWW.LINKEDIN.COM/IN/JOHNDOE#x", "https://www.linkedin.com/in/johndoe"),
        ("  https://linkedin.com/in/jd/details/experience/ ", "https://www.linkedin.com/in/jd"),
        (
            "https://www.linkedin.com/in/j%C3%BCrgen-m%c3%bcller",
            "https://www.linkedin.com/in/jürgen-müller",
        ),
        ("https://www.linkedin.com/in/Jürgen", "https://www.linkedin.com/in/jürgen"),
        ("https://www.linkedin.com/company/acme", None),
        ("https://www.linkedin.com/in/", None),
        ("https://evil.com/linkedin.com/in/x", None),
        ("https://notlinkedin.com/in/x", None),
        ("john doe", None),
        ("", None),
    ],
)
def test_linkedin_canonical(raw: str, expected: str | None) -> None:
    assert canonical_linkedin_urls([raw]).tolist() == [expected]


def test_linkedin_invalid_reason_and_fallback_to_names() -> None:
    df = pd.DataFrame(
        {
            "LinkedIn": ["https://www.linkedin.com/company/acme", "linkedin.com/company/x", None],
            "First Name": ["Ada", None, None],
            "Last Name": ["L", None, None],
            "Company": ["Acme", None, None],
        }
    )
    m = map_contacts(df)
    assert m.valid.tolist() == [True, False, False]
    assert pd.isna(m.contacts.loc[0, "linkedin_url"])
    assert m.reason[1].startswith("invalid linkedin_url: not a profile URL (/in/…)")
    assert m.reason[2].startswith("no contact data")


def test_full_name_split() -> None:
    df = pd.DataFrame(
        {
            "Full Name": ["Ada Lovelace", "John van der Berg", "Doe, Jane", "Madonna", None],
            "Company": ["A"] * 5,
        }
    )
    m = map_contacts(df)
    assert m.contacts["first_name"].tolist() == ["Ada", "John", "Jane", "Madonna", pd.NA]
    assert m.contacts["last_name"].tolist() == ["Lovelace", "van der Berg", "Doe", pd.NA, pd.NA]
    assert m.valid.tolist() == [True, True, True, False, False]
    assert "split from 'Full Name'" in m.describe()


def test_full_name_ignored_when_first_name_exists() -> None:
    df = pd.DataFrame({"Name": ["X Y"], "First Name": ["Ada"], "Company": ["A"]})
    m = map_contacts(df)
    assert "full_name" not in m.mapping
    assert m.reason[0] == "missing last_name"


# ----------------------------------------------------------------- positions & shapes
def test_positions_with_duplicate_labels_and_multiindex() -> None:
    df = pd.DataFrame(
        {"LinkedIn": ["linkedin.com/in/a", None, "linkedin.com/in/c"]},
        index=pd.MultiIndex.from_tuples([("x", 1), ("x", 1), ("y", 2)]),
    )
    m = map_contacts(df)
    assert isinstance(m.contacts.index, pd.RangeIndex)
    assert m.valid.tolist() == [True, False, True]
    df2 = df.set_axis(["k", "k", "k"])
    assert map_contacts(df2).valid.tolist() == [True, False, True]


def test_empty_and_one_row() -> None:
    m = map_contacts(pd.DataFrame({"LinkedIn": pd.Series([], dtype=object)}))
    assert m.n_rows == 0 and len(m.contacts) == 0 and len(m.reason) == 0
    m1 = map_contacts(pd.DataFrame({"LinkedIn": ["linkedin.com/in/a"]}))
    assert m1.valid.tolist() == [True] and m1.reason_counts() == {}


def test_ten_thousand_rows_and_input_untouched() -> None:
    rng = np.random.default_rng(1)
    n = 10_000
    df = pd.DataFrame(
        {
            "First Name": rng.choice(["Ada", " bob ", None, "", "42"], n),
            "Last Name": rng.choice(["Lovelace", "Smith", None], n),
            "Company Website": rng.choice(["https://acme.com/x", "x@beta.co.uk", None, "?"], n),
            "LinkedIn": rng.choice(["linkedin.com/in/A", "linkedin.com/company/b", None], n),
        },
        index=rng.integers(0, 100, n),
    )
    df.attrs["source"] = "crm"
    before = df.copy(deep=True)
    m = map_contacts(df)
    pd.testing.assert_frame_equal(df, before)
    assert df.attrs == {"source": "crm"}
    assert len(m.contacts) == n and m.valid.dtype == bool
    # row-wise reference for validity
    c = m.contacts
    ref = c["linkedin_url"].notna() | (
        c["first_name"].notna()
        & c["last_name"].notna()
        & (c["company_domain"].notna() | c["company_name"].notna())
    )
    assert (ref.to_numpy() == m.valid).all()
    assert pd.isna(m.reason[m.valid]).all() and not pd.isna(m.reason[~m.valid]).any()


def test_tldextract_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("network attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    mp._extractor.cache_clear()
    try:
        assert normalize_domains(["https://a.b.example.co.uk"]).tolist() == ["example.co.uk"]
        ext = mp._extractor()
        assert ext.suffix_list_urls == () and not ext._cache.enabled
    finally:
        mp._extractor.cache_clear()


def test_fast_suffix_walk_matches_tldextract_on_every_rule() -> None:
    """The direct trie walk for plain hosts gives tldextract's answer, rule by rule."""
    ext = mp._extractor()
    trie = mp._suffix_trie()
    assert trie is not None
    rules = ext._get_tld_extractor().tlds_excl_private
    hosts = {"com", "a.b", "localhost", "1.2.3.4", "10.0.0.1.com", "_dmarc.acme.io"}
    hosts |= {"a-b.co.uk", "x.a-b.co.uk", "github.io", "a.github.io", "x.blogspot.com"}
    for rule in rules:
        base = rule.lstrip("!").replace("*", "wild")
        hosts.update(pre + base for pre in ("", "a.", "b.a.", "w.x.y."))
        if rule.startswith("*."):
            hosts.update(pre + rule[2:] for pre in ("city.", "a.city.", "www.", "a.www."))
    plain = [h for h in hosts if mp._PLAIN_HOST.match(h) and "xn--" not in h]
    assert len(plain) > 20_000
    diff = [
        h
        for h in plain
        if mp._walk_suffix_trie(trie, h.split("."))
        != (ext.extract_str(h).top_domain_under_public_suffix or None)
    ]
    assert diff == []


@pytest.mark.parametrize(
    "host", ["xn--bcher-kva.de", "münchen.de", "a..com", ".acme.com", "acme.com.", "ACME.com"]
)
def test_non_plain_hosts_take_the_tldextract_path(host: str) -> None:
    assert mp._PLAIN_HOST.match(host) is None or "xn--" in host
    mp._registered_domain.cache_clear()
    want = mp._extractor().extract_str(host).top_domain_under_public_suffix or None
    assert mp._registered_domain(host) == want


# ----------------------------------------------------------------- cells that are not text
SURROGATE = json.loads('"Ada\\ud800"')  # a lone surrogate, as JSON-sourced frames carry


def _frame_with(label: str, bad: object) -> pd.DataFrame:
    """Three valid lead rows; row 1 gets ``bad`` in column ``label``."""
    cols: dict[str, list[object]] = {
        "First Name": ["Ann", "Bob", "Cy"],
        "Last Name": ["Lee", "Ray", "Fox"],
        "Company": ["Acme", "Beta", "Corp"],
        "Website": ["acme.com", "beta.io", "corp.de"],
        "Work Email": ["ann@acme.com", "bob@beta.io", "cy@corp.de"],
        "LinkedIn": ["linkedin.com/in/ann", "linkedin.com/in/bob", "linkedin.com/in/cy"],
    }
    if label == "Work Email":  # e-mail is read only where the website gives no domain
        cols["Website"][1] = None
    cols[label][1] = bad
    return pd.DataFrame(cols, dtype=object)


def _encodable(m: mp.MappedContacts) -> bool:
    for f in CONTACT_FIELDS:
        for v in m.contacts[f].dropna():
            v.encode("utf-8")
    return True


#: Text with a lone surrogate in the part of each column that is used.
SURROGATE_IN = {
    "First Name": SURROGATE,
    "Last Name": "Ray\udfff",
    "Company": "Beta\ud800 GmbH",
    "Website": "https://beta\udc80.io/about",
    "Work Email": "bob@beta\udc80.io",
    "LinkedIn": "linkedin.com/in/b\ud83dob",
}
BAD_TEXT = {
    "surrogate": (None, "lone surrogate"),
    "list": (["Ada", "L"], "not text"),
    "dict": ({"name": "Ada"}, "not text"),
    "set": ({"Ada"}, "not text"),
    "bytearray": (bytearray(b"Ada"), "not text"),
}


@pytest.mark.parametrize(
    "label", ["First Name", "Last Name", "Company", "Website", "Work Email", "LinkedIn"]
)
@pytest.mark.parametrize("kind", list(BAD_TEXT))
def test_a_cell_that_is_not_text_skips_its_row_naming_the_column(label: str, kind: str) -> None:
    """Issue 7 items 8 and 9: a lone surrogate or an unhashable cell used to crash
    (UnicodeEncodeError in plan/with pyarrow; TypeError: unhashable type in factorize)."""
    value, what = BAD_TEXT[kind]
    df = _frame_with(label, SURROGATE_IN[label] if value is None else value)
    before = df.copy()
    m = map_contacts(df)
    assert m.valid.tolist() == [True, False, True]
    reason = m.reason[1]
    assert f"column {label!r}" in reason and what in reason, reason
    assert m.reason_counts() == {reason: 1}
    assert _encodable(m)
    p = plan(m, "partial")  # fingerprints every contact as UTF-8
    assert p.n_valid == 2 and p.n_to_send == 2
    assert all(c.get("first_name") != "Bob" for c in p.contact_dicts(p.send_ids))
    pd.testing.assert_frame_equal(df, before)


def test_a_surrogate_in_a_full_name_names_that_column() -> None:
    df = pd.DataFrame(
        {"Name": ["Ann Lee", SURROGATE + " Lee"], "Company": ["A", "B"]}, dtype=object
    )
    m = map_contacts(df)
    assert m.valid.tolist() == [True, False]
    assert m.reason[1].startswith("unusable full_name in column 'Name'")


def test_a_surrogate_outside_the_sent_part_is_ignored_like_the_rest_of_it() -> None:
    """The path of a website, the user of an e-mail, the query of a LinkedIn URL are
    dropped by normalization anyway: a surrogate there does not skip the row."""
    df = pd.DataFrame(
        {
            "First Name": ["Ann", "Bob"],
            "Last Name": ["Lee", "Ray"],
            "Website": ["acme.com/\udc80", None],
            "Email": [None, "b\udc80@beta.io"],
            "LinkedIn": ["linkedin.com/in/ann?x=\udc80", None],
        },
        dtype=object,  # with pyarrow, a "str" column cannot even hold a surrogate
    )
    m = map_contacts(df)
    assert m.valid.tolist() == [True, True]
    assert m.contacts["company_domain"].tolist() == ["acme.com", "beta.io"]
    assert m.contacts.loc[0, "linkedin_url"] == "https://www.linkedin.com/in/ann"


def test_a_surrogate_with_pyarrow_strings() -> None:
    """With pyarrow installed, ``string`` arrays are Arrow (UTF-8): map_contacts raised
    UnicodeEncodeError building them."""
    pytest.importorskip("pyarrow")
    with pd.option_context("mode.string_storage", "pyarrow"):
        m = map_contacts(_frame_with("First Name", SURROGATE))
        assert m.valid.tolist() == [True, False, True]
        assert plan(m, "partial").n_to_send == 2


def test_unhashable_cells_in_a_big_object_column() -> None:
    """The sampled hash-table path (≥ 65,536 rows) finds them too; codes stay exact."""
    n = 70_000
    first = np.array([f"Ann{i % 500}" for i in range(n)], dtype=object)
    first[[3, 40_000, 69_999]] = [["x"], {"a": 1}, {"x"}]
    df = pd.DataFrame({"First Name": first, "Last Name": "Lee", "Company": "Acme"})
    m = map_contacts(df)
    assert np.flatnonzero(~m.valid).tolist() == [3, 40_000, 69_999]
    assert m.contacts.loc[4, "first_name"] == "Ann4"
    assert m.contacts["first_name"].isna().sum() == 3


def test_the_clean_frame_pays_no_check() -> None:
    """No unusable cell: no kinds array, and the row bits stay None (the hot path)."""
    codes, vals, kinds = mp._factorize(pd.Series(["a", "b", "a", None], dtype=object))
    assert vals.tolist() == ["a", "b"]
    assert kinds is None and codes.tolist() == [0, 1, 0, -1]
    assert mp._surrogates(["ascii", "latin-1 ä", "wide ☃"]) is None
    assert mp._surrogates(["ok", SURROGATE]).tolist() == [False, True]


# ----------------------------------------------------------------- LinkedIn percent-escapes
@pytest.mark.parametrize(
    "raw",
    [
        "linkedin.com/in/a%2Fb",  # was /in/a/b: another profile
        "linkedin.com/in/a%2fb/",
        "linkedin.com/in/%20",  # was a blank slug, sent as valid
        "linkedin.com/in/%20%20/",
        "linkedin.com/in/ann%0A",  # was a newline in the slug
        "linkedin.com/in/ann%3Fx=1",  # was ?x=1 in the slug
        "linkedin.com/in/ann%23top",  # was #top in the slug
        "linkedin.com/in/ann%25",  # an escaped %
        "linkedin.com/in/ann%",  # a stray %
        "linkedin.com/in/ann%ff",  # not UTF-8
        "linkedin.com/in/ann%c2%a0lee",  # a no-break space
        "linkedin.com/in/ann%e2%80%8blee",  # a zero-width space
        "linkedin.com/in/%2e%2e",  # ".." has no letter
        "linkedin.com/in/a%00b",
    ],
)
def test_linkedin_escapes_of_reserved_characters_are_not_decoded(raw: str) -> None:
    """Issue 7 item 10: percent-decoding turned these into other profiles or bad slugs."""
    assert canonical_linkedin_urls([raw]).tolist() == [None]
    m = map_contacts(pd.DataFrame({"LinkedIn": [raw, "linkedin.com/in/ok"]}))
    assert m.valid.tolist() == [False, True]
    assert m.reason[0].startswith("invalid linkedin_url: the profile name is blank or holds")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("linkedin.com/in/%41da-lee", "ada-lee"),
        ("linkedin.com/in/ann%2Dlee%5F1%2e2%7e", "ann-lee_1.2~"),
        ("linkedin.com/in/j%C3%9Crgen", "jürgen"),
        ("linkedin.com/in/%E7%8E%8B%E5%B0%8F%E6%98%8E", "王小明"),
        ("linkedin.com/in/100%25done", None),
    ],
)
def test_linkedin_escapes_of_letters_are_decoded(raw: str, expected: str | None) -> None:
    want = None if expected is None else "https://www.linkedin.com/in/" + expected
    assert canonical_linkedin_urls([raw]).tolist() == [want]


def test_linkedin_slug_needs_a_letter_or_digit() -> None:
    assert canonical_linkedin_urls(["linkedin.com/in/--/", "linkedin.com/in/../x"]).tolist() == [
        None,
        None,
    ]
