import json

import httpx
import pytest

from cleanlist_pandas.webhooks import WebhookPayload, WebhookReceiver


def payload(workflow_id: str, truncated: int = 0) -> dict:
    return {
        "event": "enrichment.completed",
        "workflow_id": workflow_id,
        "status": "completed",
        "summary": {"total": 1},
        "results": [{"task_id": "t1", "primary_email": "a@b.com"}],
        "results_limit": 250,
        "results_truncated": truncated,
        "results_endpoint": f"/api/v1/public/enrich/status?workflow_id={workflow_id}",
        "future_field": 1,
    }


def test_receiver_accepts_expected_rejects_unknown_and_is_idempotent() -> None:
    with WebhookReceiver() as rx:
        rx.expect("public_bulk_a")
        assert httpx.post(rx.url, json=payload("public_bulk_x")).status_code == 404
        assert httpx.post(rx.url, json=payload("public_bulk_a")).status_code == 200
        assert httpx.post(rx.url, json=payload("public_bulk_a")).status_code == 200
        assert httpx.post(rx.url, content=b"not json").status_code == 400
        assert httpx.post(rx.url.replace("/webhook", "/other"), json={}).status_code == 404
        got = rx.wait("public_bulk_a", timeout=1)
        assert got.complete and got.results[0]["primary_email"] == "a@b.com"
        assert got.raw["future_field"] == 1
        assert rx.duplicates == 1 and rx.rejected == 2
        with pytest.raises(TimeoutError):
            rx.wait("public_bulk_never", timeout=0.05)


def test_truncated_payload_is_not_complete() -> None:
    p = WebhookPayload.from_dict(payload("w", truncated=30))
    assert not p.complete and p.results_endpoint.endswith("workflow_id=w")
    with pytest.raises(ValueError):
        WebhookPayload.from_dict(json.loads('{"status": "completed"}'))


def test_receiver_refuses_public_bind() -> None:
    with pytest.raises(ValueError):
        WebhookReceiver(host="0.0.0.0")
