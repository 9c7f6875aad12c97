"""fingerprint and plan: stable hashes, dedupe fan-out, cache, chunks, counts."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from enrich_helpers import SCOPE

from cleanlist_pandas.frame.mapping import map_contacts
from cleanlist_pandas.frame.plan import fingerprint, plan

FRAME = {
    "First Name": ["Ada", "ada ", "Ada", "Bob", None, "Ada"],
    "Last Name": ["Lovelace", "Lovelace", "Lovelace", "Smith", "X", "Lovelace"],
    "Website": ["acme.com", "https://www.ACME.com/", "acme.com", "b.io", "c.io", "acme.com"],
}


def test_fingerprint_shape_and_content_rules() -> None:
    c = pd.DataFrame(
        {
            "first_name": ["a", "b", "a", "a", None],
            "last_name": ["b", "a", "b", None, None],
            "company_domain": ["x.com", "x.com", "x.com", None, None],
        },
        dtype="string",
    )
    fp = fingerprint(c)
    assert fp.dtype == object and all(isinstance(f, str) and len(f) == 32 for f in fp)
    assert fp[0] == fp[2]  # identical
    assert fp[0] != fp[1]  # fields swapped
    assert fp[3] != fp[4] and len(set(fp)) == 4  # presence matters
    # the same contact in company_name instead of company_domain is a different contact
    d = c.rename(columns={"company_domain": "company_name"})
    assert fingerprint(d)[0] != fp[0]


def test_fingerprint_of_mapped_equals_fingerprint_of_frame() -> None:
    m = map_contacts(pd.DataFrame(FRAME))
    assert fingerprint(m).tolist() == fingerprint(m.contacts).tolist()


def test_fingerprint_is_stable_across_processes() -> None:
    code = (
        "import pandas as pd;from cleanlist_pandas.frame.plan import fingerprint;"
        "print(fingerprint(pd.DataFrame({'first_name':['Ada'],'last_name':['L'],"
        "'company_domain':['acme.com']},dtype='string'))[0])"
    )
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
            ).stdout.strip()
        )
    here = fingerprint(
        pd.DataFrame(
            {"first_name": ["Ada"], "last_name": ["L"], "company_domain": ["acme.com"]},
            dtype="string",
        )
    )[0]
    assert outs == {here}
    # pinned: a change of encoding must be deliberate (bump FINGERPRINT_VERSION)
    assert here == PINNED


#: The fingerprint of Ada L at acme.com under FINGERPRINT_VERSION 1, written out: users'
#: caches and journals are keyed by it.
PINNED = "b1de1d6fc6799666e716daf0115c4dc0"


def test_bumping_the_fingerprint_version_changes_every_fingerprint() -> None:
    # (the package's ``plan`` attribute is the function: fetch the module itself)
    plan_module = importlib.import_module("cleanlist_pandas.frame.plan")

    assert plan_module.FINGERPRINT_VERSION == 1
    assert plan_module._sip_keys(1) == (plan_module._KEY1, plan_module._KEY2)
    n = 2_000
    df = pd.DataFrame(
        {
            "first_name": [f"N{i % 37}" for i in range(n)],
            "last_name": [None if i % 11 == 0 else f"L{i}" for i in range(n)],
            "company_domain": [f"d{i % 5}.com" for i in range(n)],
            "linkedin_url": [None] * n,
        },
        dtype="string",
    )
    v1 = plan_module._to_hex(*plan_module._hash_pair(df))
    assert v1.tolist() == fingerprint(df).tolist()
    for version in (2, 3, 10, 123):
        keys = plan_module._sip_keys(version)
        assert all(len(k.encode()) == 16 for k in keys)  # SipHash needs 16-byte keys
        bumped = plan_module._to_hex(*plan_module._hash_pair(df, keys))
        assert len(set(bumped.tolist())) == len(set(v1.tolist()))  # same dedupe
        assert not (bumped == v1).any(), f"version {version} kept some fingerprints"
    assert len({plan_module._sip_keys(v) for v in range(1, 200)}) == 199


def test_plan_dedupe_and_fan_out() -> None:
    m = map_contacts(pd.DataFrame(FRAME, index=["a", "a", "b", "c", "d", "e"]))
    p = plan(m, "partial")
    assert p.row_codes.tolist() == [0, 0, 0, 1, -1, 0]
    assert p.first_rows.tolist() == [0, 3]
    assert (p.n_rows, p.n_valid, p.n_invalid, p.n_unique, p.n_duplicates) == (6, 5, 1, 2, 3)
    assert p.reason_counts == {"missing first_name": 1}
    assert p.n_to_send == 2 and p.n_chunks == 1 and p.worst_case_credits == 2
    assert p.contact_dicts(p.send_ids) == [
        {"first_name": "Ada", "last_name": "Lovelace", "company_domain": "acme.com"},
        {"first_name": "Bob", "last_name": "Smith", "company_domain": "b.io"},
    ]
    assert p.unique_contacts.loc[1, "first_name"] == "Bob"
    counts = p.counts()
    assert counts["duplicates"] == 3 and counts["invalid_by_reason"] == {"missing first_name": 1}
    assert "to_send=2" in repr(p)


def test_plan_cache_and_chunks() -> None:
    n = 600
    df = pd.DataFrame({"LinkedIn": [f"linkedin.com/in/p{i}" for i in range(n)]})
    m = map_contacts(df)
    fps = fingerprint(m)
    seen: list[list[str]] = []

    def lookup(keys: list[str]) -> dict[str, object]:
        seen.append(keys)
        return {k: {"status": "completed"} for k in keys[:100]}

    p = plan(m, "full", cache_lookup=lookup)
    assert len(seen) == 1 and seen[0] == fps.tolist()
    assert p.n_cached == 100 and p.n_to_send == 500 and p.n_chunks == 2
    assert p.worst_case_credits == 500 * 11
    assert p.send_ids.tolist() == list(range(100, 600))
    contacts = p.contact_dicts(p.send_ids)
    assert contacts[0] == {"linkedin_url": "https://www.linkedin.com/in/p100"}
    assert all(isinstance(v, str) for d in contacts for v in d.values())
    p2 = plan(m, "partial", chunk_size=7)
    assert p2.n_chunks == -(-600 // 7)


def test_plan_errors_and_empty() -> None:
    m = map_contacts(pd.DataFrame({"LinkedIn": pd.Series([], dtype=object)}))
    p = plan(m, "partial", cache_lookup=lambda k: pytest.fail("no lookup for nothing"))
    assert (p.n_rows, p.n_unique, p.n_chunks, p.worst_case_credits) == (0, 0, 0, 0)
    with pytest.raises(ValueError, match="enrichment_type"):
        plan(m, "bogus")
    with pytest.raises(ValueError, match="chunk_size"):
        plan(m, "partial", chunk_size=251)


def test_plan_all_invalid() -> None:
    m = map_contacts(pd.DataFrame({"LinkedIn": ["nope", None]}))
    p = plan(m, "prospecting_only")
    assert p.row_codes.tolist() == [-1, -1] and p.n_to_send == 0 and p.n_chunks == 0


def test_initial_results_from_a_result_cache(tmp_path: Path) -> None:
    from cleanlist_pandas.frame.merge import build_output
    from cleanlist_pandas.store.cache import ResultCache

    df = pd.DataFrame({"LinkedIn": [f"linkedin.com/in/p{i}" for i in range(5)] * 2})
    m = map_contacts(df)
    fps = fingerprint(m)
    with ResultCache(tmp_path, scope=SCOPE) as cache:
        cache.put_many(
            [(fps[1], {"status": "completed", "primary_email": "p1@x.io"}, "wf-old", "t1")],
            "partial",
        )
        p = plan(m, "partial", cache_lookup=lambda k: cache.get_many(k, "partial"))
    assert p.n_cached == 1 and p.n_to_send == 4 and 1 not in p.send_ids
    results, wfs, statuses = p.initial_results()
    assert results[1] == {"status": "completed", "primary_email": "p1@x.io"}
    assert wfs[1] == "wf-old" and results[0] is None and statuses == [None] * 5
    out = build_output(df, p, results, workflow_ids=wfs)
    assert out["cl_email"].tolist() == [pd.NA, "p1@x.io", pd.NA, pd.NA, pd.NA] * 2
    assert out["cl_status"].tolist()[:2] == ["not_submitted", "enriched"]
    # plain dicts from any lookup work too
    p2 = plan(m, "partial", cache_lookup=lambda k: {k[0]: {"status": "completed"}})
    assert p2.initial_results()[0][0] == {"status": "completed"}


@pytest.mark.parametrize("n", [0, 1, 3, 1000])
def test_to_hex_is_big_endian_hex_of_both_halves(n: int) -> None:
    from cleanlist_pandas.frame.plan import _to_hex

    rng = np.random.default_rng(n)
    h1 = rng.integers(0, 2**64, n, dtype=np.uint64)
    h2 = rng.integers(0, 2**64, n, dtype=np.uint64)
    h1[:1] = 0
    out = _to_hex(h1, h2)
    assert out.dtype == object and len(out) == n
    want = [f"{a:016x}{b:016x}" for a, b in zip(h1.tolist(), h2.tolist(), strict=True)]
    assert out.tolist() == want


@pytest.mark.parametrize(
    "values",
    [["Ada", "Zoë", "", "李"], ["Ada", 7, "Zoë"], []],
)
def test_field_hashes_are_siphash_of_the_utf8_text(values: list[object]) -> None:
    """Per-row hashes equal pd.util.hash_array of the values (str or mixed), both keys."""
    from cleanlist_pandas.frame.plan import _KEY1, _KEY2, _MISSING, _field_hashes

    vals = np.array([*values, None], dtype=object)
    codes = np.array([*range(len(vals)), -1], dtype=np.int64)
    h1, h2 = _field_hashes(codes, vals, False)
    for got, key, missing in ((h1, _KEY1, _MISSING[0]), (h2, _KEY2, _MISSING[1])):
        filled = vals.copy()
        filled[-1] = ""
        want = pd.util.hash_array(filled, hash_key=key, categorize=False)
        want[-1] = missing
        np.testing.assert_array_equal(got, np.append(want, missing))
