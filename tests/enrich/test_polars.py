"""``pl_df.cleanlist``: Polars in, Polars out, through the same messy-CSV scenario as pandas.

Mapping, dedupe, a cache re-run for free, and resume after an interrupt, each checked
against the pandas accessor on the same CSV. Row position is the key (Polars has no
index): every row's ``cl_*`` values are compared with pandas' by a row id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import unicodedata
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pl = pytest.importorskip("polars")
pytest.importorskip("pyarrow")

import cleanlist_pandas as clp  # noqa: E402
from cleanlist_pandas.errors import CleanlistWarning, EnrichmentInterrupted  # noqa: E402
from cleanlist_pandas.polars import PolarsEnrichmentJob  # noqa: E402
from cleanlist_pandas.run.engine import PollPolicy  # noqa: E402
from cleanlist_pandas.sandbox import Sandbox  # noqa: E402

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)
SLOW_FIRST = PollPolicy(first=0.5, min_interval=0.05, max_interval=0.5)
RESUME = PollPolicy(first=0.2, min_interval=0.05, max_interval=0.5)
SAMPLE = Path(clp.__file__).parent / "data" / "sample_leads.csv"
COMPARED = ["cl_email", "cl_email_status", "cl_full_name", "cl_status", "cl_error"]


def client_for(sb: Sandbox) -> clp.Client:
    return clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * sb.config.time_scale)


def bulk_requests(sb: Sandbox) -> int:
    return sum(sb.stats()["by_endpoint"].get("POST /enrich/bulk", {}).values())


def assert_no_double_charge(sb: Sandbox) -> None:
    fps = Counter(r["fingerprint"] for r in sb.ledger())
    assert not [fp for fp, k in fps.items() if k > 1], "a contact was charged twice"


def write_messy_csv(path: Path, people: int = 800, seed: int = 3) -> int:
    """The sample CSV plus ``people`` generated leads, a quarter of them repeated (re-typed:
    spaces, URL forms), blanks and junk; shuffled; a unique ``row_id`` column. Returns the
    number of rows."""
    rng = np.random.default_rng(seed)
    sample = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    rows = [list(r) for r in sample.itertuples(index=False)]
    for k in range(people):
        site = [f"co{k % 53}.com", f"https://www.co{k % 53}.com/about", f"http://CO{k % 53}.com"]
        rows.append(
            [f"Ann{k}", f"Lee{k}", f"Company {k % 53}", site[k % 3], "", "", ""]
            if k % 11
            else [f"Ann{k}", "n/a" if k % 2 else "", "", "", "", "", "no last name"]
        )
    for k in rng.choice(people, people // 4, replace=False).tolist():
        rows.append([f"  Ann{k} ", f"Lee{k}", f"Company {k % 53}", f"co{k % 53}.com/", "", "", ""])
    order = rng.permutation(len(rows))
    header = [*sample.columns, "row_id"]
    lines = [",".join(header)]
    for i, j in enumerate(order.tolist()):
        lines.append(",".join([*(f'"{v}"' if v else "" for v in rows[j]), f"r{i}"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(rows)


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    p = tmp_path / "leads.csv"
    write_messy_csv(p)
    return p


def by_row_id(frame: Any) -> dict[str, tuple[Any, ...]]:
    """row_id -> the compared cl_* values (missing as None), for pandas or Polars output."""
    if isinstance(frame, pd.DataFrame):
        frame = pl.from_pandas(frame.reset_index(drop=True))
    return {r[0]: tuple(r[1:]) for r in frame.select(["row_id", *COMPARED]).iter_rows()}


def fold(name: str) -> str:
    """A name as the sandbox writes it into an e-mail address: trimmed, lower, ASCII."""
    decomposed = unicodedata.normalize("NFKD", name.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def interrupt_on_first_bulk(client: clp.Client, call: Any) -> EnrichmentInterrupted:
    """Run ``call()`` and press Ctrl-C (SIGINT) as soon as the first chunk is accepted."""
    fired = []

    def listen(ev: Any) -> None:
        if (
            type(ev).__name__ == "ResponseReceived"
            and ev.method == "POST"
            and ev.path.endswith("/enrich/bulk")
            and not fired
        ):
            fired.append(ev)
            os.kill(os.getpid(), signal.SIGINT)

    client.add_listener(listen)
    try:
        with pytest.raises(EnrichmentInterrupted) as ei:
            call()
            time.sleep(5)  # the signal is delivered to the main thread; never reached
    finally:
        client.remove_listener(listen)
    return ei.value


# -- the messy-CSV scenario ----------------------------------------------------------------
def test_polars_messy_csv_scenario(make_sandbox: Any, csv: Path) -> None:
    sb = make_sandbox(time_scale=0.05)  # workflows take ~0.2 s: Ctrl-C lands mid-run
    sb.config.task_failure_rate = 0.0  # failed look-ups are retried by a re-run
    client = client_for(sb)
    pl_df = pl.read_csv(csv)
    pd_df = pd.read_csv(csv)
    snapshot = pl_df.clone()
    n = pl_df.height

    # mapping: the same as pandas on the same CSV
    m_pl, m_pd = pl_df.cleanlist.mapping(), pd_df.cleanlist.mapping()
    assert m_pl.mapping == m_pd.mapping
    assert m_pl.mapping["first_name"] == "First Name" and "linkedin_url" in m_pl.mapping
    assert m_pl.describe() == m_pd.describe()
    assert (m_pl.valid == m_pd.valid).all()

    # estimate: duplicates are found, nothing is sent
    est = pl_df.cleanlist.estimate(client=client)
    assert est.counts == pd_df.cleanlist.estimate(client=client).counts
    assert est.counts["duplicates"] >= 150 and est.counts["invalid"] >= 70
    unique = est.counts["to_send"]
    chunks = est.counts["chunks"]
    assert chunks >= 3 and bulk_requests(sb) == 0

    # interrupted after the first chunk: a Polars partial result, in the input's order
    exc = interrupt_on_first_bulk(
        client,
        lambda: pl_df.cleanlist.enrich(client=client, progress=False, poll=SLOW_FIRST),
    )
    partial = exc.partial_result
    assert isinstance(partial, pl.DataFrame) and partial.height == n
    assert partial.select(pl_df.columns).equals(pl_df)
    st = Counter(partial["cl_status"].to_list())
    assert st["pending"] >= 1 and st["skipped"] >= 70
    assert set(st) <= {"pending", "not_submitted", "skipped", "enriched", "not_found"}
    assert 1 <= bulk_requests(sb) <= chunks

    # resume: the same rows in another order is the same job; nothing is submitted twice,
    # and every row gets its own contact's result, in the order of the frame passed
    shuffled = pl_df.sample(fraction=1.0, shuffle=True, seed=7)
    out = shuffled.cleanlist.enrich(client=client, progress=False, poll=RESUME)
    assert isinstance(out, pl.DataFrame)
    assert out.select(shuffled.columns).equals(shuffled)
    assert out["row_id"].to_list() == shuffled["row_id"].to_list()
    assert bulk_requests(sb) == chunks, "a journaled chunk was submitted again"
    assert_no_double_charge(sb)
    assert len(sb.ledger()) <= unique
    statuses = set(out["cl_status"].to_list())
    assert statuses <= {"enriched", "not_found", "skipped"} and "enriched" in statuses
    for first, last, email in (
        out.filter(pl.col("cl_status") == "enriched")
        .select("First Name", "Last Name", "cl_email")
        .iter_rows()
    ):
        assert fold(first) in email or fold(last) in email, (first, email)
    paid = out["cl_credits"].fill_null(0).sum()
    assert paid == pytest.approx(sum(r["credits"] for r in sb.ledger()))

    # dedupe: every duplicate row carries its contact's result
    dup = out.group_by(pl.col("First Name").str.strip_chars(), "Last Name").agg(
        pl.len().alias("k"), pl.col("cl_email").n_unique().alias("emails")
    )
    assert dup.filter(pl.col("k") > 1).height >= 150
    assert (dup["emails"] == 1).all()

    # a cache re-run: free, no bulk request, the same values row by row
    bulks, spent = bulk_requests(sb), len(sb.ledger())
    again = pl_df.cleanlist.enrich(client=client, progress=False, poll=FAST)
    assert bulk_requests(sb) == bulks and len(sb.ledger()) == spent
    assert again["cl_credits"].fill_null(0).sum() == 0
    assert again["row_id"].to_list() == pl_df["row_id"].to_list()
    assert by_row_id(again) == by_row_id(out)

    # the pandas accessor on the same CSV agrees row by row (from the cache)
    pd_out = pd_df.cleanlist.enrich(client=client, progress=False, poll=FAST)
    assert by_row_id(pd_out) == by_row_id(again)
    assert list(again.columns) == list(pd_out.columns)
    assert pl_df.equals(snapshot), "the caller's frame was modified"
    client.close()


def test_output_dtypes_and_input_columns_untouched(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    df = pl.DataFrame(
        {
            "id": pl.Series([3, 1, 2, 4], dtype=pl.UInt16),
            "First Name": pl.Series(["Ada", "Bob", None, "Cy"], dtype=pl.Categorical),
            "Last Name": ["Lovelace", "Smith", "X", "Doe"],
            "Company": pl.Series(["A", "B", "C", "D"], dtype=pl.Enum(["A", "B", "C", "D"])),
            "when": pl.Series([1, 2, 3, 4]).cast(pl.Datetime("ms")),
            "tags": [["a"], [], None, ["b", "c"]],
        }
    )
    out = df.cleanlist.enrich("full", client=client, progress=False, poll=FAST)
    assert out.select(df.columns).equals(df)
    assert out.select(df.columns).schema == df.schema  # nothing converted twice
    assert out["cl_status"].to_list()[2] == "skipped"
    assert out["cl_status"].dtype == pl.String and out["cl_credits"].dtype.is_numeric()
    assert out["cl_company_headcount"].dtype.is_integer()
    client.close()


def test_empty_and_linkedin_only(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    empty = pl.DataFrame({"LinkedIn": pl.Series([], dtype=pl.String)})
    out = empty.cleanlist.enrich(client=client, progress=False, poll=FAST)
    assert isinstance(out, pl.DataFrame) and out.height == 0 and "cl_status" in out.columns
    one = pl.DataFrame({"LinkedIn": ["https://www.linkedin.com/in/Ada-L/?x=1"]})
    got = one.cleanlist.enrich(client=client, progress=False, poll=FAST)
    assert got["cl_status"][0] in {"enriched", "not_found", "failed"}
    client.close()


def test_mapping_errors_and_collisions_as_for_pandas(sandbox: Sandbox) -> None:
    df = pl.DataFrame(
        {
            "Website": ["a.com"],
            "Domain": ["b.com"],
            "First Name": ["A"],
            "Last Name": ["B"],
            "Notes": ["x"],
        }
    )
    with pytest.raises(clp.MappingError, match="ambiguous") as ei:
        df.cleanlist.mapping()
    assert "Website" in str(ei.value) and "Domain" in str(ei.value)
    with pytest.raises(clp.MappingError, match="Notes"):  # lists every column
        pl.DataFrame({"Notes": ["x"]}).cleanlist.estimate()
    assert (
        df.cleanlist.mapping(columns={"company_domain": "Domain"}).mapping["company_domain"]
        == "Domain"
    )
    # an output column that exists already: refused, as on the pandas side
    client = client_for(sandbox)
    done = pl.DataFrame({"LinkedIn": ["linkedin.com/in/x"], "cl_status": ["enriched"]})
    with pytest.raises(ValueError, match="already exist"):
        done.cleanlist.enrich(client=client, progress=False, poll=FAST)
    out = done.cleanlist.enrich(client=client, progress=False, poll=FAST, prefix="cl2_")
    assert out["cl_status"].to_list() == ["enriched"] and "cl2_status" in out.columns
    client.close()


def test_wait_false_job_returns_polars(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    df = pl.DataFrame(
        {
            "First Name": [f"A{i}" for i in range(300)],
            "Last Name": [f"B{i}" for i in range(300)],
            "Company Website": [f"c{i % 7}.com" for i in range(300)],
        }
    )
    job = df.cleanlist.enrich(client=client, wait=False, progress=False, poll=FAST)
    assert isinstance(job, PolarsEnrichmentJob) and job.job_id in repr(job)
    out = job.result(timeout=60)
    assert isinstance(out, pl.DataFrame) and out is job.result()
    assert job.done() and job.progress["done"] == 300
    assert out.select(df.columns).equals(df)
    client.close()


def test_errors_raise_partial_result_is_polars(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    sandbox.inject_fault("bulk", "slow", delay_s=0.0, times=1)
    sandbox.inject_fault("bulk", "status", status=402, times=1)
    df = pl.DataFrame(
        {
            "First Name": [f"A{i}" for i in range(600)],
            "Last Name": [f"B{i}" for i in range(600)],
            "Company": [f"C{i % 9}" for i in range(600)],
        }
    )
    with pytest.raises(clp.InsufficientCreditsError) as ei:
        df.cleanlist.enrich(client=client, progress=False, poll=FAST, errors="raise")
    partial = ei.value.partial_result  # type: ignore[attr-defined]
    assert isinstance(partial, pl.DataFrame) and partial.height == 600
    assert (partial["cl_status"] == "awaiting_credits").sum() >= 250  # a 402: not paid for
    client.close()


def test_resume_by_job_id_aenrich_and_prospects(make_sandbox: Any) -> None:
    sb = make_sandbox(time_scale=0.05)
    client = client_for(sb)
    df = pl.DataFrame(
        {
            "First Name": [f"A{i}" for i in range(600)],
            "Last Name": [f"B{i}" for i in range(600)],
            "Company": [f"C{i % 9}" for i in range(600)],
        }
    )
    exc = interrupt_on_first_bulk(
        client, lambda: df.cleanlist.enrich(client=client, progress=False, poll=SLOW_FIRST)
    )
    with pytest.raises(ValueError, match="other rows"):
        df.head(599).cleanlist.resume(exc.job_id, client=client)
    out = df.cleanlist.resume(exc.job_id, client=client, progress=False, poll=RESUME)
    assert isinstance(out, pl.DataFrame)
    assert out["First Name"].to_list() == df["First Name"].to_list()
    assert set(out["cl_status"].to_list()) <= {"enriched", "not_found", "failed"}
    assert bulk_requests(sb) == 3
    assert_no_double_charge(sb)

    async def main() -> Any:
        async with clp.AsyncClient(api_key=sb.api_key, base_url=sb.base_url, per=3.0) as ac:
            return await df.head(10).cleanlist.aenrich(client=ac, progress=False, poll=FAST)

    got = asyncio.run(main())
    assert isinstance(got, pl.DataFrame) and got.height == 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CleanlistWarning)
        long = df.head(5).cleanlist.prospects(client=client, progress=False, poll=FAST)
    assert isinstance(long, pl.DataFrame) and long.height > 5
    assert long["input_position"].is_between(0, 4).all()
    client.close()


def test_pyarrow_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    with pytest.raises(ImportError, match=r"cleanlist-pandas\[polars\]"):
        pl.DataFrame({"LinkedIn": ["x"]}).cleanlist.mapping()


def test_without_polars_the_pandas_accessor_still_registers() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['polars'] = None\n"  # as if Polars were not installed
        "import pandas as pd, cleanlist_pandas\n"
        "assert hasattr(pd.DataFrame(), 'cleanlist')\n"
        "assert 'cleanlist_pandas.polars' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "Warning" not in proc.stderr, proc.stderr


def test_every_public_accessor_method_exists_on_polars_frames_too() -> None:
    """Parity: a method added to ``df.cleanlist`` (e.g. ``pilot``) needs its Polars twin."""
    from cleanlist_pandas.accessor import CleanlistAccessor
    from cleanlist_pandas.polars import CleanlistPolarsNamespace

    public = {n for n in dir(CleanlistAccessor) if not n.startswith("_")}
    missing = public - set(dir(CleanlistPolarsNamespace))
    assert not missing, f"pl_df.cleanlist lacks {sorted(missing)}: add them to polars.py"
