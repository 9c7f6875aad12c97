"""Property-based tests of mapping, plan and merge on generated messy frames."""

from __future__ import annotations

import copy
import doctest
import importlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleanlist_pandas.frame.mapping import map_contacts
from cleanlist_pandas.frame.merge import ROW_STATUSES, build_output
from cleanlist_pandas.frame.plan import fingerprint, plan

NAMES = st.one_of(
    st.none(),
    st.just(np.nan),
    st.just(pd.NA),
    st.sampled_from(["Ada", " ada ", "ADA", "Bob", "", "  ", "42", "Zoë 😀", "N/A", "O'Neil"]),
    st.integers(-5, 5),
    st.text(max_size=6),
)
DOMAINS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "acme.com",
            "https://www.acme.com/x",
            "jo@acme.com",
            "blog.b.co.uk",
            "nope",
            "",
            "x@gmail.com",
        ]
    ),
    st.text(max_size=8),
)
LINKS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "linkedin.com/in/ada",
            "https://www.linkedin.com/in/Ada/",
            "linkedin.com/company/x",
            "http://uk.linkedin.com/in/bob?x=1",
            "garbage",
        ]
    ),
    st.text(max_size=8),
)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 25))
    cols = {
        "First Name": draw(st.lists(NAMES, min_size=n, max_size=n)),
        "Last Name": draw(st.lists(NAMES, min_size=n, max_size=n)),
        "Company Website": draw(st.lists(DOMAINS, min_size=n, max_size=n)),
        "Company": draw(
            st.lists(
                st.one_of(st.none(), st.sampled_from(["Acme", "acme", " "])), min_size=n, max_size=n
            )
        ),
        "LinkedIn": draw(st.lists(LINKS, min_size=n, max_size=n)),
    }
    kind = draw(st.sampled_from(["range", "dup", "multi"]))
    labels = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    if kind == "range":
        index: pd.Index = pd.RangeIndex(n)
    elif kind == "dup":
        index = pd.Index(labels)
    else:
        index = pd.MultiIndex.from_arrays([labels, [str(x) for x in labels]])
    return pd.DataFrame(cols, index=index, dtype=object)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(frames())
def test_mapping_invariants(df: pd.DataFrame) -> None:
    before = df.copy(deep=True)
    m = map_contacts(df)
    pd.testing.assert_frame_equal(df, before)
    n = len(df)
    assert len(m.contacts) == n and list(m.contacts.index) == list(range(n))
    assert m.valid.shape == (n,) and len(m.reason) == n
    reason_missing = np.asarray(pd.isna(np.asarray(m.reason, dtype=object)), dtype=bool)
    assert (reason_missing == m.valid).all()
    c = m.contacts
    for col in c.columns:
        vals = c[col].dropna()
        assert all(v == " ".join(v.split()) and v for v in vals)
    li = c["linkedin_url"].dropna()
    assert all(v.startswith("https://www.linkedin.com/in/") and v == v.lower() for v in li)
    # validity follows the API rule exactly
    ref = c["linkedin_url"].notna() | (
        c["first_name"].notna()
        & c["last_name"].notna()
        & (c["company_domain"].notna() | c["company_name"].notna())
    )
    assert (ref.to_numpy(dtype=bool) == m.valid).all()


