"""The spend ledger (issue 12, part 3): one row per run, and its credits agree with the
sandbox's ledger to the credit — per run, per workflow and in total — for runs that hit the
cache, hold duplicates, are interrupted, run out of credits mid-run, and are resumed."""

from __future__ import annotations

import sqlite3
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from enrich_helpers import client_for
from test_enrich_run import interrupt_after_first_chunk, leads

import cleanlist_pandas as clp
from cleanlist_pandas._constants import MAX_UNIT_COST
from cleanlist_pandas.errors import CleanlistWarning
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.store.files import wait_for_deferred
from cleanlist_pandas.store.ledger import SpendLedger, spend_text

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def run(df: pd.DataFrame, client: Any, **kw: Any) -> Any:
    kw.setdefault("poll", FAST)
    kw.setdefault("progress", False)
    return df.cleanlist.enrich(client=client, **kw)


def paid(frame: pd.DataFrame) -> float:
    return float(frame["cl_credits"].fillna(0).sum())


def sandbox_total(sb: Sandbox) -> float:
    return float(sum(r["credits"] for r in sb.ledger()))


def assert_workflows_agree(sb: Sandbox, cache_dir: Path) -> None:
    """Per workflow, what the runs recorded equals what the sandbox charged."""
    charged: dict[str, float] = defaultdict(float)
    for r in sb.ledger():
        charged[r["workflow_id"]] += r["credits"]
    with SpendLedger(cache_dir) as ledger:
        side = ledger.workflows()
    recorded = side.groupby("workflow_id")["credits"].sum().to_dict()
    assert {w: c for w, c in recorded.items() if c} == pytest.approx(dict(charged))
    # and each run's credits are the sum of its workflows
    per_run = side.groupby("run_id")["credits"].sum()
    runs = clp.spend(cache_dir=cache_dir)
    assert per_run.reindex(runs.index, fill_value=0.0).to_numpy() == pytest.approx(
        runs["credits"].to_numpy()
    )


