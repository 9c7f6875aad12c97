"""Personal data has a lifecycle (issue 12, part 4): ``clp.forget`` erases one person from
the cache and the journal, retention purges what is older than ``max_age``, and the command
line does both. Every scenario runs on the sandbox, and what is paid again afterwards is
checked against its ledger."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from enrich_helpers import SCOPE
from test_enrich_run import bulk_requests, client_for, interrupt_after_first_chunk, leads

import cleanlist_pandas as clp
from cleanlist_pandas import cli
from cleanlist_pandas.frame.mapping import map_contacts
from cleanlist_pandas.frame.plan import plan
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.store.files import wait_for_deferred
from cleanlist_pandas.store.journal import SUBMITTED, Journal

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def run(df: pd.DataFrame, client: Any, **kw: Any) -> Any:
    kw.setdefault("poll", FAST)
    kw.setdefault("progress", False)
    return df.cleanlist.enrich(client=client, **kw)


def fingerprints(df: pd.DataFrame) -> list[str]:
    return [str(f) for f in plan(map_contacts(df), "partial").fingerprints]


def cache_rows(d: Path) -> list[tuple[str, str, str]]:
    wait_for_deferred()  # read with plain sqlite3, as another process would: after the finisher
    with sqlite3.connect(d / "results.sqlite3") as conn:
        return conn.execute("SELECT fingerprint, enrichment_type, result FROM results").fetchall()


def file_bytes(d: Path, name: str) -> bytes:
    """The database and its side files, as bytes (deleted records included)."""
    wait_for_deferred()
    return b"".join(p.read_bytes() for p in d.glob(name + "*") if p.is_file())


def sandbox_total(sb: Sandbox) -> float:
    return float(sum(r["credits"] for r in sb.ledger()))


# -- forget ---------------------------------------------------------------------------------
def test_forget_by_email_erases_every_type_and_the_next_run_pays_only_for_that_person(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    sandbox.config.task_failure_rate = 0.0
    df = leads(40)
    first = run(df, client, enrichment_type="full")
    run(df, client)  # partial: a second cache entry for everyone
    found = first["cl_email"].dropna()
    pos = int(df.index.get_loc(found.index[0]))
    email = str(found.iloc[0])
    person_fp = fingerprints(df)[pos]
    assert len(cache_rows(_cache_dir)) == 80

    gone = clp.forget(email=email.upper())  # matched case-insensitively
    # one entry per type in the cache, and its place in each (finished) job's journal
    assert gone.cache_entries == 2 and gone.journal_references == 2
    assert person_fp in gone.fingerprints
    assert person_fp.encode() not in file_bytes(_cache_dir, "journal.sqlite3")
    left = cache_rows(_cache_dir)
    assert len(left) == 78 and person_fp not in {fp for fp, _t, _r in left}
    # erased, not only unlinked: the address is in no byte of the cache's files
    assert email.lower().encode() not in file_bytes(_cache_dir, "results.sqlite3").lower()
    assert "@" not in repr(gone)  # it says what it removed without personal data

    before, bulks = sandbox_total(sandbox), bulk_requests(sandbox)
    again = run(df, client, enrichment_type="full")
    assert bulk_requests(sandbox) == bulks + 1  # one request, for that one contact
    last = clp.spend().iloc[-1]
    assert last["sent"] == 1 and last["saved_cache"] == 39 * 11
    assert last["credits"] == pytest.approx(sandbox_total(sandbox) - before)
    assert last["credits"] == pytest.approx(float(again["cl_credits"].fillna(0).sum()))
    # the sandbox hashes contacts its own way: find the person's by their task
    ledger = [r for r in sandbox.ledger() if r["enrichment_type"] == "full"]
    theirs = {r["task_id"]: r["fingerprint"] for r in ledger}[first["cl_task_id"].iloc[pos]]
    charged = Counter(r["fingerprint"] for r in ledger)
    assert charged[theirs] == 2 and max(charged.values()) == 2  # only that person twice


def test_forget_by_contact_fields_uses_the_run_fingerprint(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    sandbox.config.task_failure_rate = 0.0
    df = pd.DataFrame(
        {
            "Vorname": ["Ann3", "Bob"],
            "Nachname": ["Lee3", "Ray"],
            "E-Mail": ["ann3@co3.com", "bob@rays.io"],  # the run's domain comes from it
        }
    )
    cols = {"first_name": "Vorname", "last_name": "Nachname", "email": "E-Mail"}
    run(df, client, columns=cols)
    fps = [str(f) for f in plan(map_contacts(df, cols), "partial").fingerprints]
    # the same person, spelled another way: the fingerprint is the run's
    gone = clp.forget(first_name="  ANN3 ", last_name="lee3", email="Ann3@CO3.com")
    assert fps[0] in gone.fingerprints and fps[1] not in gone.fingerprints
    assert gone.cache_entries == 1
    assert [fp for fp, _t, _r in cache_rows(_cache_dir)] == [fps[1]]
    # a domain given directly, with a website's spelling, finds the same contact
    run(df, client, columns=cols)
    gone = clp.forget(first_name="Ann3", last_name="Lee3", company_domain="https://www.co3.com/x")
    assert gone.cache_entries == 1


def test_forget_by_linkedin_url_matches_the_found_profile_too(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    sandbox.config.task_failure_rate = 0.0
    df = pd.DataFrame({"LinkedIn": ["https://de.linkedin.com/in/Grace-Hopper/?x=1"], "N": [1]})
    run(df, client)
    assert len(cache_rows(_cache_dir)) == 1
    gone = clp.forget(linkedin_url="linkedin.com/in/grace-hopper")
    assert gone.cache_entries == 1 and gone.fingerprints == tuple(fingerprints(df))
    # a profile that only a result names (the input had names) is found by content
    sandbox.config.email_found_rate = 1.0
    named = leads(3)
    out = run(named, client)
    profile = out["cl_linkedin_url"].dropna().iloc[0]
    gone = clp.forget(linkedin_url=profile)
    assert gone.cache_entries == 1 and len(cache_rows(_cache_dir)) == 2


def test_forget_keeps_an_interrupted_job_resumable_for_everyone_else(
    make_sandbox: Any, _cache_dir: Path
) -> None:
    sb = make_sandbox(time_scale=0.05)
    sb.config.task_failure_rate = 0.0
    client = client_for(sb)
    df = leads(1000)
    exc = interrupt_after_first_chunk(df, client)
    journal = Journal(_cache_dir / "journal.sqlite3")
    chunk = next(c for c in journal.chunks(exc.job_id) if c.state == SUBMITTED)
    i = 3
    victim_fp, victim_task = chunk.fingerprints[i], chunk.task_ids[i]
    pos = fingerprints(df).index(victim_fp)
    row = df.iloc[pos]
    gone = clp.forget(
        first_name=row["First Name"],
        last_name=row["Last Name"],
        company_domain=row["Company Website"],
    )
    assert gone.journal_references == 1 and victim_fp in gone.fingerprints
    after = next(c for c in journal.chunks(exc.job_id) if c.number == chunk.number)
    assert victim_fp not in after.fingerprints and victim_task not in after.task_ids
    assert len(after.fingerprints) == len(after.task_ids) == len(chunk.fingerprints) - 1
    # every other contact keeps its own task id
    assert dict(zip(after.fingerprints, after.task_ids, strict=True)) == {
        fp: t for fp, t in zip(chunk.fingerprints, chunk.task_ids, strict=True) if fp != victim_fp
    }
    raw = file_bytes(_cache_dir, "journal.sqlite3")
    assert victim_fp.encode() not in raw and victim_task.encode() not in raw
    journal.close()

    out = run(df, client, poll=PollPolicy(first=0.2, min_interval=0.05, max_interval=0.5))
    assert out["cl_status"].isin(["enriched", "not_found"]).all()  # every result its own
    runs = clp.spend()
    assert runs["sent"].sum() == 1001  # everyone once, the forgotten person twice
    charged = Counter(r["fingerprint"] for r in sb.ledger())
    assert max(charged.values(), default=1) <= 2
    # the forgotten task's result was not collected: its charge (if any) is in no run
    orphan = sum(r["credits"] for r in sb.ledger() if r["task_id"] == victim_task)
    assert runs["credits"].sum() == pytest.approx(sandbox_total(sb) - orphan)
    assert float(out["cl_credits"].fillna(0).sum()) == pytest.approx(runs["credits"].iloc[-1])
    client.close()


def _crm_frame(n: int) -> pd.DataFrame:
    """A CRM export with every field: a run fingerprints each contact over all of them."""
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in range(n)],
            "Last Name": [f"Lee{k}" for k in range(n)],
            "Company": [f"Company {k % 7}" for k in range(n)],
            "Company Website": [f"https://www.co{k % 7}.com/about" for k in range(n)],
            "LinkedIn": [f"linkedin.com/in/ann-lee-{k}" for k in range(n)],
        }
    )


@pytest.mark.parametrize(
    "given",
    [
        {"first_name": "ann3", "last_name": "LEE3", "company_domain": "co3.com"},
        {"first_name": "Ann3", "last_name": "Lee3", "company_domain": "https://co3.com/x"},
        {"first_name": "Ann3", "last_name": "Lee3", "company_name": "company 3"},
        {"linkedin_url": "https://www.linkedin.com/in/ann-lee-3/"},
        {"first_name": "Ann3", "last_name": "Lee3", "email": "someone@co3.com"},
    ],
    ids=["name+domain", "name+website", "name+company", "linkedin", "name+email-domain"],
)
def test_forget_finds_a_person_by_what_they_know_whatever_else_the_run_had(
    sandbox: Sandbox, client: Any, _cache_dir: Path, given: dict[str, str]
) -> None:
    """A run sent every contact with five fields; the person gives two or three. Before
    the identity index, only the exact five-field tuple found her (issue 19, finding 3)."""
    sandbox.config.task_failure_rate = 0.0
    df = _crm_frame(10)
    run(df, client, enrichment_type="full")
    person_fp = fingerprints(df)[3]
    gone = clp.forget(**given)
    assert gone.found and gone.cache_entries == 1 and gone.journal_references == 1
    assert gone.fingerprints == (person_fp,)
    assert person_fp not in {fp for fp, _t, _r in cache_rows(_cache_dir)}
    assert len(cache_rows(_cache_dir)) == 9
    assert person_fp.encode() not in file_bytes(_cache_dir, "journal.sqlite3")
    # her identities are gone with her: the index finds nobody now
    again = clp.forget(**given)
    assert not again.found and "nothing found for the" in str(again)


def test_forget_finds_a_contact_that_is_only_in_the_journal(
    make_sandbox: Any, _cache_dir: Path
) -> None:
    """A contact sent but never collected (the run was interrupted) is in the journal only:
    forget() by name and company still finds it (indexed when the run ends)."""
    sb = make_sandbox(time_scale=0.05)  # workflows take ~0.2 s: none is collected
    client = client_for(sb)
    df = _crm_frame(300)  # two chunks
    interrupt_after_first_chunk(df, client)
    client.close()
    assert not cache_rows(_cache_dir)
    person_fp = fingerprints(df)[299]  # in the second chunk
    journal = Journal(_cache_dir / "journal.sqlite3")
    try:
        in_journal = {fp for job in journal.jobs() for c in journal.chunks(job.job_id)
                      for fp in c.fingerprints}
    finally:
        journal.close()
    if person_fp not in in_journal:
        pytest.skip("the interrupt came before the second chunk was sent")
    gone = clp.forget(first_name="Ann299", last_name="Lee299", company_name="Company 5")
    assert gone.journal_references == 1 and gone.fingerprints == (person_fp,)


def test_forget_refuses_a_name_alone_and_says_when_nothing_matched(_cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="a name alone matches too many people"):
        clp.forget(first_name="Ada", last_name="Lovelace")
    res = clp.forget(first_name="Ada", last_name="Lovelace", company_domain="acme.io")
    assert not res.found and res.removed == 0
    assert str(res) == (
        "nothing found for the first_name, last_name and company_domain given: no cached "
        "result or journal entry matches"
    )
    assert "Ada" not in repr(res) and "acme" not in repr(res)  # no personal data


def test_cli_forget_exits_non_zero_when_nothing_matches(
    tmp_path: Path, _cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["forget", "--first-name", "Ada", "--last-name", "Lovelace",
                     "--company-domain", "acme.io"])
    err = capsys.readouterr().err
    assert code == 1
    err = " ".join(err.split())
    assert "nothing found for the --first-name, --last-name and --company-domain given" in err
    assert "Ada" not in err and "acme" not in err


def test_forget_checks_its_arguments(_cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="needs what the person knows of themselves"):
        clp.forget()
    with pytest.raises(TypeError, match="email must be a str"):
        clp.forget(email=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="first_name is blank"):
        clp.forget(first_name="  ", last_name="x")
    with pytest.raises(ValueError, match=r"linkedin_url=.*not a LinkedIn profile"):
        clp.forget(linkedin_url="https://www.linkedin.com/company/acme")
    with pytest.raises(ValueError, match=r"email=.*not an e-mail address"):
        clp.forget(email="nobody")
    assert clp.forget(email="nobody@nowhere.example").removed == 0


# -- retention ------------------------------------------------------------------------------
def _age_everything(d: Path, days: float) -> None:
    """Make every cache entry and journal job ``days`` old."""
    old = datetime.now(UTC) - timedelta(days=days)
    wait_for_deferred()
    with sqlite3.connect(d / "results.sqlite3") as conn:
        conn.execute("UPDATE results SET stored_at = ?", (old.timestamp(),))
    with sqlite3.connect(d / "journal.sqlite3") as conn:
        conn.execute("UPDATE jobs SET updated_at = ?", (old.isoformat(timespec="seconds"),))


def _open_in_a_new_process(d: Path, max_age_days: float | None = None) -> None:
    configure = f"clp.configure(max_age=timedelta(days={max_age_days}))" if max_age_days else ""
    code = textwrap.dedent(
        f"""
        from datetime import timedelta
        import cleanlist_pandas as clp
        from cleanlist_pandas.store.cache import ResultCache
        from cleanlist_pandas.store.journal import Journal
        {configure}
        ResultCache({str(d)!r}).close()
        Journal({str(d / "journal.sqlite3")!r}).close()
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_retention_purges_at_start_up_and_a_purged_contact_is_paid_again(
    sandbox: Sandbox, client: Any, _cache_dir: Path
) -> None:
    sandbox.config.task_failure_rate = 0.0
    run(leads(20), client)  # finished job: journal job + 20 cache entries
    interrupted_like = Journal(_cache_dir / "journal.sqlite3")
    open_job = interrupted_like.open_job("still-open", "partial", rows=1, scope=SCOPE)
    interrupted_like.record_sending(open_job.job_id, 0, ["fp-open"])
    interrupted_like.close()
    _age_everything(_cache_dir, days=20)
    _open_in_a_new_process(_cache_dir)  # 20 days < 30: nothing goes
    assert len(cache_rows(_cache_dir)) == 20
    _open_in_a_new_process(_cache_dir, max_age_days=7)  # the configured retention
    assert cache_rows(_cache_dir) == []
    j = Journal(_cache_dir / "journal.sqlite3")
    assert [job.job_id for job in j.jobs()] == [open_job.job_id]  # open jobs are kept
    j.close()
    before = sandbox_total(sandbox)
    out = run(leads(20), client)
    last = clp.spend().iloc[-1]
    assert (last["sent"], last["saved_cache"]) == (20, 0)
    assert last["credits"] == pytest.approx(sandbox_total(sandbox) - before)
    assert last["credits"] == pytest.approx(float(out["cl_credits"].fillna(0).sum()))
    assert len(clp.spend()) == 2  # retention never purges the spend ledger