@SETTINGS
@given(
    frames(),
    st.sampled_from(["partial", "full", "phone_only", "prospecting_only", "none"]),
    st.data(),
)
def test_plan_and_merge_invariants(df: pd.DataFrame, etype: str, data: st.DataObject) -> None:
    df.attrs["x"] = [1]
    before = df.copy(deep=True)
    attrs = copy.deepcopy(df.attrs)
    m = map_contacts(df)
    p = plan(m, etype)
    fp = fingerprint(m)
    # duplicates share a unique id exactly when their fingerprints are equal
    for i in range(len(df)):
        for j in range(len(df)):
            if p.row_codes[i] >= 0 and p.row_codes[j] >= 0:
                assert (p.row_codes[i] == p.row_codes[j]) == (fp[i] == fp[j])
    assert p.n_valid + p.n_invalid == len(df) == p.n_rows
    assert sum(p.reason_counts.values()) == p.n_invalid
    assert p.n_chunks == -(-p.n_to_send // 250) and len(p.contact_dicts(p.send_ids)) == p.n_to_send
    results = [
        data.draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "status": st.sampled_from(["completed", "failed", "pending"]),
                        "task_id": st.just(f"t{u}"),
                        "primary_email": st.one_of(st.none(), st.just(f"e{u}@x.io")),
                        "personal_phone_numbers": st.lists(st.just("+1555"), max_size=2),
                        "mystery": st.one_of(st.none(), st.integers(0, 3)),
                    }
                ),
            )
        )
        for u in range(p.n_unique)
    ]
    out = build_output(df, p, results)
    pd.testing.assert_frame_equal(df, before)
    assert df.attrs == attrs and out.attrs == attrs
    assert out.index.equals(df.index) and len(out) == len(df)
    pd.testing.assert_frame_equal(out[list(df.columns)], df)
    status = out["cl_status"].to_numpy(dtype=object)
    assert all(s in ROW_STATUSES for s in status)  # exactly one status per row
    assert ((status == "skipped") == ~m.valid).all()
    # duplicate rows get identical results
    cl = out.iloc[:, len(df.columns) :].reset_index(drop=True)
    for u in range(p.n_unique):
        rows = np.flatnonzero(p.row_codes == u)
        block = cl.iloc[rows]
        assert (block.astype(str).nunique(dropna=False) <= 1).all()
    if any(r is not None and r.get("mystery") is not None for r in results):
        assert "cl_mystery" in out.columns


@pytest.mark.parametrize(
    "module",
    [
        "cleanlist_pandas.frame.mapping",
        "cleanlist_pandas.frame.plan",
        "cleanlist_pandas.frame.merge",
        "cleanlist_pandas.store.cache",
    ],
)
def test_doctests(module: str) -> None:
    res = doctest.testmod(importlib.import_module(module))
    assert res.failed == 0 and res.attempted > 0


# ------------------------------------------------------- incremental flattening
_ANY_VALUE = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(max_size=3),
    st.lists(st.text(max_size=2), max_size=2),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 2), max_size=2),
)
_RESULT = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"status": st.sampled_from(["completed", "failed", "pending"])},
        optional={
            "task_id": st.text(max_size=3),
            "primary_email": st.one_of(st.none(), st.just("e@x.io")),
            "personal_phone_numbers": st.lists(st.just("+1"), max_size=2),
            "credits_charged": st.one_of(st.none(), st.integers(0, 11), st.just(0.5)),
            "workflow_id": st.one_of(st.none(), st.just("wf-own")),
            "discovered_contacts": st.lists(st.just({"first_name": "A"}), max_size=2),
            "prospect": st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {}, optional={"seniority": _ANY_VALUE, "headline": _ANY_VALUE}
                ),
            ),
            "custom": _ANY_VALUE,
            "deep": st.dictionaries(st.sampled_from(["a", "b"]), _ANY_VALUE, max_size=2),
        },
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_RESULT, max_size=12),
    st.sampled_from([None, "partial", "full", "phone_only", "prospecting_only", "none"]),
    st.data(),
)
def test_flattened_results_equal_flatten_results(
    results: list[dict[str, object] | None], etype: str | None, data: st.DataObject
) -> None:
    """Adding results in batches (any order, any batch size) gives flatten_results' frame."""
    from cleanlist_pandas.frame.merge import FlattenedResults, flatten_results

    n = len(results)
    order = data.draw(st.permutations(range(n)))
    added = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    batch = data.draw(st.integers(1, 5))
    wf = data.draw(
        st.one_of(st.none(), st.lists(st.sampled_from([None, "wf-1"]), min_size=n, max_size=n))
    )
    statuses = data.draw(
        st.one_of(
            st.none(),
            st.lists(st.sampled_from([None, "unknown", "pending"]), min_size=n, max_size=n),
        )
    )
    errors = None if statuses is None else [f"e{i}" for i in range(n)]
    fr = FlattenedResults(n, enrichment_type=etype, batch=batch)
    step = data.draw(st.integers(1, 4))
    ids = [u for u in order if added[u]]
    for i in range(0, len(ids), step):
        part = ids[i : i + step]
        fr.add(part, [results[u] for u in part])
    kw = {"workflow_ids": wf, "statuses": statuses, "errors": errors}
    want = flatten_results(results, enrichment_type=etype, **kw)
    got = fr.frame(results, **kw)
    pd.testing.assert_frame_equal(got, want)