def test_duplicates_invalid_and_cache_hits_are_saved_at_the_worst_case(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    sandbox.config.task_failure_rate = 0.0  # every look-up is cached: exact counts
    df = pd.concat(
        [leads(300, dup_every=3), pd.DataFrame({"First Name": ["no", "company"]})],
        ignore_index=True,
    )  # 100 distinct contacts, 200 duplicate rows, 2 invalid rows
    first = run(df, client, enrichment_type="full")
    after_first = sandbox_total(sandbox)
    second = run(df, client, enrichment_type="full")  # every contact from the cache
    assert sandbox_total(sandbox) == after_first

    runs = clp.spend()
    assert list(runs.index) == [1, 2] and runs.index.name == "run_id"
    one, two = runs.iloc[0], runs.iloc[1]
    assert (one["job_id"], one["kind"], one["enrichment_type"], one["ended"]) == (
        one["job_id"], "run", "full", "done"
    )
    assert one["job_id"].startswith("job_")
    assert (one["rows"], one["sent"], two["sent"]) == (302, 100, 0)
    # credits: what the run paid = its cl_credits = the sandbox's ledger
    assert one["credits"] == pytest.approx(paid(first)) == pytest.approx(after_first)
    assert one["paid"] == int((first["cl_credits"] > 0).sum()) > 0
    assert two["credits"] == 0 == paid(second) and two["paid"] == 0
    unit = MAX_UNIT_COST["full"]
    assert one["unit_cost"] == two["unit_cost"] == unit
    assert one["saved_duplicates"] == two["saved_duplicates"] == 200 * unit
    assert one["saved_invalid"] == two["saved_invalid"] == 2 * unit
    assert (one["saved_cache"], two["saved_cache"]) == (0, 100 * unit)
    assert one["saved_pilot"] == one["saved_excluded"] == 0
    assert two["saved"] == (200 + 2 + 100) * unit
    assert runs["time"].dt.tz is not None and (runs["seconds"] >= 0).all()
    assert_workflows_agree(sandbox, _cache_dir)


def test_interrupted_run_and_its_resume_add_up_to_the_sandbox_ledger(
    make_sandbox: Any, _cache_dir: Path
) -> None:
    sb = make_sandbox(time_scale=0.05)  # workflows take ~0.2 s
    client = client_for(sb)
    df = leads(1000)  # 4 chunks
    exc = interrupt_after_first_chunk(df, client)
    partial = exc.partial_result
    # the Ctrl-C'd run has its row, with what it paid
    rows = clp.spend()
    assert len(rows) == 1
    cut = rows.iloc[0]
    assert cut["ended"] == "interrupted" and cut["job_id"] == exc.job_id
    assert cut["credits"] == pytest.approx(paid(partial))
    assert 250 <= cut["sent"] <= 1000
    out = run(df, client, poll=PollPolicy(first=0.2, min_interval=0.05, max_interval=0.5))
    rows = clp.spend()
    assert len(rows) == 2
    resumed = rows.iloc[1]
    # a resumed job is a new run with the same job id
    assert resumed["job_id"] == exc.job_id and resumed["ended"] == "done"
    assert resumed["credits"] == pytest.approx(paid(out))
    # nothing was sent twice: the resume sent only what the interrupted run had not
    assert cut["sent"] + resumed["sent"] == 1000
    # what the sandbox charged, some of it after Ctrl-C, is paid by the run that read it
    assert rows["credits"].sum() == pytest.approx(sandbox_total(sb))
    assert_workflows_agree(sb, _cache_dir)
    by_job = clp.spend(by="job")
    assert list(by_job.index) == [exc.job_id]
    assert by_job.loc[exc.job_id, "runs"] == 2 and by_job.loc[exc.job_id, "sent"] == 1000
    assert by_job.loc[exc.job_id, "credits"] == pytest.approx(sandbox_total(sb))
    client.close()


def test_402_mid_run_records_what_was_paid_and_the_top_up_run(
    make_sandbox: Any, _cache_dir: Path
) -> None:
    sb = make_sandbox(credits=600.0)
    client = client_for(sb)
    df = leads(1500)  # 6 chunks of 250, worst case 250 each: the balance runs out
    with pytest.warns(CleanlistWarning) as rec:  # the balance, then the 402
        first = run(df, client)
    assert "InsufficientCreditsError" in " ".join(str(w.message) for w in rec)
    spent_first = 600.0 - sb.balance()
    sb.set_credits(10_000)
    second = run(df, client)  # after the top-up: the rest is sent
    assert not second["cl_status"].isin(["awaiting_credits", "not_submitted"]).any()
    runs = clp.spend()
    a, b = runs.iloc[0], runs.iloc[1]
    assert a["ended"] == "no_credits" and b["ended"] == "done"
    assert a["credits"] == pytest.approx(paid(first)) == pytest.approx(spent_first)
    assert b["credits"] == pytest.approx(paid(second))
    assert a["sent"] < 1500 and b["sent"] > 0
    # the second run resumes the first one's job: its cache hits are results the job paid
    # for (counted in the first run's credits), no saving; and the job's savings (the
    # duplicates, the invalid rows) were counted once, by the first run
    assert b["saved_cache"] == 0 and b["saved"] == 0
    assert a["job_id"] == b["job_id"]
    assert runs["credits"].sum() == pytest.approx(sandbox_total(sb))
    assert_workflows_agree(sb, _cache_dir)
    client.close()


def test_max_credits_and_a_refused_run_are_recorded(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    with pytest.warns(CleanlistWarning, match="not submitted"):
        capped = run(leads(600), client, max_credits=300)
    sandbox.set_credits(50)
    with pytest.raises(clp.InsufficientCreditsError):
        run(leads(100, start=5000), client, errors="raise")  # refused before sending
    runs = clp.spend()
    assert list(runs["ended"]) == ["max_credits", "no_credits"]
    assert runs.iloc[0]["credits"] == pytest.approx(paid(capped))
    assert runs.iloc[0]["credits"] <= 300
    assert runs.iloc[1][["sent", "paid", "credits"]].tolist() == [0, 0, 0]
    assert runs["credits"].sum() == pytest.approx(sandbox_total(sandbox))


def test_a_run_inside_the_callers_except_block_is_not_an_error(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    try:
        raise KeyError("the caller's own problem")
    except KeyError:
        run(leads(5), client)  # e.g. a fallback in the caller's error handling
    assert clp.spend()["ended"].tolist() == ["done"]


def test_wait_false_job_is_recorded_when_it_ends(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    job = leads(300).cleanlist.enrich(client=client, wait=False, poll=FAST, progress=False)
    out = job.result(timeout=60)
    runs = clp.spend()
    assert len(runs) == 1 and runs.iloc[0]["job_id"] == job.job_id
    assert runs.iloc[0]["credits"] == pytest.approx(paid(out)) == pytest.approx(
        sandbox_total(sandbox)
    )


def test_pilot_reuse_is_the_cache_hits_a_pilot_run_paid_for(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    from cleanlist_pandas.run.job import enrich
    from cleanlist_pandas.run.options import Options

    sandbox.config.task_failure_rate = 0.0  # every pilot look-up is cached
    sample, full = leads(50), leads(200)
    enrich(sample, Options(poll=FAST, progress=False, pilot=True), client=client)
    out = run(full, client)
    runs = clp.spend()
    assert list(runs["kind"]) == ["pilot", "run"]
    main = runs.iloc[1]
    assert (main["saved_pilot"], main["saved_cache"]) == (50.0, 0.0)  # 50 hits × 1 credit
    assert main["sent"] == 150
    assert main["credits"] == pytest.approx(paid(out))
    assert runs["credits"].sum() == pytest.approx(sandbox_total(sandbox))
    # a plain cache hit of a plain run is not pilot reuse, even with pilot hits beside it
    run(leads(10, start=500), client)
    run(leads(10, start=500), client)
    last = clp.spend().iloc[-1]
    assert (last["saved_cache"], last["saved_pilot"]) == (10.0, 0.0)


def test_rows_left_out_by_where_are_saved_at_their_worst_case(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    df = leads(20)
    keep = pd.Series([i % 4 != 0 for i in range(20)], index=df.index)  # 5 rows left out
    out = run(df, client, enrichment_type="phone_only", where=keep)
    row = clp.spend().iloc[0]
    assert row["saved_excluded"] == 5 * MAX_UNIT_COST["phone_only"]
    assert row["sent"] == 15 and (out["cl_status"] == "skipped").sum() == 5
    assert row["credits"] == pytest.approx(sandbox_total(sandbox))


def test_aggregates_filters_and_bad_arguments(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    run(leads(40, dup_every=2), client)
    run(leads(30, start=100), client, enrichment_type="full")
    runs = clp.spend()
    day = clp.spend(by="day")
    assert len(day) == 1 and day.index.name == "day"
    assert day["runs"].iloc[0] == 2
    for col in ("sent", "paid", "credits", "saved", "saved_duplicates"):
        assert day[col].iloc[0] == pytest.approx(runs[col].sum())
    by_type = clp.spend(by="type")
    assert sorted(by_type.index) == ["full", "partial"]
    assert by_type.loc["partial", "saved_duplicates"] == 20
    today = runs["time"].iloc[0].strftime("%Y-%m-%d")
    assert len(clp.spend(since=today)) == 2 and len(clp.spend(until=today)) == 2
    assert clp.spend(since="2999-01-01").empty
    assert clp.spend(until="2000-01-01").empty
    t0, t1 = runs["time"].iloc[0], runs["time"].iloc[1]
    between = (t0 + (t1 - t0) / 2).floor("us")
    assert list(clp.spend(since=between).index) == [2]  # a Timestamp
    assert list(clp.spend(until=between.to_pydatetime()).index) == [1]  # a datetime
    with pytest.raises(ValueError, match="by="):
        clp.spend(by="week")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="since="):
        clp.spend(since="last tuesday")
    with pytest.raises(TypeError, match="until"):
        clp.spend(until=12)  # type: ignore[arg-type]
    # the table fits 80 columns whatever it shows
    for by in ("run", "day", "job", "type"):
        text = spend_text(clp.spend(by=by), by)  # type: ignore[arg-type]
        assert max(len(line) for line in text.splitlines()) <= 80, text
        assert "total:" in text


def test_chart_is_styled_boxes_not_svg(sandbox: Sandbox, client: Any, _cache_dir: Path) -> None:
    sandbox.config.task_failure_rate = 0.0
    run(leads(40, dup_every=2), client)
    run(leads(40, dup_every=2), client)
    chart = clp.spend_chart(by="day")
    page = chart._repr_html_()
    assert "<svg" not in page and "<script" not in page
    assert page.count("display:inline-block") >= 3
    assert "background-color:#7570b3" in page  # duplicates
    assert "background-color:#66a61e" in page  # the cache
    spent = float(clp.spend()["credits"].sum())
    assert f"{spent:,.0f} credits spent" in page and f"{spent:,.0f} credits spent" in repr(chart)
    assert chart.data.equals(clp.spend(by="day"))
    job_chart = clp.spend_chart(by="job")
    assert clp.spend()["job_id"].iloc[0] in job_chart._repr_html_()
    # static HTML: a notebook holding the chart, exported by nbconvert, keeps the boxes
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert")
    cell = nbformat.v4.new_code_cell("clp.spend_chart()")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/html": page, "text/plain": repr(chart)}
        )
    ]
    exported, _ = nbconvert.HTMLExporter().from_notebook_node(
        nbformat.v4.new_notebook(cells=[cell])
    )
    assert "background-color:#7570b3" in exported and "credits spent" in exported
    with pytest.raises(ValueError, match="last"):
        clp.spend_chart(last=0)
    empty = clp.spend_chart(since="2999-01-01")
    assert "no runs" in empty._repr_html_() and "no runs" in repr(empty)


def test_the_ledger_holds_no_personal_data_and_survives_erasure(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    df = pd.DataFrame(
        {
            "First Name": ["Adaline"],
            "Last Name": ["Lovelacey"],
            "Company Website": ["https://analyticalengines.example.com"],
            "LinkedIn": ["linkedin.com/in/adaline-lovelacey"],
        }
    )
    out = run(df, client, enrichment_type="full")
    found = [v for v in out.iloc[0].tolist() if isinstance(v, str)]
    raw = b"".join(
        p.read_bytes() for p in _cache_dir.glob("spend.sqlite3*") if p.is_file()
    ).lower()
    for text in ("adaline", "lovelacey", "analyticalengines", *found):
        if text.startswith(("job_", "public_bulk_")) or len(text) < 5:
            continue  # the ids are the ledger's business
        if text in ("enriched", "not_found", "reliable", "risky", "unknown"):
            continue
        assert text.lower().encode() not in raw, text
    clp.forget(linkedin_url="linkedin.com/in/adaline-lovelacey")
    with ResultCacheOpen(_cache_dir) as n:
        assert n == 0
    assert len(clp.spend()) == 1  # erasure never touches the billing history


class ResultCacheOpen:
    """The number of cache entries, read with plain sqlite3."""

    def __init__(self, d: Path) -> None:
        wait_for_deferred()  # plain sqlite3, as another process would: after the finisher
        self.conn = sqlite3.connect(d / "results.sqlite3")

    def __enter__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def test_the_ledger_file_is_private(sandbox: Sandbox, client: Any, _cache_dir: Path) -> None:
    import os
    import stat

    run(leads(5), client)
    wait_for_deferred()  # the row is written by the finisher thread
    path = _cache_dir / "spend.sqlite3"
    assert path.exists()
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_ledger_that_cannot_be_written_never_loses_the_results(
    sandbox: Sandbox, client: Any, _cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanlist_pandas.store import ledger as spend_ledger

    def broken(self: Any, record: Any) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(spend_ledger.SpendLedger, "append", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CleanlistWarning)
        out = run(leads(20), client)
    assert out["cl_status"].isin(["enriched", "not_found", "failed"]).all()
    assert paid(out) == pytest.approx(sandbox_total(sandbox))
    assert np.isfinite(paid(out))
