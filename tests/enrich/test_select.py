"""Issue 12, part 1: spend only where it pays — ``where=``, ``only_missing=`` and ``fill=``.

Every run is checked against the sandbox: which contacts reached it (its workflows' tasks),
what it charged (its ledger), and that a bad selection fails before any request.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from enrich_helpers import client_for

import cleanlist_pandas as clp
from cleanlist_pandas.errors import CleanlistWarning
from cleanlist_pandas.events import Event, JobPlanned
from cleanlist_pandas.frame.mapping import map_contacts
from cleanlist_pandas.frame.plan import plan
from cleanlist_pandas.frame.select import select, where_mask
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.run.job import enrich
from cleanlist_pandas.run.options import Options, call_text, job_key
from cleanlist_pandas.run.prepare import Prepared
from cleanlist_pandas.sandbox import Sandbox

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def leads(n: int, *, start: int = 0) -> pd.DataFrame:
    """n valid, distinct leads; every third has an e-mail, every other a phone; country
    DE/FR alternating."""
    i = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in i],
            "Last Name": [f"Lee{k}" for k in i],
            "Company Website": [f"https://www.co{k % 97}.com/about" for k in i],
            "E-mail": [f"own{k}@co{k % 97}.com" if k % 3 == 0 else None for k in i],
            "Mobile": ["+4930123" if k % 2 == 0 else None for k in i],
            "Country": ["DE" if k % 2 else "FR" for k in i],
        }
    )


def run(df: pd.DataFrame, client: Any, **kw: Any) -> Any:
    kw.setdefault("poll", FAST)
    kw.setdefault("progress", False)
    return df.cleanlist.enrich(client=client, **kw)


def sent_names(sb: Sandbox) -> Counter[str]:
    """First names of every contact the sandbox received, with how often."""
    return Counter(
        t.contact.get("first_name", "") for wf in sb.state.workflows.values() for t in wf.tasks
    )


def ledger_total(sb: Sandbox) -> float:
    return float(sum(r["credits"] for r in sb.ledger()))


def requests_total(sb: Sandbox) -> int:
    return int(sb.stats()["total"])


# -- where= ------------------------------------------------------------------------------
def test_where_mask_forms() -> None:
    df = pd.DataFrame({"x": [1, 2, 3]}, index=["a", "b", "c"])
    assert where_mask(df, None) is None
    assert where_mask(df, df["x"] > 1).tolist() == [False, True, True]
    permuted = pd.Series([True, False, False], index=["c", "b", "a"])
    assert where_mask(df, permuted).tolist() == [False, False, True]  # aligned by label
    assert where_mask(df, np.array([True, False, True])).tolist() == [True, False, True]
    assert where_mask(df, [False, False, True]).tolist() == [False, False, True]
    assert where_mask(df, lambda d: d["x"] == 2).tolist() == [False, True, False]
    nullable = pd.Series([True, False, True], index=df.index, dtype="boolean")
    assert where_mask(df, nullable).tolist() == [True, False, True]
    objects = pd.Series([True, False, np.True_], index=df.index, dtype=object)
    assert where_mask(df, objects).tolist() == [True, False, True]
    # a non-unique index: a Series with exactly that index is read by position
    dup = pd.DataFrame({"x": [1, 2, 3]}, index=["a", "a", "b"])
    assert where_mask(dup, dup["x"] != 2).tolist() == [True, False, True]
    # a MultiIndex, same labels in another order
    mi = pd.DataFrame({"x": [1, 2]}, index=pd.MultiIndex.from_tuples([(0, "p"), (1, "q")]))
    flipped = pd.Series([True, False], index=pd.MultiIndex.from_tuples([(1, "q"), (0, "p")]))
    assert where_mask(mi, flipped).tolist() == [False, True]


@pytest.mark.parametrize(
    ("mask", "words"),
    [
        (lambda d: d["x"], "must be boolean"),  # int
        (lambda d: d["x"].where(d["x"] > 1) > 1.5, None),  # a comparison: fine (False)
        (lambda d: (d["x"] > 1).astype(object).where(d["x"] > 1), "missing value"),  # NaN
        (lambda d: pd.Series([True, None, False], index=d.index, dtype="boolean"), "missing"),
        (lambda d: pd.Series([True, False, True], index=["a", "b", "zz"]), "index is not"),
        (lambda d: pd.Series([True, False]), "index is not"),
        (lambda d: np.array([True, False]), "has 2 values for the frame's 3 rows"),
        (lambda d: d[["x"]] > 0, "DataFrame"),
        (lambda d: "x > 1", "must be a boolean Series"),
    ],
)
def test_a_bad_where_is_refused_naming_where(mask: Any, words: str | None) -> None:
    df = pd.DataFrame({"x": [1, 2, 3]}, index=["a", "b", "c"])
    value = mask(df)
    if words is None:
        assert where_mask(df, value).tolist() == [False, True, True]
        return
    with pytest.raises(clp.SelectionError, match="where=") as ei:
        where_mask(df, value)
    assert words in str(ei.value) and isinstance(ei.value, ValueError)
    with pytest.raises(clp.SelectionError, match="what your function returned"):
        where_mask(df, lambda d, v=value: v)  # the same, returned by a function


def test_duplicate_labels_need_the_very_same_index() -> None:
    dup = pd.DataFrame({"x": [1, 2, 3]}, index=["a", "a", "b"])
    other_order = pd.Series([True, False, True], index=["a", "b", "a"])
    with pytest.raises(clp.SelectionError, match="duplicate index labels"):
        where_mask(dup, other_order)


def test_bad_selection_fails_before_any_request(sandbox: Sandbox, client: Any) -> None:
    df = leads(20)
    bad = [
        {"where": df["First Name"]},
        {"where": (df["Country"] == "DE").where(df.index > 3)},  # NaN
        {"where": (df["Country"] == "DE").set_axis(range(100, 120))},
        {"only_missing": "mail"},
        {"only_missing": {"email": "Nope"}},
        {"only_missing": "email", "columns": {"email": None}, "enrichment_type": "partial"},
        {"fill": True, "enrichment_type": "none"},
        {"fill": {"phone": "Mobile"}, "enrichment_type": "partial"},
    ]
    for kw in bad[:5] + bad[6:]:
        with pytest.raises(ValueError, match=r"where=|only_missing|fill"):
            run(df, client, **kw)
        with pytest.raises(ValueError, match=r"where=|only_missing|fill"):
            df.cleanlist.estimate(client=client, **kw)
    assert requests_total(sandbox) == 0, "a request left before the selection was checked"
    # columns={"email": None} only stops e-mail being a domain source: only_missing still
    # finds the E-mail column
    assert df.cleanlist.estimate(client=client, **bad[5]).counts["excluded"] == 7


# -- only_missing= -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Email", "email"),
        ("E-mail", "email"),
        ("email_address", "email"),
        ("Work Email", "email"),
        ("Phone", "phone"),
        ("Mobile", "phone"),
        ("phone_number", "phone"),
        ("Mobile Phone", "phone"),
    ],
)
def test_only_missing_detects_the_column_like_the_mapping(header: str, field: str) -> None:
    df = pd.DataFrame(
        {
            "LinkedIn": [f"linkedin.com/in/p{k}" for k in range(7)],
            header: ["x@y.io", "", "   ", None, np.nan, "n/a", "+1 555"],
        }
    )
    s = select(df, only_missing=field)
    assert s.value_columns == {field: header}
    assert s.kept.tolist() == [False, True, True, True, True, True, False]
    assert s.reasons()[0] == f"has {field} (column {header!r})"


def test_only_missing_errors_say_what_was_looked_for() -> None:
    df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/a"], "Tel Work": ["1"], "Notes": ["x"]})
    with pytest.raises(clp.MappingError) as ei:
        select(df, only_missing="phone")
    text = str(ei.value)
    assert "only_missing: no phone column found" in text and "Mobile" in text
    assert "only_missing={'phone': 'COLUMN'}" in text and "'Tel Work'" in text
    assert "--only-missing phone=COLUMN" in ei.value.cli_message
    two = pd.DataFrame({"LinkedIn": ["x"], "Phone": ["1"], "Mobile": ["2"]})
    ambiguous = r"ambiguous column for phone: \['Phone', 'Mobile'\]"
    with pytest.raises(clp.MappingError, match=ambiguous):
        select(two, only_missing="phone")
    # naming it settles it, and {field: column} in only_missing= is the way
    assert select(two, only_missing={"phone": "Mobile"}).value_columns == {"phone": "Mobile"}
    # a list: left out only when every listed value is there
    both = pd.DataFrame(
        {"LinkedIn": ["x"] * 3, "Email": ["a@b.c", "a@b.c", None], "Mobile": ["1", None, "1"]}
    )
    s = select(both, only_missing=["email", "phone"])
    assert s.kept.tolist() == [False, True, True]
    assert s.only_missing_reason == "has email and phone (columns 'Email', 'Mobile')"


def test_only_missing_email_sends_only_rows_without_one(sandbox: Sandbox, client: Any) -> None:
    df = leads(60)
    before = copy.deepcopy(df)
    out = run(df, client, only_missing="email")
    pd.testing.assert_frame_equal(df, before)
    has = df["E-mail"].notna()
    assert (out.loc[has, "cl_status"] == "skipped").all()
    assert (out.loc[has, "cl_error"] == "has email (column 'E-mail')").all()
    assert out.loc[has, [c for c in out.columns if c.startswith("cl_")]].drop(
        columns=["cl_status", "cl_error"]
    ).isna().all().all()
    sent = sent_names(sandbox)
    assert set(sent) == set(df.loc[~has, "First Name"]) and max(sent.values()) == 1
    assert float(out["cl_credits"].fillna(0).sum()) == pytest.approx(ledger_total(sandbox))
    pd.testing.assert_frame_equal(out[df.columns], df)  # every input value as it was


# -- where= on the sandbox ---------------------------------------------------------------
def test_where_sends_only_the_selected_rows(sandbox: Sandbox, client: Any) -> None:
    df = leads(90)
    df.index = pd.MultiIndex.from_tuples([(k // 3, k % 3) for k in range(90)])
    out = run(df, client, where=lambda d: d["Country"] == "DE")
    assert out.index.equals(df.index) and list(out.columns[: df.shape[1]]) == list(df.columns)
    de = (df["Country"] == "DE").to_numpy()
    assert (out["cl_status"][~de] == "skipped").all()
    assert (out["cl_error"][~de] == "excluded by where=").all()
    assert out["cl_status"][de].isin(["enriched", "not_found", "failed"]).all()
    assert set(sent_names(sandbox)) == set(df["First Name"][de])
    assert float(out["cl_credits"].fillna(0).sum()) == pytest.approx(ledger_total(sandbox))


def test_duplicate_of_a_left_out_row_is_still_sent_once(sandbox: Sandbox, client: Any) -> None:
    df = pd.concat([leads(10), leads(10), leads(5, start=100)], ignore_index=True)
    where = np.r_[np.zeros(10, bool), np.ones(15, bool)]  # the first copies are left out
    out = run(df, client, where=where)
    assert (out["cl_status"].iloc[:10] == "skipped").all()
    assert out["cl_status"].iloc[10:].isin(["enriched", "not_found", "failed"]).all()
    sent = sent_names(sandbox)
    assert len(sent) == 15 and set(sent.values()) == {1}
    # and a duplicate of a kept row that is itself left out stays skipped
    out2 = run(df, client, where=np.r_[np.ones(10, bool), np.zeros(15, bool)])
    assert (out2["cl_status"].iloc[10:] == "skipped").all()
    assert (out2["cl_credits"].fillna(0) == 0).all()  # from the cache, nothing new paid


def test_plan_counts_partition_and_never_key_left_out_rows() -> None:
    df = leads(40)
    df.loc[5, "Last Name"] = None  # invalid, and left out by where= below too
    df.loc[7, "Last Name"] = None  # invalid, kept
    where = pd.Series(np.arange(40) % 4 != 1, index=df.index)
    where[5] = False
    mapped = map_contacts(df)
    chosen = select(df, where=where, only_missing="email")
    p = plan(mapped, "full", selection=chosen)
    assert p.n_rows == p.n_excluded + p.n_invalid + p.n_valid
    assert p.excluded_by == {"where": 10, "only_missing": 11}
    assert p.n_invalid == 1 and p.reason_counts == {"missing last_name": 1}
    assert p.saved_by == {"where": 9, "only_missing": 11}  # row 5 is invalid: nothing saved
    assert p.credits_saved == 20 * 11 and p.credits_saved_by == {"where": 99, "only_missing": 121}
    kept_rows = np.flatnonzero(p.row_codes >= 0)
    assert set(df["First Name"].iloc[kept_rows]) == {
        f"Ann{k}" for k in range(40) if k % 4 != 1 and k % 3 != 0 and k != 7
    }
    assert len(p.fingerprints) == p.n_unique == len(kept_rows)
    assert p.counts()["excluded"] == 21 and "excluded_by" not in repr(p)
    # the job key: the kept contacts only, whatever the row order
    key = job_key("full", p.fingerprints)
    shuffled = df.sample(frac=1, random_state=1)
    p2 = plan(map_contacts(shuffled), "full",
              selection=select(shuffled, where=where.loc[shuffled.index], only_missing="email"))
    assert job_key("full", p2.fingerprints) == key
    other = plan(mapped, "full", selection=select(df, where=~where, only_missing="email"))
    assert job_key("full", other.fingerprints) != key
    everything = plan(mapped, "full", selection=select(df, where=np.ones(40, bool)))
    unselected = plan(mapped, "full")
    assert job_key("full", everything.fingerprints) == job_key("full", unselected.fingerprints)


def test_same_where_resumes_its_job_after_a_top_up(make_sandbox: Any) -> None:
    sb = make_sandbox(credits=300.0)
    c = client_for(sb)
    df = leads(900)
    where = df["Country"] == "DE"  # 450 rows: 2 chunks of 250 and 200, worst case 250 each
    with pytest.warns(CleanlistWarning) as rec:
        first = run(df, c, where=where)
    msg = " ".join(str(w.message) for w in rec)
    assert "where=<the same mask>" in msg, msg  # the call that continues names it
    st = first["cl_status"]
    waiting = st == "awaiting_credits"
    assert waiting.any() and (st[~where] == "skipped").all()
    key = Prepared(df, Options(where=where)).key
    assert key != Prepared(df, Options()).key
    assert key != Prepared(df, Options(where=~where)).key
    sb.set_credits(10_000)
    names_before = sent_names(sb)
    final = run(df, c, where=where)
    new = sent_names(sb) - names_before
    assert set(new) == set(df["First Name"][waiting]), "the re-run sent other rows"
    assert not final["cl_status"].isin(["not_submitted", "awaiting_credits"]).any()
    fps = Counter(r["fingerprint"] for r in sb.ledger())
    assert max(fps.values()) == 1, "a contact was charged twice"
    c.close()


def test_max_credits_counts_only_the_selected_rows(sandbox: Sandbox, client: Any) -> None:
    df = leads(200)
    planned: list[Event] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CleanlistWarning)
        out = enrich(
            df,
            Options(where=(df["Country"] == "DE").to_numpy(), max_credits=30, progress=False,
                    poll=FAST),
            client=client,
            listeners=[planned.append],
        )
    (plan_event,) = [e for e in planned if isinstance(e, JobPlanned)]
    assert isinstance(out, pd.DataFrame)
    assert plan_event.excluded == 100 and plan_event.to_send == 100
    assert plan_event.worst_case_credits == 30 and not plan_event.pilot
    sent = sent_names(sandbox)
    assert set(sent) <= set(df["First Name"][df["Country"] == "DE"]) and max(sent.values()) == 1
    assert ledger_total(sandbox) <= 30
    st = out["cl_status"]
    assert (st[df["Country"] != "DE"] == "skipped").all()
    assert (st == "not_submitted").sum() == 100 - sum(sent.values()) > 0


# -- fill= -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["object", "string", "str", "float64-empty"])
def test_fill_writes_only_empty_cells_and_keeps_a_sane_dtype(
    sandbox: Sandbox, client: Any, dtype: str
) -> None:
    df = leads(30)
    df["E-mail"] = df["E-mail"].astype(object)
    df.loc[1, "E-mail"] = "   "  # blank: filled
    df.loc[2, "E-mail"] = "n/a"  # a placeholder is text: kept, and the row is sent
    if dtype == "float64-empty":
        df["E-mail"] = np.nan
    elif dtype == "str":
        df["E-mail"] = df["E-mail"].astype(pd.Series(["x"]).dtype)
    elif dtype != "object":
        df["E-mail"] = df["E-mail"].astype(dtype)
    before = copy.deepcopy(df)
    plain = run(df, client)
    pd.testing.assert_frame_equal(plain[df.columns], df)  # without fill=: untouched
    out = run(df, client, fill=True)
    pd.testing.assert_frame_equal(df, before)  # the input frame itself is never modified
    col, found = out["E-mail"], out["cl_email"]
    had = before["E-mail"].notna() & (before["E-mail"].astype(str).str.strip() != "")
    assert (col[had] == before["E-mail"][had]).all(), "an input value was overwritten"
    empty = ~had & found.notna()
    assert empty.sum() >= 5
    assert (col[empty] == found[empty]).all()
    unfound = col[~had & found.isna()]
    assert (unfound.isna() | (unfound.astype(object).fillna("").str.strip() == "")).all()
    if dtype == "float64-empty":
        assert out["E-mail"].dtype == pd.Series(["x"]).dtype  # text now, not float
    else:
        assert out["E-mail"].dtype == before["E-mail"].dtype
    # the phone column is not filled for partial (nothing found), and other columns as before
    pd.testing.assert_series_equal(out["Mobile"], df["Mobile"])


def test_fill_phone_and_only_missing_together(sandbox: Sandbox, client: Any) -> None:
    df = leads(40)
    df.index = pd.Index(["x", "y"] * 20)  # duplicate labels: filled by position
    out = run(df, client, enrichment_type="full", only_missing="phone", fill=True)
    assert out.index.equals(df.index)
    had = df["Mobile"].notna()
    assert (out.loc[had, "cl_status"] == "skipped").all()
    assert (out.loc[had, "Mobile"] == df.loc[had, "Mobile"]).all()
    got = ~had & out["cl_phone"].notna()
    assert got.any() and (out.loc[got, "Mobile"] == out.loc[got, "cl_phone"]).all()
    # the email column too (full finds both)
    gotmail = df["E-mail"].isna() & out["cl_email"].notna()
    assert (out.loc[gotmail, "E-mail"] == out.loc[gotmail, "cl_email"]).all()


def test_fill_names_its_column_and_refuses_what_the_type_cannot_find() -> None:
    df = pd.DataFrame({"LinkedIn": ["x"], "Contact Mail": [None]})
    with pytest.raises(clp.MappingError, match=r"fill=True: no email column to fill"):
        select(df, fill=True)
    assert select(df, fill={"email": "Contact Mail"}).fill_columns == {"email": 1}
    with pytest.raises(ValueError, match="finds no phone"):
        select(df, fill={"phone": "Contact Mail"}, enrichment_type="partial")
    with pytest.raises(ValueError, match="finds no email or phone"):
        select(df, fill=True, enrichment_type="prospecting_only")


# -- estimate and the advice -------------------------------------------------------------
def test_estimate_shows_left_out_rows_and_credits_saved(sandbox: Sandbox, client: Any) -> None:
    sandbox.config.task_failure_rate = 0.0  # every look-up is cached
    df = leads(60)
    est = df.cleanlist.estimate(
        "full", where=df["Country"] == "DE", only_missing="email", fill=True, client=client
    )
    c = est.counts
    assert c["excluded"] == 30 + 10 and c["excluded_by"] == {"where": 30, "only_missing": 10}
    assert c["credits_saved"] == 40 * 11 and c["to_send"] == 20
    assert c["rows"] == c["excluded"] + c["valid"] + c["invalid"]
    text = repr(est)
    for words in ("left out", "by where=", "by only_missing=", "credits saved", "440"):
        assert words in text
    assert "fill" in text and "'E-mail'" in text and "'Mobile'" in text
    s = est.to_series()
    assert s["excluded: where"] == 30 and s["credits_saved"] == 440
    assert "left out" in est._repr_html_()
    assert sandbox.stats()["by_endpoint"].get("POST /enrich/bulk") is None
    # the run does what the estimate said
    out = run(df, client, enrichment_type="full", where=df["Country"] == "DE",
              only_missing="email")
    assert sum(sent_names(sandbox).values()) == c["to_send"]
    assert (out["cl_status"] == "skipped").sum() == c["excluded"]
    # a left-out contact already cached saves nothing: it would not have been paid for
    assert df.cleanlist.estimate("full", only_missing="email").counts["credits_saved"] == 220
    run(df, client, enrichment_type="full", where=df["Country"] == "DE")  # 10 with an email
    again = df.cleanlist.estimate("full", only_missing="email", client=client)
    assert again.counts["excluded"] == 20 and again.counts["credits_saved"] == 10 * 11


def test_call_text_names_the_selection() -> None:
    text = call_text(Options("full", where=lambda d: d, only_missing=["email", "phone"], fill=True))
    assert text == (
        "df.cleanlist.enrich('full', where=<the same function>, "
        "only_missing=['email', 'phone'], fill=True)"
    )
