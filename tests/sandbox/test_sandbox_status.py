"""Spec §3.4 (status, both modes), §3.5 (deliveries basics), §6 (result object)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sandbox_helpers import TERMINAL, client, contacts, receiver, submit, wait_terminal

from cleanlist_pandas.sandbox import Sandbox, SandboxConfig

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.mark.parametrize("params", [{}, {"workflow_id": "a", "task_id": "b"}])
def test_status_400_for_both_or_neither(sandbox: Sandbox, params: dict[str, str]) -> None:
    with client(sandbox) as c:
        r = c.get("/enrich/status", params=params)
    assert r.status_code == 400
    assert isinstance(r.json()["detail"], str)


def test_status_404s(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        r1 = c.get("/enrich/status", params={"workflow_id": "public_bulk_nope"})
        r2 = c.get("/enrich/status", params={"task_id": "nope"})
    assert (r1.status_code, r1.json()) == (404, {"detail": "Workflow not found"})
    assert (r2.status_code, r2.json()) == (404, {"detail": "Task not found"})


def test_other_organizations_workflow_is_404(sandbox: Sandbox) -> None:
    _org, key = sandbox.add_organization()
    with client(sandbox) as c, client(sandbox, key) as other:
        out = submit(c, {"contacts": contacts(1)})
        r = other.get("/enrich/status", params={"workflow_id": out["workflow_id"]})
        assert r.status_code == 404
        r = other.get("/enrich/status", params={"task_id": out["task_ids"][0]})
        assert r.status_code == 404
        r = other.get("/webhooks/deliveries", params={"workflow_id": out["workflow_id"]})
        assert r.status_code == 404


def test_poller_sees_processing_then_progress_then_terminal(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    cfg = SandboxConfig(
        time_scale=0.05,
        workflow_start_delay_s=4.0,  # 200 ms before any task can finish
        rate_limit_enabled=False,
        task_failure_rate=0.0,
    )
    sb = make_sandbox(config=cfg)
    seen: list[dict[str, Any]] = []
    with client(sb) as c:
        out = submit(c, {"contacts": contacts(60)})
        deadline = time.monotonic() + 30
        while True:
            body = c.get("/enrich/status", params={"workflow_id": out["workflow_id"]}).json()
            seen.append(body)
            if body["workflow"]["status"] in TERMINAL:
                break
            assert time.monotonic() < deadline
            time.sleep(0.003)
    first, last = seen[0]["workflow"], seen[-1]["workflow"]
    assert first["status"] == "processing" and first["completed_at"] is None
    assert first["summary"]["pending"] == 60
    partial = [b for b in seen if 0 < b["workflow"]["summary"]["completed"] < 60]
    assert partial, "never saw partial progress"
    for b in seen:
        s = b["workflow"]["summary"]
        assert s["total"] == 60
        assert s["completed"] + s["pending"] == 60
        assert s["successful"] + s["failed"] == s["completed"]
        assert len(b["results"]) == s["completed"]
        assert all(r["status"] in ("completed", "failed") for r in b["results"])
    done = [b["workflow"]["summary"]["completed"] for b in seen]
    assert done == sorted(done)
    assert last["status"] == "completed"
    assert ISO.match(last["completed_at"]) and ISO.match(last["created_at"])
    assert last["completed_at"] >= last["created_at"]


def test_workflow_body_shape(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        out = submit(c, {"contacts": contacts(3)})
        body = wait_terminal(c, out["workflow_id"])
    wf = body["workflow"]
    assert set(wf) >= {
        "workflow_id", "status", "enrichment_type", "lead_list_id", "total_contacts",
        "summary", "created_at", "completed_at",
    }  # fmt: skip
    assert wf["workflow_id"] == out["workflow_id"] and wf["total_contacts"] == 3
    assert set(wf["summary"]) == {
        "total", "completed", "pending", "successful", "failed", "emails_found", "phones_found",
    }  # fmt: skip
    assert isinstance(body["results"], list) and len(body["results"]) == 3


def test_task_mode_pending_processing_completed(make_sandbox: Callable[..., Sandbox]) -> None:
    cfg = SandboxConfig(
        time_scale=1.0,
        workflow_start_delay_s=0.4,
        task_time_median_s=0.8,
        task_time_min_s=0.8,
        task_time_max_s=0.8,
        rate_limit_enabled=False,
        task_failure_rate=0.0,
    )
    sb = make_sandbox(config=cfg)
    with client(sb) as c:
        out = submit(c, {"contacts": contacts(1)})
        tid = out["task_ids"][0]
        statuses = []
        deadline = time.monotonic() + 20
        while True:
            r = c.get("/enrich/status", params={"task_id": tid})
            assert r.status_code == 200
            task = r.json()["task"]
            statuses.append(task["status"])
            if task["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert statuses[0] == "pending"
    assert "processing" in statuses and statuses[-1] == "completed"
    order = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
    assert order == ["pending", "processing", "completed"]
    assert task["task_id"] == tid


def test_completed_with_errors(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, task_failure_rate=0.5))
    with client(sb) as c:
        out = submit(c, {"contacts": contacts(40)})
        body = wait_terminal(c, out["workflow_id"])
    failed = [r for r in body["results"] if r["status"] == "failed"]
    assert body["workflow"]["status"] == "completed_with_errors"
    assert 0 < len(failed) < 40
    assert body["workflow"]["summary"]["failed"] == len(failed)
    for r in failed:
        assert r["error"] and r["credits_charged"] == 0 and r["primary_email"] is None


def test_all_failed_tasks_is_completed_with_errors_not_failed(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, task_failure_rate=1.0))
    with client(sb) as c:
        body = wait_terminal(c, submit(c, {"contacts": contacts(5)})["workflow_id"])
    assert body["workflow"]["status"] == "completed_with_errors"
    assert sb.ledger() == [] and sb.balance() == 10_000


@pytest.mark.parametrize("etype", ["none", "partial", "phone_only", "full", "prospecting_only"])
def test_result_object_fields(sandbox: Sandbox, etype: str) -> None:
    sandbox.config.task_failure_rate = 0.0
    with client(sandbox) as c:
        out = submit(c, {"enrichment_type": etype, "contacts": contacts(30)})
        body = wait_terminal(c, out["workflow_id"])
    for r in body["results"]:
        assert set(r) >= {
            "task_id", "status", "primary_email", "primary_email_status", "other_emails",
            "personal_phone_numbers", "prospect", "company", "credits_charged", "error", "input",
        }  # fmt: skip
        assert r["status"] == "completed" and r["error"] is None
        looked_up = etype != "none"  # "none" returns the normalized contact only
        assert set(r["prospect"]) >= {"first_name", "last_name", "full_name", "linkedin_url"}
        assert ("headline" in r["prospect"]) == looked_up
        assert set(r["company"]) >= {"name", "domain"}
        assert ("industry" in r["company"]) == looked_up
        assert set(r["input"]) == {
            "linkedin_url", "first_name", "last_name", "company_domain", "company_name",
        }  # fmt: skip
        if r["primary_email"] is None:
            assert r["primary_email_status"] is None
        else:
            assert r["primary_email_status"] in ("reliable", "risky", "unknown")
            assert r["primary_email"].endswith("@acme.com")
        assert all(E164.match(p) for p in r["personal_phone_numbers"])
        if etype in ("none", "phone_only", "prospecting_only"):
            assert r["primary_email"] is None
        if etype in ("none", "partial", "prospecting_only"):
            assert r["personal_phone_numbers"] == []
        if etype == "prospecting_only":
            assert 1 <= len(r["discovered_contacts"]) <= 5
            assert r["credits_charged"] == len(r["discovered_contacts"])
    found_email = sum(1 for r in body["results"] if r["primary_email"])
    found_phone = sum(1 for r in body["results"] if r["personal_phone_numbers"])
    summary = body["workflow"]["summary"]
    assert summary["emails_found"] == found_email
    assert summary["phones_found"] == found_phone
    if etype in ("partial", "full"):
        assert 0 < found_email < 30
    if etype in ("phone_only", "full"):
        assert 0 < found_phone < 30


def test_deliveries_empty_without_webhook_and_404(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        out = submit(c, {"contacts": contacts(1)})
        wait_terminal(c, out["workflow_id"])
        r = c.get("/webhooks/deliveries", params={"workflow_id": out["workflow_id"]})
        assert (r.status_code, r.json()) == (200, [])
        r = c.get("/webhooks/deliveries", params={"workflow_id": "public_bulk_nope"})
        assert r.status_code == 404
        r = c.get("/webhooks/deliveries")
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["query", "workflow_id"]


def test_lead_list_is_the_users_default_list(sandbox: Sandbox) -> None:
    """Spec §3.4/§4: one protected DEFAULT lead list per user, reused by every workflow."""
    other_user = sandbox.add_key(sandbox.organization_id)  # same org, another user
    with receiver() as rx, client(sandbox) as c, client(sandbox, other_user) as o:
        w1 = submit(c, {"contacts": contacts(2)})
        w2 = submit(c, {"enrichment_type": "none", "webhook_url": rx.url,
                        "contacts": contacts(1)})  # fmt: skip
        w3 = submit(o, {"contacts": contacts(1)})
        ids = [wait_terminal(c, w["workflow_id"])["workflow"]["lead_list_id"] for w in (w1, w2)]
        other = wait_terminal(o, w3["workflow_id"])["workflow"]["lead_list_id"]
        hook = rx.wait_for(1)[0]["body"]
    assert ids[0] == ids[1] == hook["lead_list_id"]
    assert uuid.UUID(ids[0])
    assert other != ids[0]


def test_none_tasks_never_fail_unless_the_workflow_breaks(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    """Spec §5: ``none`` looks nothing up, so the look-up failure rate does not apply."""
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, task_failure_rate=1.0))
    with client(sb) as c:
        body = wait_terminal(c, submit(c, {"enrichment_type": "none",
                                           "contacts": contacts(40)})["workflow_id"])  # fmt: skip
        sb.inject_fault("bulk", "fail_workflow")
        broke = wait_terminal(c, submit(c, {"enrichment_type": "none",
                                            "contacts": contacts(3)})["workflow_id"])  # fmt: skip
    assert body["workflow"]["status"] == "completed"
    assert all(r["status"] == "completed" and r["error"] is None for r in body["results"])
    assert body["workflow"]["summary"]["failed"] == 0
    assert broke["workflow"]["status"] == "failed"  # only an explicit fault fails it
    assert all(r["status"] == "failed" for r in broke["results"])
