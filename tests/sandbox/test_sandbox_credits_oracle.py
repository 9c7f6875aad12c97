"""Spec §5 (unit costs, failed look-ups free, balance falls as tasks complete), the ledger,
and the oracle's determinism (also across processes)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from sandbox_helpers import client, contacts, receiver, submit, wait_terminal

from cleanlist_pandas.sandbox import Sandbox, SandboxConfig, contact_fingerprint
from cleanlist_pandas.sandbox.oracle import decide

UNIT = {"none": (0, 0), "partial": (1, 0), "phone_only": (0, 10), "full": (1, 10)}


@pytest.mark.parametrize("etype", ["none", "partial", "phone_only", "full", "prospecting_only"])
def test_ledger_sum_equals_balance_drop(sandbox: Sandbox, etype: str) -> None:
    before = sandbox.balance()
    with client(sandbox) as c:
        out = submit(c, {"enrichment_type": etype, "contacts": contacts(60)})
        body = wait_terminal(c, out["workflow_id"])
    ledger = sandbox.ledger()
    drop = before - sandbox.balance()
    assert sum(row["credits"] for row in ledger) == pytest.approx(drop)
    assert sum(r["credits_charged"] for r in body["results"]) == pytest.approx(drop)
    for r in body["results"]:
        if r["status"] == "failed":
            expected = 0
        elif etype == "prospecting_only":
            expected = len(r["discovered_contacts"])
        else:
            e, p = UNIT[etype]
            expected = (e if r["primary_email"] else 0) + (p if r["personal_phone_numbers"] else 0)
        assert r["credits_charged"] == expected
    charged = {row["task_id"]: row for row in ledger}
    assert set(charged) == {r["task_id"] for r in body["results"] if r["credits_charged"] > 0}
    if etype != "none":
        assert drop > 0


def test_ledger_row_shape_and_fingerprint(sandbox: Sandbox) -> None:
    sent = {"first_name": "Ada", "last_name": "Lovelace", "company_domain": "acme.com"}
    with client(sandbox) as c:
        out = submit(c, {"enrichment_type": "full", "contacts": [sent] * 3})
        wait_terminal(c, out["workflow_id"])
    ledger = sandbox.ledger()
    canonical = json.dumps(sent, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    fp = hashlib.sha256(canonical.encode()).hexdigest()
    assert contact_fingerprint(sent) == fp
    for row in ledger:
        assert set(row) >= {
            "organization_id", "workflow_id", "task_id", "fingerprint", "credits", "at",
        }  # fmt: skip
        assert row["organization_id"] == sandbox.organization_id
        assert row["workflow_id"] == out["workflow_id"]
        assert row["task_id"] in out["task_ids"]
        assert row["fingerprint"] == fp
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["at"])


def test_balance_falls_without_polling(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, task_failure_rate=0.0))
    with receiver() as rx, client(sb) as c:
        submit(c, {"enrichment_type": "full", "contacts": contacts(20), "webhook_url": rx.url})
        rx.wait_for(1)  # the background clock ended the workflow: nobody polled
    assert sb.stats()["by_endpoint"].get("GET /enrich/status") is None
    with sb.state.lock:  # read the raw state: no lazy materialization involved
        assert sb.state.orgs[sb.organization_id].credits < 10_000


def test_balance_never_negative_tasks_fail_when_unpaid(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    cfg = SandboxConfig(time_scale=0.002, task_failure_rate=0.0, credit_rule="positive")
    sandbox = make_sandbox(config=cfg, credits=12)  # far less than the workflow will find
    with client(sandbox) as c:
        out = submit(c, {"enrichment_type": "full", "contacts": contacts(50)})
        body = wait_terminal(c, out["workflow_id"])
    assert sandbox.balance() >= 0
    unpaid = [r for r in body["results"] if r["status"] == "failed"]
    assert unpaid, "expected tasks that could not be paid"
    assert all(r["error"] == "Insufficient credits to deliver this result" for r in unpaid)
    assert all(r["credits_charged"] == 0 and r["primary_email"] is None for r in unpaid)
    assert sum(row["credits"] for row in sandbox.ledger()) == pytest.approx(12 - sandbox.balance())
    assert body["workflow"]["status"] == "completed_with_errors"


def test_credits_are_per_organization(sandbox: Sandbox) -> None:
    org, key = sandbox.add_organization(credits=500)
    with client(sandbox, key) as c:
        body = wait_terminal(c, submit(c, {"contacts": contacts(30)})["workflow_id"])
    spent = sum(r["credits_charged"] for r in body["results"])
    assert sandbox.balance(org) == 500 - spent
    assert sandbox.balance() == 10_000
    assert all(row["organization_id"] == org for row in sandbox.ledger())


def test_fractional_balance_and_floor(sandbox: Sandbox) -> None:
    sandbox.set_credits(0.5)
    with client(sandbox) as c:
        r = c.post("/enrich/bulk", json={"contacts": contacts(1)})
        assert r.status_code == 402
        assert c.get("/credits/balance").json()["credits"] == 0.5


# --- the oracle ------------------------------------------------------------------------

SAMPLE = [
    {"first_name": "Ada", "last_name": "Lovelace", "company_domain": "acme.com"},
    {"linkedin_url": "https://www.linkedin.com/in/john-doe-8a7b6c"},
    {"first_name": "José", "last_name": "Núñez", "company_name": "Café Olé, S.A."},
    {"linkedin_url": "https://www.linkedin.com/in/jdoe/", "company_domain": "https://www.x.io/"},
]

_SCRIPT = """
import json, sys, dataclasses
from cleanlist_pandas.sandbox.oracle import decide
sample = json.loads(sys.stdin.read())
print(json.dumps([dataclasses.asdict(decide(c, 1234)) for c in sample], sort_keys=True))
"""


def test_oracle_deterministic_across_processes() -> None:
    import dataclasses

    mine = json.dumps([dataclasses.asdict(decide(c, 1234)) for c in SAMPLE], sort_keys=True)
    for hashseed in ("1", "999"):
        proc = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            input=json.dumps(SAMPLE),
            capture_output=True,
            text=True,
            timeout=60,
            env={"PYTHONHASHSEED": hashseed, "PATH": "/usr/bin:/bin"},
            check=True,
        )
        assert proc.stdout.strip() == mine


def test_oracle_seed_changes_outcomes() -> None:
    many = contacts(200)
    a = [decide(c, 1) for c in many]
    b = [decide(c, 2) for c in many]
    assert a != b
    assert a == [decide(c, 1) for c in many]


def test_same_contact_same_result_over_http(sandbox: Sandbox) -> None:
    sandbox.config.task_failure_rate = 0.0
    with client(sandbox) as c:
        b1 = wait_terminal(c, submit(c, {"contacts": SAMPLE})["workflow_id"])
        b2 = wait_terminal(c, submit(c, {"contacts": SAMPLE})["workflow_id"])
    strip = [{k: v for k, v in r.items() if k != "task_id"} for r in b1["results"]]
    assert strip == [{k: v for k, v in r.items() if k != "task_id"} for r in b2["results"]]


def test_oracle_names_and_companies() -> None:
    o = decide({"linkedin_url": "https://www.linkedin.com/in/john-doe-8a7b6c"}, 0)
    assert (o.prospect["first_name"], o.prospect["last_name"]) == ("John", "Doe")
    assert o.prospect["linkedin_url"] == "https://www.linkedin.com/in/john-doe-8a7b6c"
    o = decide({"first_name": "A", "last_name": "B", "company_domain": "northwind-traders.com"}, 0)
    assert o.company == {
        **o.company,
        "name": "Northwind Traders",
        "domain": "northwind-traders.com",
    }
    o = decide({"first_name": "A", "last_name": "B", "company_name": "Globex Corp, Inc."}, 0)
    assert o.company["domain"] == "globex.com" and o.company["name"] == "Globex Corp, Inc."
    o = decide({"first_name": "A", "last_name": "B", "company_domain": "https://www.x.io/a"}, 0)
    assert o.company["domain"] == "x.io"


def test_oracle_rates_roughly_as_configured() -> None:
    many = contacts(2000)
    outs = [
        decide(c, 5, email_found_rate=0.7, phone_found_rate=0.5, failure_rate=0.02) for c in many
    ]
    ok = [o for o in outs if not o.failed]
    assert 0.005 < 1 - len(ok) / len(outs) < 0.05
    assert 0.6 < sum(1 for o in ok if o.primary_email) / len(ok) < 0.8
    assert 0.4 < sum(1 for o in ok if o.phones) / len(ok) < 0.6
    statuses = {o.primary_email_status for o in ok if o.primary_email}
    assert statuses == {"reliable", "risky", "unknown"}
    assert all(2 <= len(o.discovered) <= 5 for o in ok)
    assert all(re.match(r"^\+[1-9]\d{1,14}$", p) for o in ok for p in o.phones)


def test_background_ticker_is_the_only_clock_needed(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002))
    with client(sb) as c:
        submit(c, {"contacts": contacts(5)})
    deadline = time.monotonic() + 10
    while True:
        with sb.state.lock:
            if not sb.state._heap:
                break
        assert time.monotonic() < deadline
        time.sleep(0.01)
