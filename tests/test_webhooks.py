import json
import socket

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


# -- hostile or broken senders (issue 7 item 12) --------------------------------------------
def _raw_post(rx: WebhookReceiver, head_extra: str, body: bytes, *, wait: float = 30) -> bytes:
    """Send a POST by hand (headers as given) and read the answer until the server closes.

    ``wait`` only bounds a test run on code that never answers; nothing is timed.
    """
    host, port = rx.url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(
            f"POST {rx.path} HTTP/1.1\r\nHost: {host}\r\n{head_extra}\r\n".encode() + body
        )
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        return got


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


@pytest.mark.parametrize("body", [b"[1, 2]", b'"x"', b"7", b"null", b"true", b"[" * 100_000])
def test_non_object_json_gets_400_and_no_traceback(
    body: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    """A JSON array, string or number hit an AttributeError: no answer, a traceback."""
    with WebhookReceiver(accept_unknown=True) as rx:
        r = httpx.post(rx.url, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json() == {"ok": False}
        assert rx.rejected == 1 and rx.payloads() == {}
        # the receiver still works
        assert httpx.post(rx.url, json=payload("public_bulk_a")).status_code == 200
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "data",
    [
        {"workflow_id": "w", "summary": [1, 2]},
        {"workflow_id": "w", "results": 5},
        {"workflow_id": "w", "results_truncated": "many"},
        {"workflow_id": 7},
    ],
)
def test_wrongly_typed_fields_get_400(data: dict) -> None:
    with WebhookReceiver(accept_unknown=True) as rx:
        assert httpx.post(rx.url, json=data).status_code == 400


def test_body_over_the_cap_gets_413_unread() -> None:
    with WebhookReceiver(accept_unknown=True, max_body=1000) as rx:
        big = {"workflow_id": "public_bulk_a", "pad": "x" * 2000}
        r = httpx.post(rx.url, json=big)
        assert r.status_code == 413
        assert httpx.post(rx.url, json=payload("public_bulk_a")).status_code == 200
        assert rx.rejected == 1


def test_a_64_mib_content_length_is_refused_before_reading() -> None:
    """It used to be read in full (and waited for, with only 10 bytes sent)."""
    from cleanlist_pandas.webhooks import DEFAULT_MAX_BODY

    assert DEFAULT_MAX_BODY < 64 * 1024 * 1024
    with WebhookReceiver(accept_unknown=True) as rx:
        raw = _raw_post(rx, f"Content-Length: {64 * 1024 * 1024}\r\n", b'{"workflow_id"')
        assert _status(raw) == 413
        assert rx.rejected == 1


def test_a_body_shorter_than_its_content_length_cannot_hold_a_thread() -> None:
    """The handler used to wait forever for the missing bytes."""
    with WebhookReceiver(accept_unknown=True, read_timeout=0.2) as rx:
        raw = _raw_post(rx, "Content-Length: 100\r\n", b'{"workflow_id": "w"')
        assert _status(raw) == 408
        assert rx.rejected == 1
        # and one that sends nothing at all after its headers
        assert _status(_raw_post(rx, "Content-Length: 5\r\n", b"")) == 408
        assert httpx.post(rx.url, json=payload("public_bulk_a")).status_code == 200


def test_missing_or_bad_content_length() -> None:
    with WebhookReceiver(accept_unknown=True) as rx:
        assert _status(_raw_post(rx, "", b"")) == 411
        assert _status(_raw_post(rx, "Content-Length: -5\r\n", b"")) == 400
        assert _status(_raw_post(rx, "Content-Length: lots\r\n", b"")) == 400
        assert rx.rejected == 3


def test_receiver_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_body"):
        WebhookReceiver(max_body=0)
    with pytest.raises(ValueError, match="read_timeout"):
        WebhookReceiver(read_timeout=0)
