"""flatten_results / assemble / build_output / discovered_contacts_frame."""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cleanlist_pandas.errors import OutputColumnCollision
from cleanlist_pandas.frame.mapping import map_contacts
from cleanlist_pandas.frame.merge import (
    assemble,
    build_output,
    discovered_contacts_frame,
    flatten_results,
    output_columns,
)
from cleanlist_pandas.frame.plan import plan

SPEC_EXAMPLE = {
    "task_id": "t-1",
    "status": "completed",
    "primary_email": "john.doe@acme.com",
    "primary_email_status": "reliable",
    "other_emails": ["jdoe@acme.com"],
    "personal_phone_numbers": ["+14155550123", "+14155550124"],
    "prospect": {
        "first_name": "John",
        "last_name": "Doe",
        "full_name": "John Doe",
        "headline": "VP Sales",
        "location": "San Francisco, CA",
        "linkedin_url": "https://www.linkedin.com/in/johndoe",
    },
    "company": {
        "name": "Acme Corp",
        "domain": "acme.com",
        "industry": "Software",
        "headcount": 250,
    },
    "credits_charged": 1,
    "error": None,
}


def test_flatten_spec_example() -> None:
    out = flatten_results([SPEC_EXAMPLE], enrichment_type="full", workflow_ids=["wf-1"])
    row = out.iloc[0]
    assert list(out.columns) == output_columns()
    assert row["cl_email"] == "john.doe@acme.com" and row["cl_email_status"] == "reliable"
    assert row["cl_other_emails"] == "jdoe@acme.com"
    assert row["cl_phone"] == "+14155550123"
    assert row["cl_phones"] == "+14155550123; +14155550124"
    assert row["cl_full_name"] == "John Doe" and row["cl_headline"] == "VP Sales"
    assert row["cl_company_name"] == "Acme Corp" and row["cl_company_headcount"] == 250
    assert row["cl_status"] == "enriched" and pd.isna(row["cl_error"])
    assert row["cl_credits"] == 1 and row["cl_workflow_id"] == "wf-1"
    assert row["cl_task_id"] == "t-1"
    assert str(out["cl_company_headcount"].dtype) == "Int64"
    assert str(out["cl_credits"].dtype) == "Int64"
    assert str(out["cl_email"].dtype) == "string"


def test_unknown_fields_become_columns() -> None:
    r = {
        **SPEC_EXAMPLE,
        "new_score": 0.7,
        "flags": ["a", "b"],
        "meta": {"source": "x", "deep": {"n": 3}},
        "prospect": {**SPEC_EXAMPLE["prospect"], "seniority": "VP"},
        "company": {**SPEC_EXAMPLE["company"], "founded": 1999},
    }
    out = flatten_results([r, SPEC_EXAMPLE, None])
    assert out.loc[0, "cl_new_score"] == 0.7 and str(out["cl_new_score"].dtype) == "Float64"
    assert out.loc[0, "cl_flags"] == "a; b"
    assert out.loc[0, "cl_meta_source"] == "x" and out.loc[0, "cl_meta_deep_n"] == 3
    assert out.loc[0, "cl_prospect_seniority"] == "VP"
    assert out.loc[0, "cl_company_founded"] == 1999
    assert str(out["cl_company_founded"].dtype) == "Int64"
    assert out["cl_prospect_seniority"].isna().tolist() == [False, True, True]
    assert list(out.columns)[: len(output_columns())] == output_columns()


