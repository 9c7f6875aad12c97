"""Spec §1 (transport, auth) and §3.1/§3.2 (validate-key, balance) against the real server."""

from __future__ import annotations

import time

import httpx
import pytest
from sandbox_helpers import client

from cleanlist_pandas.sandbox import Sandbox

ENDPOINTS = [
    ("GET", "/auth/validate-key", None),
    ("GET", "/credits/balance", None),
    ("POST", "/enrich/bulk", {"contacts": [{"linkedin_url": "https://www.linkedin.com/in/a"}]}),
    ("GET", "/enrich/status?workflow_id=x", None),
    ("GET", "/webhooks/deliveries?workflow_id=x", None),
]


def _call(
    sb: Sandbox, method: str, path: str, body: object, headers: dict[str, str]
) -> httpx.Response:
    with httpx.Client(base_url=sb.base_url, trust_env=False) as c:
        return c.request(method, path, json=body, headers=headers)


def test_base_url_ends_in_api_prefix(sandbox: Sandbox) -> None:
    assert sandbox.base_url.startswith("http://127.0.0.1:")
    assert sandbox.base_url.endswith("/api/v1/public")
    assert sandbox.root_url + "/api/v1/public" == sandbox.base_url
    assert sandbox.api_key.startswith("clapi_")


def test_validate_key_doc_shape(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        r = c.get("/auth/validate-key")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["valid"] is True
    assert isinstance(body["user_id"], str) and body["user_id"]
    assert body["organization_id"] == sandbox.organization_id


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "clapi_noscheme",
        "Bearer clext_0123456789abcdef",
        "Bearer clapi_unknown_key",
        "Bearer sk_live_wrongprefix",
    ],
)
def test_every_endpoint_401_for_bad_keys(
    sandbox: Sandbox, method: str, path: str, body: object, header: str | None
) -> None:
    """Spec §1 [doc: errors page]: every 401 has the one body and ``WWW-Authenticate``."""
    headers = {} if header is None else {"Authorization": header}
    r = _call(sandbox, method, path, body, headers)
    assert r.status_code == 401
    assert r.json() == {"detail": "Not authenticated"}
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert sandbox.api_key not in r.text


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("kind", ["revoked", "expired"])
def test_every_endpoint_401_for_revoked_or_expired_keys(
    sandbox: Sandbox, method: str, path: str, body: object, kind: str
) -> None:
    if kind == "revoked":
        key = sandbox.add_key(sandbox.organization_id)
        sandbox.revoke_key(key)
    else:
        key = sandbox.add_key(sandbox.organization_id, expires_in_s=0)
    r = _call(sandbox, method, path, body, {"Authorization": f"Bearer {key}"})
    assert r.status_code == 401
    assert r.json() == {"detail": "Not authenticated"}
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert key not in r.text


