"""Issue 9, item 10: the pre-run warning states the rule the server applies (the worst case of
each request must be covered by the balance) and what to do; and the advice works."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from words_helpers import FAST, client_for, leads

import cleanlist_pandas as clp
from cleanlist_pandas.sandbox import Sandbox


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "cache"))


def bulk_answers(sb: Sandbox) -> dict[str, int]:
    return {str(k): v for k, v in sb.stats()["by_endpoint"].get("POST /enrich/bulk", {}).items()}


# -- 10. the pre-run warning states the server's rule and what to do -----------------------
def test_balance_warning_states_the_rule_and_the_advice_works(make_sandbox: Any) -> None:
    sb = make_sandbox(credits=100.0)
    c = client_for(sb)
    df = leads(40)  # 'full': worst case 440 > 100, in one request of 40
    try:
        with pytest.warns(clp.CleanlistWarning) as rec:
            out = df.cleanlist.enrich("full", client=c, poll=FAST, progress=False)
        first = str(rec[0].message)
        assert "may still fit" not in first
        assert "accepts a request only if the balance covers that request's worst case" in first
        assert "first request (40 contacts, worst case 440) would be refused" in first
        assert "Top up to at least 440 credits" in first and "max_credits=100" in first
        # ... and that is what happens: the one request is refused, nothing is charged
        assert (out["cl_status"] == "awaiting_credits").all()
        assert bulk_answers(sb) == {"402": 1}
        # the advice works: max_credits=100 sizes the requests to the balance
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", clp.CleanlistWarning)
            out = df.cleanlist.enrich(
                "full", client=c, poll=FAST, progress=False, max_credits=100
            )
    finally:
        c.close()
    answers = bulk_answers(sb)
    assert answers.get("200", 0) >= 1 and answers.get("402") == 1  # no new refusal
    assert out["cl_status"].isin(["enriched", "not_found"]).any()
    assert set(out["cl_status"]) <= {"enriched", "not_found", "failed", "not_submitted"}




@pytest.mark.parametrize("time_scale", [0.002, 0.05])
def test_balance_warning_points_at_the_callers_line(make_sandbox: Any, time_scale: float) -> None:
    # the pre-check is read while the first chunks leave; its warning is given by the
    # waiting thread's tick (a run long enough to tick: 0.05) or after the run (0.002),
    # and either way names the line that called enrich()
    sb = make_sandbox(credits=300.0, time_scale=time_scale)
    c = client_for(sb)
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            df = leads(500)  # 'partial': worst case 500 > 300; each chunk of 250 fits alone
            df.cleanlist.enrich(client=c, poll=FAST, progress=False)
    finally:
        c.close()
    ours = [w for w in rec if "does not cover the worst case" in str(w.message)]
    assert len(ours) == 1 and ours[0].filename == __file__, [
        (w.filename, str(w.message)[:50]) for w in rec
    ]


def test_rows_left_over_warning_points_at_the_callers_line(make_sandbox: Any) -> None:
    # max_credits leaves rows 'not_submitted': the warning that says so names the line that
    # called enrich() (it named a line of the package's accessor)
    sb = make_sandbox(credits=1e6, time_scale=0.002)
    c = client_for(sb)
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            out = leads(300).cleanlist.enrich(client=c, poll=FAST, progress=False, max_credits=50)
    finally:
        c.close()
    assert (out["cl_status"] == "not_submitted").any()
    ours = [w for w in rec if "not submitted" in str(w.message)]
    assert len(ours) == 1 and ours[0].filename == __file__, [
        (w.filename, str(w.message)[:50]) for w in rec
    ]