@pytest.mark.parametrize(
    ("etype", "result", "status"),
    [
        ("partial", {"status": "completed", "primary_email": "a@b.c"}, "enriched"),
        ("partial", {"status": "completed", "primary_email": None}, "not_found"),
        ("partial", {"status": "completed", "personal_phone_numbers": ["+1"]}, "not_found"),
        ("phone_only", {"status": "completed", "personal_phone_numbers": ["+1"]}, "enriched"),
        ("phone_only", {"status": "completed", "personal_phone_numbers": []}, "not_found"),
        ("full", {"status": "completed", "personal_phone_numbers": ["+1"]}, "enriched"),
        ("prospecting_only", {"status": "completed", "discovered_contacts": [{}]}, "enriched"),
        ("prospecting_only", {"status": "completed", "discovered_contacts": []}, "not_found"),
        ("none", {"status": "completed"}, "enriched"),
        ("full", {"status": "failed", "error": "boom"}, "failed"),
        ("full", {"status": "pending"}, "unknown"),
        (None, {"status": "completed", "primary_email": "a@b.c"}, "enriched"),
        (None, {"status": "weird"}, "unknown"),
    ],
)
def test_status(etype: str | None, result: dict[str, object], status: str) -> None:
    out = flatten_results([result], enrichment_type=etype)
    assert out.loc[0, "cl_status"] == status
    if status == "failed":
        assert out.loc[0, "cl_error"] == "boom"
    if result["status"] == "pending":
        assert "not finished" in out.loc[0, "cl_error"]


def test_missing_results_get_given_status() -> None:
    out = flatten_results(
        [None, None, SPEC_EXAMPLE],
        statuses=["unknown", None, "not_submitted"],
        errors=["ambiguous submission", None, "ignored"],
    )
    assert out["cl_status"].tolist() == ["unknown", "not_submitted", "enriched"]
    assert out["cl_error"].tolist()[:2] == ["ambiguous submission", pd.NA]
    assert pd.isna(out.loc[2, "cl_error"])
    with pytest.raises(ValueError, match="unknown cl_status"):
        flatten_results([None], statuses=["nope"])
    assert flatten_results([None], statuses=["pending"])["cl_status"].tolist() == ["pending"]


def test_empty_results_keep_schema() -> None:
    out = flatten_results([], enrichment_type="prospecting_only")
    assert list(out.columns) == output_columns(enrichment_type="prospecting_only")
    assert len(out) == 0


def test_tolerant_of_odd_shapes() -> None:
    r = {
        "status": "completed",
        "primary_email": "a@b.c",
        "prospect": None,
        "company": "Acme",
        "personal_phone_numbers": "+1",
        "credits_charged": 0.5,
        "company_headcount_hint": None,
    }
    out = flatten_results([r, {"status": "completed", "company": {"headcount": "51-200"}}])
    assert out.loc[0, "cl_phone"] == "+1" and out.loc[0, "cl_phones"] == "+1"
    assert str(out["cl_credits"].dtype) == "Float64" and out.loc[0, "cl_credits"] == 0.5
    assert pd.isna(out.loc[1, "cl_company_headcount"])


def _frame(index: pd.Index) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "First Name": ["Ada", "Ada", None, "Bob"],
            "Last Name": ["L", "L", "X", "S"],
            "Company": ["Acme", "Acme", "Acme", "Beta"],
            7: [1, 2, 3, 4],
        },
        index=index,
    )
    df.attrs["meta"] = {"k": [1]}
    return df


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(4),
        pd.Index(["a", "a", "b", "a"]),
        pd.MultiIndex.from_tuples([("x", 1), ("x", 1), ("y", 2), ("x", 1)], names=["k", "n"]),
        pd.Index([3, 2, 1, 0]),
    ],
)
def test_build_output_alignment_and_no_mutation(index: pd.Index) -> None:
    df = _frame(index)
    before = df.copy(deep=True)
    attrs_before = copy.deepcopy(df.attrs)
    m = map_contacts(df)
    p = plan(m, "partial")
    assert p.n_unique == 2
    results = [
        {"status": "completed", "primary_email": "ada@acme.com", "task_id": "t0"},
        None,
    ]
    out = build_output(df, p, results, statuses=[None, "unknown"], workflow_ids=["w", None])
    pd.testing.assert_frame_equal(df, before)
    assert df.attrs == attrs_before and df.index.equals(before.index)
    assert out is not df and out.index.equals(df.index)
    assert out.attrs == attrs_before
    assert list(out.columns[:4]) == list(df.columns)
    pd.testing.assert_frame_equal(out[df.columns], df)
    assert out["cl_email"].tolist() == ["ada@acme.com", "ada@acme.com", pd.NA, pd.NA]
    assert out["cl_status"].tolist() == ["enriched", "enriched", "skipped", "unknown"]
    assert out["cl_error"].tolist() == [pd.NA, pd.NA, "missing first_name", pd.NA]
    assert out["cl_workflow_id"].tolist() == ["w", "w", pd.NA, pd.NA]
    # the output is independent of the input
    out.iloc[0, 0] = "changed"
    pd.testing.assert_frame_equal(df, before)