def test_key_expires_at_its_time(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.config.time_scale = 1.0
    key = sandbox.add_key(sandbox.organization_id, expires_in_s=3600)
    real_now = sandbox.state.now
    with client(sandbox, key) as c:
        assert c.get("/auth/validate-key").status_code == 200
        monkeypatch.setattr(sandbox.state, "now", lambda: real_now() + 3599)
        assert c.get("/auth/validate-key").status_code == 200
        monkeypatch.setattr(sandbox.state, "now", lambda: real_now() + 3600)
        r = c.get("/auth/validate-key")
    assert (r.status_code, r.json()) == (401, {"detail": "Not authenticated"})
    with client(sandbox) as c:  # the default key never expires
        assert c.get("/auth/validate-key").status_code == 200


def test_expired_key_over_http_control(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.root_url + "/_sandbox", trust_env=False) as ctl:
        key = ctl.post("/keys", json={"expires_in_s": 0}).json()["api_key"]
        assert ctl.post("/keys", json={"expires_in_s": -1}).status_code == 422
        assert ctl.post("/keys", json={"expires_in_s": "soon"}).status_code == 422
    with client(sandbox, key) as c:
        assert c.get("/credits/balance").status_code == 401


def test_revoked_key_401(sandbox: Sandbox) -> None:
    extra = sandbox.add_key(sandbox.organization_id)
    with client(sandbox, extra) as c:
        assert c.get("/auth/validate-key").status_code == 200
        sandbox.revoke_key(extra)
        assert c.get("/auth/validate-key").status_code == 401
        assert c.get("/credits/balance").status_code == 401
    with client(sandbox) as c:  # the other key of the org still works
        assert c.get("/auth/validate-key").status_code == 200


def test_second_key_same_org_different_user(sandbox: Sandbox) -> None:
    extra = sandbox.add_key(sandbox.organization_id)
    with client(sandbox) as a, client(sandbox, extra) as b:
        ra, rb = a.get("/auth/validate-key").json(), b.get("/auth/validate-key").json()
    assert ra["organization_id"] == rb["organization_id"] == sandbox.organization_id
    assert ra["user_id"] != rb["user_id"]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_403_without_api_access(sandbox: Sandbox, method: str, path: str, body: object) -> None:
    _org, key = sandbox.add_organization(credits=100, api_access=False)
    r = _call(sandbox, method, path, body, {"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
    assert r.json() == {"detail": "Your plan does not include API access"}


def test_balance_doc_shape_and_float(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        body = c.get("/credits/balance").json()
        assert body == {"organization_id": sandbox.organization_id, "credits": 10_000.0}
        assert isinstance(body["credits"], float)
        sandbox.set_credits(12.75)
        assert c.get("/credits/balance").json()["credits"] == 12.75


def test_balance_is_per_organization(sandbox: Sandbox) -> None:
    org, key = sandbox.add_organization(credits=42.5)
    with client(sandbox, key) as c:
        assert c.get("/credits/balance").json() == {"organization_id": org, "credits": 42.5}
    assert sandbox.balance(org) == 42.5
    assert sandbox.balance() == 10_000.0


def test_json_404_for_unknown_route(sandbox: Sandbox) -> None:
    with client(sandbox) as c:
        r = c.get("/no/such/route")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_key_in_url_is_not_accepted(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.base_url, trust_env=False) as c:
        for name in ("api_key", "key", "token", "access_token"):
            r = c.get("/auth/validate-key", params={name: sandbox.api_key})
            assert r.status_code == 401


def test_bearer_scheme_is_case_insensitive_and_key_exact(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.base_url, trust_env=False) as c:
        ok = c.get("/auth/validate-key", headers={"Authorization": f"bearer {sandbox.api_key}"})
        bad = c.get(
            "/auth/validate-key", headers={"Authorization": f"Bearer {sandbox.api_key.upper()}"}
        )
    assert ok.status_code == 200 and bad.status_code == 401


def test_balance_agent_shape_option(sandbox: Sandbox) -> None:
    """Spec §3.2 [doc: agent/MCP pages]: the second documented shape, served on request;
    it carries the organization too [doc: credits page]."""
    sandbox.set_credits(12.75)
    with httpx.Client(base_url=sandbox.root_url + "/_sandbox", trust_env=False) as ctl:
        assert ctl.patch("/config", json={"balance_shape": "agent"}).status_code == 200
        assert ctl.patch("/config", json={"balance_shape": "other"}).status_code == 422
    with client(sandbox) as c:
        before = time.time() * 1000
        body = c.get("/credits/balance").json()
    assert set(body) == {"organization_id", "credits", "timestamp_ms", "agent_instructions"}
    assert body["organization_id"] == sandbox.organization_id
    assert body["credits"] == 12 and isinstance(body["credits"], int)  # rounded down
    assert isinstance(body["timestamp_ms"], int) and body["timestamp_ms"] >= before - 1000
    assert isinstance(body["agent_instructions"], str) and body["agent_instructions"]
    sandbox.reset()  # back to the first documented shape
    with client(sandbox) as c:
        assert set(c.get("/credits/balance").json()) == {"organization_id", "credits"}