def test_retention_runs_once_per_process_and_file(tmp_path: Path) -> None:
    from cleanlist_pandas.store.cache import ResultCache

    old = (datetime.now(UTC) - timedelta(days=60)).timestamp()
    # the first open in this process: purged (nothing)
    with ResultCache(tmp_path, scope=SCOPE) as c:
        c.put_many([("fp", {"status": "completed"}, None, None)], "partial")
    with sqlite3.connect(tmp_path / "results.sqlite3") as conn:
        conn.execute("UPDATE results SET stored_at = ?", (old,))
    with ResultCache(tmp_path, scope=SCOPE) as c:  # not again in this process: ignored, still there
        assert c.stats()["expired"] == 1 and c.get_many(["fp"], "partial") == {}
    _open_in_a_new_process(tmp_path)
    assert cache_rows(tmp_path) == []


def test_cli_purge_expired_also_purges_finished_journal_jobs(
    sandbox: Sandbox, client: Any, _cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(leads(10), client)
    cached = len(cache_rows(_cache_dir))  # failed look-ups are not cached
    assert cached > 0
    _age_everything(_cache_dir, days=45)
    assert cli.main(["cache", "purge-expired"]) == 0
    out = capsys.readouterr().out
    assert " ".join(out.split()) == (
        f"removed {cached} expired results and 1 finished job from the journal (older "
        "than 30 days)"
    )
    assert cache_rows(_cache_dir) == []
    j = Journal(_cache_dir / "journal.sqlite3")
    assert j.jobs() == []
    j.close()


def test_configure_max_age_is_checked(tmp_path: Path) -> None:
    with pytest.raises(clp.ConfigurationError, match="max_age must be > 0"):
        clp.configure(max_age=0)
    with pytest.raises(clp.ConfigurationError, match="max_age must be seconds"):
        clp.configure(max_age="30 days")
    clp.configure(max_age=timedelta(days=1))
    try:
        from cleanlist_pandas.config import retention_seconds
        from cleanlist_pandas.store.cache import ResultCache

        assert retention_seconds() == 86400
        assert clp.get_config().max_age == timedelta(days=1)
        assert ResultCache(tmp_path, scope=SCOPE).max_age == 86400  # the default of every cache
    finally:
        clp.reset_config()


# -- the command line -----------------------------------------------------------------------
def test_cli_forget(
    sandbox: Sandbox, client: Any, _cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.config.task_failure_rate = 0.0
    sandbox.config.email_found_rate = 1.0
    out = run(leads(5), client)
    email = str(out["cl_email"].iloc[0])
    assert cli.main(["forget", "--email", email]) == 0
    text = capsys.readouterr().out
    assert "removed 1 cached result and 1 journal entry" in " ".join(text.split())
    assert email not in text and max(len(line) for line in text.splitlines()) <= 80
    assert len(cache_rows(_cache_dir)) == 4
    assert cli.main(["forget"]) == 2
    assert "--email" in capsys.readouterr().err
    assert cli.main(["forget", "--linkedin-url", "linkedin.com/company/x"]) == 2
    assert "--linkedin-url 'linkedin.com/company/x' is not" in capsys.readouterr().err


def test_cli_spend(
    sandbox: Sandbox,
    client: Any,
    _cache_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run(leads(30, dup_every=3), client, enrichment_type="prospecting_only")
    run(leads(30, dup_every=3), client, enrichment_type="prospecting_only")
    runs = clp.spend()
    for args in ([], ["--by", "day"], ["--by", "job"], ["--by", "type"]):
        assert cli.main(["spend", *args]) == 0
        text = capsys.readouterr().out
        assert max(len(line) for line in text.splitlines()) <= 80, text
        assert f"total: {runs['credits'].sum():,.0f} credits spent" in text
    assert cli.main(["spend"]) == 0
    text = capsys.readouterr().out
    assert runs["job_id"].iloc[0] in text and "prospecting_only" in text
    assert "duplicates 200" in text  # 20 duplicate rows x 5 credits, in each run
    csv = tmp_path / "spend.csv"
    assert cli.main(["spend", "--by", "day", "--csv", str(csv)]) == 0
    assert "wrote 1 rows" in capsys.readouterr().out
    back = pd.read_csv(csv)
    assert {"day", "credits", "saved_cache", "saved_pilot"} <= set(back.columns)
    assert back["credits"].sum() == pytest.approx(sandbox_total(sandbox))
    assert cli.main(["spend", "--since", "2999-01-01"]) == 0
    assert "no runs recorded" in capsys.readouterr().out
    assert cli.main(["spend", "--since", "yesterday"]) == 2
    assert "--since 'yesterday' is not a date" in capsys.readouterr().err