def test_collision_error_and_prefix() -> None:
    df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/a"], "cl_email": ["old"]})
    p = plan(map_contacts(df), "partial")
    with pytest.raises(OutputColumnCollision, match="prefix="):
        build_output(df, p, [None])
    out = build_output(df, p, [None], prefix="cl2_")
    assert out["cl2_status"].tolist() == ["not_submitted"] and out["cl_email"].tolist() == ["old"]


def test_assemble_checks() -> None:
    df = pd.DataFrame({"x": [1, 2]})
    u = flatten_results([SPEC_EXAMPLE])
    with pytest.raises(ValueError, match="shape"):
        assemble(df, u, np.array([0]))
    with pytest.raises(ValueError, match="past the end"):
        assemble(df, u, np.array([0, 1]))
    out = assemble(df, u, np.array([-1, 0]))
    assert out["cl_status"].tolist() == ["not_submitted", "enriched"]


def test_assemble_multiindex_columns() -> None:
    df = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]))
    out = assemble(df, flatten_results([SPEC_EXAMPLE]), np.array([0]))
    assert out[("cl_email", "")].tolist() == ["john.doe@acme.com"]
    assert out.columns.nlevels == 2


def test_discovered_contacts_frame() -> None:
    df = pd.DataFrame(
        {"x": [1, 2, 3, 4]},
        index=pd.MultiIndex.from_tuples(
            [("a", 1), ("a", 1), ("b", 2), ("c", 3)], names=["k", None]
        ),
    )
    results = [
        {
            "status": "completed",
            "discovered_contacts": [
                {"first_name": "P", "prospect_score": 1, "company": {"name": "Co"}},
                {"first_name": "Q"},
            ],
        },
        {"status": "completed", "discovered_contacts": []},
        None,
    ]
    out = discovered_contacts_frame(df, results, np.array([0, 0, 1, -1]))
    assert out["input_position"].tolist() == [0, 0, 1, 1]
    assert out["input_k"].tolist() == ["a"] * 4 and out["input_index_1"].tolist() == [1] * 4
    assert out["first_name"].tolist() == ["P", "Q", "P", "Q"]
    assert out["company_name"].tolist() == ["Co", pd.NA, "Co", pd.NA]
    assert isinstance(out.index, pd.RangeIndex)
    empty = discovered_contacts_frame(df, [None], np.array([0, -1, -1, -1]))
    assert len(empty) == 0 and "input_position" in empty.columns


def test_matches_json_normalize_baseline() -> None:
    rng = np.random.default_rng(0)
    results = []
    for i in range(200):
        r = copy.deepcopy(SPEC_EXAMPLE)
        r["task_id"] = f"t{i}"
        if rng.random() < 0.3:
            r["primary_email"] = None
        if rng.random() < 0.3:
            r["prospect"]["headline"] = None
        results.append(r)
    fast = flatten_results(results)
    ref = pd.json_normalize(results)
    assert fast["cl_email"].tolist() == [
        v if isinstance(v, str) else pd.NA for v in ref["primary_email"]
    ]
    assert fast["cl_headline"].tolist() == [
        v if isinstance(v, str) else pd.NA for v in ref["prospect.headline"]
    ]
    assert fast["cl_task_id"].tolist() == ref["task_id"].tolist()


