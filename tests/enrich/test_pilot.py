"""Issue 12, part 2: pilot, then commit — ``df.cleanlist.pilot()`` on the sandbox.

The sandbox's oracle is deterministic (same contact and seed, same outcome, failures
included), so "a pilot and then the full run" can be compared with "one full run" credit
for credit, on its ledger.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from enrich_helpers import client_for

import cleanlist_pandas as clp
from cleanlist_pandas._constants import CACHE_FILENAME
from cleanlist_pandas.events import Event, JobFinished, JobPlanned
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.run.options import Options
from cleanlist_pandas.run.pilot import pilot
from cleanlist_pandas.run.rates import PilotRates, sample_ids, wilson
from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.store.files import wait_for_deferred

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def leads(n: int, *, dup_every: int = 0) -> pd.DataFrame:
    i = np.arange(n)
    if dup_every:
        i = i - (i % dup_every)
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in i],
            "Last Name": [f"Lee{k}" for k in i],
            "Company Website": [f"https://www.co{k % 97}.com/about" for k in i],
            "Email": [f"own{k}@co{k % 97}.com" if k % 4 == 0 else None for k in i],
            "Region": ["EU" if k % 2 else "US" for k in i],
        }
    )


def kw(**more: Any) -> dict[str, Any]:
    return {"poll": FAST, "progress": False, **more}


def ledger_total(sb: Sandbox) -> float:
    return float(sum(r["credits"] for r in sb.ledger()))


def bulk_requests(sb: Sandbox) -> int:
    return sum(sb.stats()["by_endpoint"].get("POST /enrich/bulk", {}).values())


def sent(sb: Sandbox) -> list[dict[str, Any]]:
    return [t.contact for wf in sb.state.workflows.values() for t in wf.tasks]


def tasks_of(sb: Sandbox, workflow_ids: Any) -> list[Any]:
    return [t for w in workflow_ids for t in sb.state.workflows[w].tasks]


# -- the statistics ----------------------------------------------------------------------
def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert wilson(15, 148) == pytest.approx((0.0624, 0.1605), abs=5e-5)
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=5e-5))
    assert wilson(10, 10) == (pytest.approx(0.7225, abs=5e-5), 1.0)
    assert wilson(0, 0) == (0.0, 1.0)


def test_expected_credits_per_type() -> None:
    full = PilotRates("full", 100, 100, {"email": 70, "phone": 10})
    mid, low, high = full.expected(1000)
    e_lo, e_hi = wilson(70, 100)
    p_lo, p_hi = wilson(10, 100)
    assert mid == pytest.approx(1000 * (0.7 + 10 * 0.1))
    assert (low, high) == pytest.approx((1000 * (e_lo + 10 * p_lo), 1000 * (e_hi + 10 * p_hi)))
    assert PilotRates("phone_only", 50, 40, {"email": 40, "phone": 4}).expected(10)[0] == 10.0
    assert PilotRates("none", 5, 5).expected(100) == (0.0, 0.0, 0.0)
    prospects = PilotRates(
        "prospecting_only", 4, 4, {"any_prospect": 3, "prospect": 8, "prospect_sq": 22}
    )
    mid, low, high = prospects.expected(10)
    assert mid == 20.0 and 0 <= low < mid < high <= 50
    # nothing looked up: the whole range up to the worst case
    mid, low, high = PilotRates("full", 10, 0).expected(10)
    assert np.isnan(mid) and (low, high) == (0.0, 110.0)


def test_sample_is_reproducible_order_free_and_nested() -> None:
    from cleanlist_pandas.frame.mapping import map_contacts
    from cleanlist_pandas.frame.plan import plan

    fps = plan(map_contacts(leads(500)), "full").fingerprints
    a = sample_ids(fps, 50, seed=7)
    assert len(a) == 50 and (np.diff(a) > 0).all()
    assert (sample_ids(fps, 50, seed=7) == a).all()
    rev = fps[::-1].copy()
    assert set(rev[sample_ids(rev, 50, seed=7)]) == set(fps[a])  # not the row order
    assert set(fps[a]) <= set(fps[sample_ids(fps, 80, seed=7)])  # a larger n keeps it
    assert len(set(fps[a]) & set(fps[sample_ids(fps, 50, seed=8)])) < 25  # another seed
    assert (sample_ids(fps, 900, seed=1) == np.arange(500)).all()
    # spread over the whole frame, not the first rows
    assert a.max() > 400 and a.min() < 100


# -- pilot, then commit ------------------------------------------------------------------
def test_pilot_then_full_pays_what_one_full_run_pays(
    sandbox: Sandbox, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = leads(700)
    df = pd.concat([df, df.iloc[:50]], ignore_index=True)  # duplicates: sampled once
    seen: list[Event] = []
    res = pilot(df, Options("full", **kw()), n=120, seed=0, client=client, listeners=[seen.append])
    pilot_paid = ledger_total(sandbox)
    assert pilot_paid > 0 and res.credits_spent == pytest.approx(pilot_paid)
    assert res.sample == 120 and res.population == 700 and res.rest == 580
    assert len(res.enriched) == 120 and res.enriched.index.is_unique
    assert res.worst_case_credits == 580 * 11
    # the pilot is marked as one, with its workflows, for a spend ledger
    finished = [e for e in seen if isinstance(e, JobFinished)]
    planned = [e for e in seen if isinstance(e, JobPlanned)]
    assert finished[0].pilot and planned[0].pilot and finished[0].job_id == res.job_id
    assert set(finished[0].workflow_ids) == set(res.workflow_ids) == set(sandbox.state.workflows)
    assert planned[0].worst_case_credits == 120 * 11  # max_credits: the sample's worst case
    # the rates are the sandbox's truth about the sample
    tasks = tasks_of(sandbox, res.workflow_ids)
    assert len(tasks) == 120
    emails = sum(1 for t in tasks if t.status == "completed" and t.result.get("primary_email"))
    phones = sum(
        1 for t in tasks if t.status == "completed" and t.result.get("personal_phone_numbers")
    )
    assert res.email_rate.found == emails and res.phone_rate.found == phones
    assert res.rates.looked_up == 120
    # the full run reuses the pilot's results: it sends only the rest, pays nothing twice
    names_before = Counter(c["first_name"] for c in sent(sandbox))
    out = df.cleanlist.enrich("full", client=client, **kw())
    names_after = Counter(c["first_name"] for c in sent(sandbox))
    assert sum((names_after - names_before).values()) == res.rest
    assert max(names_after.values()) == 1, "a sampled contact was sent again"
    rest_paid = ledger_total(sandbox) - pilot_paid
    assert float(out["cl_credits"].fillna(0).sum()) == pytest.approx(rest_paid)
    fps = Counter(r["fingerprint"] for r in sandbox.ledger())
    assert max(fps.values()) == 1, "a contact was charged twice"
    # the expected credits of the rest held what the rest cost. (One deterministic case: the
    # interval is meant to miss now and then — with seed=3 this sample's phone rate is 2.9
    # standard errors high and it does; over 1,000 seeds the sampler's rates average the
    # frame's, with the spread of a simple random sample.)
    assert res.expected_low <= rest_paid <= res.expected_high
    assert res.expected_high <= res.worst_case_credits
    # one full run on a fresh cache and a fresh sandbox charges exactly the same
    total = ledger_total(sandbox)
    sandbox.reset()
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "fresh"))
    df.cleanlist.enrich("full", client=client, **kw())
    assert ledger_total(sandbox) == pytest.approx(total)


def test_running_a_pilot_again_is_free(sandbox: Sandbox, client: Any) -> None:
    df = leads(300)
    first = df.cleanlist.pilot(40, "partial", client=client, **kw())
    bulks, paid = bulk_requests(sandbox), ledger_total(sandbox)
    again = df.cleanlist.pilot(40, "partial", client=client, **kw())
    assert bulk_requests(sandbox) == bulks and ledger_total(sandbox) == paid
    assert again.credits_spent == 0 and again.from_cache == again.rates.looked_up
    assert again.rates.found == first.rates.found and (again.positions == first.positions).all()
    assert again.workflow_ids == ()
    other = df.cleanlist.pilot(40, "partial", seed=1, client=client, **kw())
    assert set(other.positions) != set(first.positions)
    assert bulk_requests(sandbox) == bulks + 1


def test_pilot_samples_only_rows_enrich_would_send(sandbox: Sandbox, client: Any) -> None:
    df = leads(400)
    df.loc[::10, "Last Name"] = None  # invalid rows: never sampled
    res = df.cleanlist.pilot(
        60, "partial", where=df["Region"] == "EU", only_missing="email", client=client, **kw()
    )
    rows = df.iloc[res.positions]
    assert (rows["Region"] == "EU").all() and rows["Email"].isna().all()
    assert rows["Last Name"].notna().all()
    assert res.enriched.index.equals(rows.index)
    assert res.enriched["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    eligible = (df["Region"] == "EU") & df["Email"].isna() & df["Last Name"].notna()
    assert res.population == int(eligible.sum()) and res.rest == res.population - 60
    assert {c["first_name"] for c in sent(sandbox)} == set(rows["First Name"])
    # n larger than what there is: every eligible contact
    small = df.iloc[:20]
    everything = small.cleanlist.pilot(500, "partial", client=client, **kw())
    assert everything.sample == everything.population == int(small["Last Name"].notna().sum())
    assert everything.rest == 0 and everything.expected_credits == 0


def test_pilot_max_credits_caps_the_sample(sandbox: Sandbox, client: Any) -> None:
    df = leads(200)
    with pytest.warns(clp.CleanlistWarning, match="not submitted"):
        res = df.cleanlist.pilot(50, "full", max_credits=22, client=client, **kw())
    assert ledger_total(sandbox) <= 22
    assert res.rates.looked_up < 50 and res.rates.statuses.get("not_submitted", 0) > 0
    # the rates are over what was looked up only
    assert res.email_rate.n == res.rates.looked_up


def test_a_pilot_the_org_cannot_pay_says_how_to_run_it_again(make_sandbox: Any) -> None:
    sb = make_sandbox(credits=5.0)
    c = client_for(sb)
    df = leads(100)
    with pytest.warns(clp.CleanlistWarning) as rec:
        res = df.cleanlist.pilot(
            50, "full", only_missing="email", client=c, **kw()
        )
    text = " ".join(str(w.message) for w in rec)
    assert "df.cleanlist.pilot(50, 'full', seed=0, only_missing='email')" in text, text
    assert res.rates.statuses == {"awaiting_credits": 50} and res.rates.looked_up == 0
    assert res.expected_low == 0 and res.expected_high == res.worst_case_credits
    assert np.isnan(res.expected_credits) and "unknown: nothing was looked up" in repr(res)
    # the same call after a top-up resumes the same sample and job
    sb.set_credits(10_000)
    again = df.cleanlist.pilot(50, "full", only_missing="email", client=c, **kw())
    assert (again.positions == res.positions).all() and again.rates.looked_up == 50
    c.close()


def test_bad_pilot_arguments_fail_before_any_request(sandbox: Sandbox, client: Any) -> None:
    df = leads(30)
    for n in (0, -5, 2.5, True, "10"):
        with pytest.raises(ValueError, match="n must be"):
            df.cleanlist.pilot(n, client=client)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        df.cleanlist.pilot(10, seed=1.5, client=client)  # type: ignore[arg-type]
    with pytest.raises(clp.SelectionError, match="where="):
        df.cleanlist.pilot(10, where=df["Region"], client=client)
    with pytest.raises(ValueError, match="no contact to sample"):
        df.cleanlist.pilot(10, where=np.zeros(30, bool), client=client)
    with pytest.raises(clp.OutputColumnCollision):
        df.assign(cl_email=1).cleanlist.pilot(10, client=client)
    assert sandbox.stats()["total"] == 0


def test_estimate_shows_the_latest_pilot_of_the_same_type_and_mapping(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    df = leads(500)
    assert df.cleanlist.estimate("full", client=client).expected is None
    res = df.cleanlist.pilot(100, "full", client=client, **kw())
    est = df.cleanlist.estimate("full", client=client)
    assert est.pilot is not None and est.pilot.found == res.rates.found
    to_send = est.counts["to_send"]
    assert to_send == res.rest
    assert est.expected == pytest.approx(
        (res.expected_credits, res.expected_low, res.expected_high)
    )
    text = repr(est)
    assert "expected (from pilot)" in text and "pilot of 100" in text
    assert f"{res.expected_credits:,.0f}" in text
    assert est.to_series()["expected_credits"] == pytest.approx(res.expected_credits)
    assert "expected (from pilot)" in est._repr_html_()
    # capped by max_credits like the worst case
    est = df.cleanlist.estimate("full", max_credits=10, client=client)
    assert est.expected == (10.0, 10.0, 10.0)
    # another type, another mapping: no pilot
    assert df.cleanlist.estimate("partial", client=client).expected is None
    assert df.cleanlist.estimate("full", columns={"email": None}, client=client).expected is None
    # the same mapping in another frame (other rows) uses it
    assert leads(50).cleanlist.estimate("full", client=client).expected is not None
    # ... at the same server only: a sandbox's pilot says nothing of the real API's rates
    assert leads(50).cleanlist.estimate("full").expected is None
    # the latest pilot wins
    df.cleanlist.pilot(30, "full", seed=9, client=client, **kw())
    est = df.cleanlist.estimate("full", client=client)
    assert est.pilot is not None and est.pilot.sample == 30
    # the store holds rates and counts only: no name, address or domain of a contact
    wait_for_deferred()  # plain sqlite3 below, as another process would read it
    with sqlite3.connect(_cache_dir / CACHE_FILENAME) as conn:
        stored = " ".join(r[0] for r in conn.execute("SELECT record FROM pilot_rates"))
        mappings = {r[0] for r in conn.execute("SELECT mapping FROM pilot_rates")}
    assert stored and "Ann" not in stored and "Lee" not in stored and "@" not in stored
    assert ".com" not in stored and "First Name" in " ".join(mappings)


def test_pilot_result_reads_right_as_text_html_and_frames(sandbox: Sandbox, client: Any) -> None:
    res = leads(200).cleanlist.pilot(50, "full", client=client, **kw())
    text = repr(res)
    assert text.startswith("Cleanlist pilot (full): 50 of 200 contacts (seed 0)")
    for words in ("email found", "phone found", "95% CI", "Wilson", "expected credits",
                  "worst case", "credits spent", res.job_id):
        assert words in text, words
    assert max(len(line) for line in text.splitlines()) <= 80
    page = res._repr_html_()
    assert "<table>" in page and "Wilson" in page and "<script" not in page
    assert "expected credits" in page
    frame = res.to_frame()
    assert list(frame.columns) == ["found", "n", "rate", "low", "high"]
    assert {"email found", "phone found", "status enriched"} <= set(frame.index)
    assert (frame["low"] <= frame["rate"]).all() and (frame["rate"] <= frame["high"]).all()
    assert frame.attrs["interval"] == "95% Wilson score interval"
    assert frame.attrs["expected_credits"] == res.expected_credits
    s = res.to_series()
    assert s["sample"] == 50 and s["email_rate"] == res.email_rate.rate
    assert s["expected_low"] <= s["expected_credits"] <= s["expected_high"]
    assert sandbox.api_key not in text + page + s.to_string()
