"""Spec §4 and §3.5: one POST per terminal workflow, retries 1-2-4-8 (scaled), the delivery
log, truncation at results_limit — against a real local receiver that fails on purpose."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from sandbox_helpers import client, contacts, receiver, submit, wait_deliveries, wait_terminal

from cleanlist_pandas.sandbox import Sandbox, SandboxConfig

ROW_KEYS = {
    "id", "workflow_id", "webhook_url", "attempt_number", "status",
    "response_status_code", "duration_ms", "error", "attempted_at",
}  # fmt: skip


def test_payload_doc_shape_and_single_delivery(sandbox: Sandbox) -> None:
    with receiver() as rx, client(sandbox) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(3)})
        body = wait_terminal(c, out["workflow_id"])
        got = rx.wait_for(1)
        rows = wait_deliveries(c, out["workflow_id"], 1)
    hook = got[0]
    assert hook["content_type"].startswith("application/json")
    assert hook["path"] == "/hooks/cleanlist"
    # payloads are not signed [doc]: no signature header of any kind
    assert not any("signature" in h or h.startswith("x-cleanlist") for h in hook["headers"])
    p = hook["body"]
    wid = out["workflow_id"]
    assert p["event"] == "enrichment.completed"
    assert p["workflow_id"] == wid
    assert p["lead_list_id"] == body["workflow"]["lead_list_id"]
    assert p["enrichment_type"] == "partial"
    assert p["status"] == body["workflow"]["status"]
    assert set(p["summary"]) == {"total", "successful", "failed", "emails_found", "phones_found"}
    assert p["summary"]["total"] == 3
    assert p["results"] == body["results"]
    assert p["results_limit"] == 250 and p["results_truncated"] == 0
    assert p["results_endpoint"] == f"/api/v1/public/enrich/status?workflow_id={wid}"
    assert p["completed_at"] == body["workflow"]["completed_at"]
    assert len(rows) == 1 and set(rows[0]) == ROW_KEYS
    row = rows[0]
    assert row["attempt_number"] == 1 and row["status"] == "success"
    assert row["response_status_code"] == 200 and row["error"] is None
    assert isinstance(row["duration_ms"], int) and row["duration_ms"] >= 0
    assert row["webhook_url"] == rx.url and row["workflow_id"] == wid
    # exactly one POST: wait a little longer than the whole retry schedule
    time.sleep(0.2)
    assert len(rx.received) == 1


def test_retry_schedule_and_delivery_log(make_sandbox: Callable[..., Sandbox]) -> None:
    scale = 0.05  # waits 50, 100, 200 ms
    sb = make_sandbox(config=SandboxConfig(time_scale=scale, rate_limit_enabled=False))
    with receiver([503, 500, 404], default=200) as rx, client(sb) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(2)})
        got = rx.wait_for(4)
        rows = wait_deliveries(c, out["workflow_id"], 4)
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(got)]
    for gap, wait in zip(gaps, (1, 2, 4), strict=True):
        assert gap >= wait * scale * 0.9, (gaps, wait)
    assert [r["attempt_number"] for r in rows] == [1, 2, 3, 4]
    assert [r["status"] for r in rows] == ["failed", "failed", "failed", "success"]
    assert [r["response_status_code"] for r in rows] == [503, 500, 404, 200]
    assert rows[0]["error"] == "HTTP 503" and rows[3]["error"] is None
    assert all(g["body"] == got[0]["body"] for g in got)  # the same payload every time
    # the quickstart's audit loop
    for row in rows:
        _ = (row["attempt_number"], row["status"], row["response_status_code"], row["duration_ms"])


def test_five_attempts_then_give_up_results_stay(make_sandbox: Callable[..., Sandbox]) -> None:
    scale = 0.01
    sb = make_sandbox(config=SandboxConfig(time_scale=scale, rate_limit_enabled=False))
    with receiver(default=503) as rx, client(sb) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(2)})
        got = rx.wait_for(5)
        rows = wait_deliveries(c, out["workflow_id"], 5)
        time.sleep(0.3)  # > the remaining schedule: no sixth attempt
        assert len(rx.received) == 5
        body = c.get("/enrich/status", params={"workflow_id": out["workflow_id"]}).json()
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(got)]
    for gap, wait in zip(gaps, (1, 2, 4, 8), strict=True):
        assert gap >= wait * scale * 0.9
    assert [r["status"] for r in rows] == ["failed"] * 5
    assert [r["attempt_number"] for r in rows] == [1, 2, 3, 4, 5]
    assert len(body["results"]) == 2


def test_connection_refused_logged_without_status_code(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    cfg = SandboxConfig(time_scale=0.002, webhook_attempts=2)
    sb = make_sandbox(config=cfg)
    with client(sb) as c:
        out = submit(c, {"webhook_url": f"http://127.0.0.1:{port}/x", "contacts": contacts(1)})
        rows = wait_deliveries(c, out["workflow_id"], 2)
    assert all(r["response_status_code"] is None and r["error"] for r in rows)
    assert all(r["status"] == "failed" for r in rows)


def test_timeout_is_a_failed_attempt(make_sandbox: Callable[..., Sandbox]) -> None:
    cfg = SandboxConfig(
        time_scale=0.02,  # timeout 10 s -> 0.2 s
        webhook_timeout_floor_s=0.0,
        rate_limit_enabled=False,
    )
    sb = make_sandbox(config=cfg)
    with receiver([1.0], default=200) as rx, client(sb) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(1)})
        rows = wait_deliveries(c, out["workflow_id"], 2)
        rx.wait_for(2)
    assert rows[0]["status"] == "failed" and rows[0]["response_status_code"] is None
    assert "imeout" in rows[0]["error"]
    assert rows[1]["status"] == "success"


@pytest.mark.parametrize("failure_rate", [0.0, 1.0])
def test_webhook_fires_for_completed_and_with_errors(
    make_sandbox: Callable[..., Sandbox], failure_rate: float
) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, task_failure_rate=failure_rate))
    with receiver() as rx, client(sb) as c:
        submit(c, {"webhook_url": rx.url, "contacts": contacts(3)})
        p = rx.wait_for(1)[0]["body"]
    assert p["status"] == ("completed" if failure_rate == 0 else "completed_with_errors")
    assert p["summary"]["failed"] == (0 if failure_rate == 0 else 3)


def test_webhook_fires_for_failed_workflow(sandbox: Sandbox) -> None:
    sandbox.inject_fault("bulk", "fail_workflow")
    with receiver() as rx, client(sandbox) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(3)})
        p = rx.wait_for(1)[0]["body"]
    assert p["workflow_id"] == out["workflow_id"] and p["status"] == "failed"
    assert all(r["status"] == "failed" for r in p["results"])


def test_duplicate_delivery_injectable(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, webhook_duplicate_probability=1.0))
    with receiver() as rx, client(sb) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(2)})
        got = rx.wait_for(2)
        rows = wait_deliveries(c, out["workflow_id"], 2)
    assert got[0]["body"] == got[1]["body"]
    assert got[0]["body"]["workflow_id"] == out["workflow_id"]
    assert [r["status"] for r in rows] == ["success", "success"]


def test_truncation_prospecting_past_250(sandbox: Sandbox) -> None:
    sandbox.config.task_failure_rate = 0.0
    with receiver() as rx, client(sandbox) as c:
        out = submit(
            c,
            {
                "enrichment_type": "prospecting_only",
                "webhook_url": rx.url,
                "contacts": contacts(250),
            },
        )
        body = wait_terminal(c, out["workflow_id"])
        p = rx.wait_for(1)[0]["body"]
    # the status endpoint returns the complete result set
    assert len(body["results"]) == 250
    discovered_total = sum(len(r["discovered_contacts"]) for r in body["results"])
    assert discovered_total > 250
    # spec §4: the cap counts records, a task result 1 plus 1 per discovered contact;
    # results_truncated counts the task results left out
    carried = sum(1 + len(r["discovered_contacts"]) for r in p["results"])
    assert p["results_limit"] == 250
    assert carried <= 250
    assert len(p["results"]) + p["results_truncated"] == p["summary"]["total"] == 250
    assert p["results_truncated"] > 0
    # whole results while they fit: the first one left out would not have fitted
    first_out = body["results"][len(p["results"])]
    assert carried + 1 + len(first_out["discovered_contacts"]) > 250
    assert p["results"] == body["results"][: len(p["results"])]
    assert p["results_endpoint"].endswith(out["workflow_id"])


def test_truncation_with_small_results_limit(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, results_limit=10))
    with receiver() as rx, client(sb) as c:
        submit(c, {"webhook_url": rx.url, "contacts": contacts(25)})
        p = rx.wait_for(1)[0]["body"]
    assert p["results_limit"] == 10
    assert len(p["results"]) == 10 and p["results_truncated"] == 15


def test_no_delivery_rows_before_webhook_fires(make_sandbox: Callable[..., Sandbox]) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=1.0, rate_limit_enabled=False))
    with client(sb) as c:
        out = submit(c, {"webhook_url": "http://127.0.0.1:9/x", "contacts": contacts(1)})
        r = c.get("/webhooks/deliveries", params={"workflow_id": out["workflow_id"]})
    assert (r.status_code, r.json()) == (200, [])


@pytest.mark.parametrize(("code", "ok"), [(201, True), (204, True), (299, True), (302, False)])
def test_any_2xx_is_success(make_sandbox: Callable[..., Sandbox], code: int, ok: bool) -> None:
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, webhook_attempts=1))
    with receiver([code]) as rx, client(sb) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(1)})
        rows = wait_deliveries(c, out["workflow_id"], 1)
    assert rows[0]["response_status_code"] == code
    assert rows[0]["status"] == ("success" if ok else "failed")


def test_unicode_and_lone_surrogates_survive(sandbox: Sandbox) -> None:
    raw = (
        b'{"webhook_url": "%s", "contacts": [{"linkedin_url": "https://x/in/\\ud800-jos\\u00e9"},'
        b' {"first_name": "Jos\\u00e9", "last_name": "N\\u00fa\\u00f1ez",'
        b' "company_name": "Caf\\u00e9"}]}'
    )
    with receiver() as rx, client(sandbox) as c:
        r = c.post(
            "/enrich/bulk",
            content=raw.replace(b"%s", rx.url.encode()),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        body = wait_terminal(c, r.json()["workflow_id"])
        hook = rx.wait_for(1)[0]["body"]
    assert body["results"][0]["input"]["linkedin_url"] == "https://x/in/\ud800-josé"
    assert body["results"][1]["input"]["first_name"] == "José"
    assert hook["results"] == body["results"][: len(hook["results"])]


def _records(result: dict[str, Any]) -> int:
    """Spec §4: a task result is 1 record plus 1 per discovered contact it carries."""
    return 1 + len(result.get("discovered_contacts") or ())


def test_truncation_stops_at_the_first_result_that_does_not_fit(sandbox: Sandbox) -> None:
    """Spec §4: whole task results ride in order while their records fit; the first that
    does not fit *and everything after it* are left out — no later, smaller result fills
    the room left (greedy packing would). Seed 0, 12 ``prospecting_only`` contacts, limit
    10: the records are 6, 6, 4, ...: only the first rides (greedy would add the third)."""
    sandbox.config.results_limit = 10
    with receiver() as rx, client(sandbox) as c:
        out = submit(
            c,
            {"enrichment_type": "prospecting_only", "webhook_url": rx.url,
             "contacts": contacts(12)},
        )  # fmt: skip
        body = wait_terminal(c, out["workflow_id"])
        p = rx.wait_for(1)[0]["body"]
    records = [_records(r) for r in body["results"]]
    prefix: list[int] = []
    used = 0
    for i, n in enumerate(records):
        if used + n > 10:
            break
        used += n
        prefix.append(i)
    greedy: list[int] = []
    used = 0
    for i, n in enumerate(records):
        if used + n <= 10:
            used += n
            greedy.append(i)
    assert greedy != prefix, f"records {records}: this case no longer tells the rules apart"
    assert p["results"] == [body["results"][i] for i in prefix]
    assert p["results_truncated"] == 12 - len(prefix)
    assert p["summary"]["total"] == 12 and p["results_limit"] == 10


@pytest.mark.parametrize("etype", ["partial", "prospecting_only"])
def test_results_truncated_counts_task_results(
    make_sandbox: Callable[..., Sandbox], etype: str
) -> None:
    """Spec §4: ``len(results) + results_truncated == summary.total`` for every type."""
    cfg = SandboxConfig(
        time_scale=0.002, results_limit=20, prospecting_discovery_cap=3, task_failure_rate=0.0
    )
    sb = make_sandbox(config=cfg)
    with receiver() as rx, client(sb) as c:
        submit(c, {"enrichment_type": etype, "webhook_url": rx.url, "contacts": contacts(30)})
        p = rx.wait_for(1)[0]["body"]
    assert len(p["results"]) + p["results_truncated"] == p["summary"]["total"] == 30
    records = sum(1 + len(r.get("discovered_contacts") or ()) for r in p["results"])
    assert records <= 20
    if etype == "partial":
        assert len(p["results"]) == 20 and p["results_truncated"] == 10
    else:  # 1 + 2..3 discovered = 3 or 4 records per task: 5 to 6 whole results fit
        assert 5 <= len(p["results"]) <= 6 and records > 20 - 4


def test_webhook_timeout_is_10_s(make_sandbox: Callable[..., Sandbox]) -> None:
    """Spec §4 [doc]: a 2xx within 10 seconds is success. Replies at 1.2x and 0.8x of the
    (scaled) 10 s: the first attempt times out, the retry succeeds."""
    scale = 0.1  # 10 s -> 1 s; replies at 1.2 s and 0.8 s (margins wide enough for CI)
    cfg = SandboxConfig(
        time_scale=scale, webhook_timeout_floor_s=0.0, webhook_attempts=2,
        rate_limit_enabled=False,
    )  # fmt: skip
    sb = make_sandbox(config=cfg)
    with receiver([1.2 * 10 * scale, 0.8 * 10 * scale]) as rx, client(sb) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(1)})
        rows = wait_deliveries(c, out["workflow_id"], 2)
        rx.wait_for(2)
    assert [r["status"] for r in rows] == ["failed", "success"]
    assert rows[0]["response_status_code"] is None
    assert rows[0]["error"] == "Timeout after 1s"
    assert rows[1]["response_status_code"] == 200


def test_deliveries_object_shape_option(make_sandbox: Callable[..., Sandbox]) -> None:
    """Spec §3.5: the sandbox can serve ``{"deliveries": [...]}`` instead of a bare list."""
    sb = make_sandbox(config=SandboxConfig(time_scale=0.002, deliveries_shape="object"))
    with receiver([503]) as rx, client(sb) as c:
        out = submit(c, {"webhook_url": rx.url, "contacts": contacts(1)})
        rx.wait_for(2)
        rows = wait_deliveries(c, out["workflow_id"], 2)
        body = c.get("/webhooks/deliveries", params={"workflow_id": out["workflow_id"]})
    assert body.json() == {"deliveries": rows}
    assert [r["status"] for r in rows] == ["failed", "success"]
    assert set(rows[0]) == ROW_KEYS and rows == sb.deliveries(out["workflow_id"])