def test_build_output_with_results_flattened_on_arrival() -> None:
    from cleanlist_pandas.frame.mapping import map_contacts
    from cleanlist_pandas.frame.merge import FlattenedResults
    from cleanlist_pandas.frame.plan import plan

    df = pd.DataFrame(
        {"LinkedIn": [f"linkedin.com/in/p{i % 7}" for i in range(20)] + ["nope"]},
        index=[f"r{i}" for i in range(21)],
    )
    p = plan(map_contacts(df), "full")
    results: list[dict[str, object] | None] = [
        {
            "status": "completed",
            "task_id": f"t{u}",
            "primary_email": f"e{u}@x.io",
            "credits_charged": 1,
            "prospect": {"seniority": "vp"},
        }
        for u in range(p.n_unique)
    ]
    results[3] = None
    wfs = [f"wf{u // 2}" for u in range(p.n_unique)]
    fr = FlattenedResults(p.n_unique, enrichment_type="full", batch=2)
    for start in range(0, p.n_unique, 2):
        ids = list(range(start, min(start + 2, p.n_unique)))
        fr.add(ids, [results[u] for u in ids])
    assert len(fr) == p.n_unique - 1
    kw = {"statuses": ["unknown"] * p.n_unique, "workflow_ids": wfs}
    want = build_output(df, p, results, **kw)
    pd.testing.assert_frame_equal(build_output(df, p, results, flat=fr, **kw), want)
    # a result replaced after it was added: the batches are not used, the output is right
    results[0] = {"status": "failed", "task_id": "t0"}
    want = build_output(df, p, results, **kw)
    pd.testing.assert_frame_equal(build_output(df, p, results, flat=fr, **kw), want)
    # another prefix: ignored
    out = build_output(df, p, results, flat=fr, prefix="x_", **kw)
    assert "x_email" in out.columns
    with pytest.raises(ValueError, match="out of range"):
        fr.add([p.n_unique], [{"status": "completed"}])


def test_results_flattened_by_another_thread_while_added_give_the_same_output() -> None:
    """The run's waiting thread flushes while the loop adds (enrich's tick): no result is
    lost or flattened twice, and the output equals flattening everything at once."""
    import threading

    from cleanlist_pandas.frame.merge import FlattenedResults, flatten_results

    n = 4000
    results: list[dict[str, object] | None] = [
        {"status": "completed", "task_id": f"t{u}", "primary_email": f"e{u}@x.io",
         "credits_charged": 1}
        for u in range(n)
    ]
    fr = FlattenedResults(n, enrichment_type="partial", batch=1000)
    done = threading.Event()

    def flusher() -> None:
        while not done.is_set():
            fr.flush()

    t = threading.Thread(target=flusher)
    t.start()
    order = list(range(n))
    random.Random(0).shuffle(order)  # workflows arrive in any order
    for start in range(0, n, 250):
        ids = order[start : start + 250]
        fr.add(ids, [results[u] for u in ids])
    done.set()
    t.join()
    assert len(fr) == n
    pd.testing.assert_frame_equal(
        fr.frame(results), flatten_results(results, enrichment_type="partial")
    )


@pytest.mark.parametrize("dtype", ["string", "str", object])
def test_assemble_fills_status_and_error_of_rows_without_result_any_dtype(dtype: Any) -> None:
    """Rows with code -1 get the given status/error whatever the unique columns' dtype."""
    df = pd.DataFrame({"x": [1, 2, 3, 4]})
    unique = pd.DataFrame(
        {
            "cl_email": pd.array(["a@x.io", None], dtype="string"),
            "cl_status": pd.Series(["enriched", "failed"], dtype=dtype),
            "cl_error": pd.Series([None, "boom"], dtype=dtype),
        }
    )
    out = assemble(
        df,
        unique,
        np.array([1, -1, 0, -1]),
        row_status=[None, "skipped", None, np.nan],
        row_error=np.array(["e0", "bad row", None, np.nan], dtype=object),
    )
    assert str(out["cl_status"].dtype) == "string"
    assert str(out["cl_error"].dtype) == "string"
    assert out["cl_status"].tolist() == ["failed", "skipped", "enriched", "not_submitted"]
    assert out["cl_error"].tolist() == ["boom", "bad row", pd.NA, pd.NA]
