"""Control of the sandbox from Python and over HTTP (/_sandbox/...), and its lifecycle."""

from __future__ import annotations

import dataclasses
import warnings

import httpx
import pytest
from sandbox_helpers import client, contacts, submit, wait_terminal

from cleanlist_pandas.sandbox import Sandbox, SandboxConfig


def _ctl(sb: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=sb.root_url + "/_sandbox", trust_env=False, timeout=10)


def test_http_control_shares_state_with_python(sandbox: Sandbox) -> None:
    with _ctl(sandbox) as ctl, client(sandbox) as c:
        assert ctl.post("/credits", json={"credits": 77.5}).status_code == 200
        assert sandbox.balance() == 77.5
        assert c.get("/credits/balance").json()["credits"] == 77.5
        body = wait_terminal(c, submit(c, {"contacts": contacts(10)})["workflow_id"])
        assert ctl.get("/ledger").json() == sandbox.ledger()
        stats = ctl.get("/stats").json()
        assert stats == sandbox.stats()
        assert stats["by_endpoint"]["POST /enrich/bulk"] == {"200": 1}
        assert stats["total"] == sum(sum(v.values()) for v in stats["by_endpoint"].values())
        assert not any(k.startswith("GET /_sandbox") for k in stats["by_endpoint"])
        assert body["results"]


def test_http_control_credits_for_other_org(sandbox: Sandbox) -> None:
    org, _key = sandbox.add_organization(credits=1)
    with _ctl(sandbox) as ctl:
        r = ctl.post("/credits", json={"credits": 9, "organization_id": org})
        assert r.status_code == 200
        assert ctl.post("/credits", json={"credits": 9, "organization_id": "x"}).status_code == 404
        assert ctl.post("/credits", json={"credits": -1}).status_code == 422
    assert sandbox.balance(org) == 9 and sandbox.balance() == 10_000


def test_http_control_faults(sandbox: Sandbox) -> None:
    with _ctl(sandbox) as ctl, client(sandbox) as c:
        r = ctl.post("/faults", json={"endpoint": "balance", "kind": "status", "status": 503})
        assert r.status_code == 200
        ctl.post("/faults", json={"endpoint": "balance", "kind": "status", "status": 502})
        assert len(ctl.get("/faults").json()) == 2
        assert c.get("/credits/balance").status_code == 503
        assert ctl.delete("/faults").status_code == 200
        assert c.get("/credits/balance").status_code == 200
        bad = ctl.post("/faults", json={"endpoint": "balance", "kind": "nope"})
        assert bad.status_code == 422
        r = ctl.post("/faults", json={"endpoint": "*", "kind": "status", "status": 500,
                                      "probability": 1.0})  # fmt: skip
        assert r.json()[0]["times"] is None  # probability without times = unlimited
        assert c.get("/auth/validate-key").status_code == 500
        assert c.get("/auth/validate-key").status_code == 500


def test_control_routes_need_no_key(sandbox: Sandbox) -> None:
    with _ctl(sandbox) as ctl:
        assert ctl.get("/stats").status_code == 200
        assert ctl.get("/info").json()["organization_id"] == sandbox.organization_id


def test_reset_is_complete(sandbox: Sandbox) -> None:
    org, key = sandbox.add_organization()
    sandbox.revoke_key(sandbox.api_key)
    sandbox.config.rate_limit_per_org = 1
    sandbox.inject_fault("*", "status", status=500, times=None)
    sandbox.state.revoke_key(sandbox.api_key)
    with client(sandbox, key) as c:
        c.get("/credits/balance")
    sandbox.reset()
    with client(sandbox) as c:
        assert c.get("/auth/validate-key").status_code == 200  # same key, unrevoked
        out = submit(c, {"contacts": contacts(3)})
        wait_terminal(c, out["workflow_id"])
    with _ctl(sandbox) as ctl:
        assert ctl.post("/reset").status_code == 200
    with client(sandbox) as c:
        r = c.get("/enrich/status", params={"workflow_id": out["workflow_id"]})
        assert r.status_code == 404
    assert sandbox.stats() == {"total": 1, "by_endpoint": {"GET /enrich/status": {"404": 1}}}
    with client(sandbox, key) as c:
        assert c.get("/auth/validate-key").status_code == 401  # added orgs are gone
    sandbox.reset()
    assert sandbox.balance() == 10_000 and sandbox.ledger() == []
    assert sandbox.stats() == {"total": 0, "by_endpoint": {}}
    assert sandbox.config.rate_limit_per_org == 60
    assert sandbox.state.faults() == []
    assert org not in sandbox.state.orgs


def test_config_kwargs_win_and_config_is_copied() -> None:
    cfg = SandboxConfig(time_scale=0.5, results_limit=9)
    sb = Sandbox(time_scale=0.01, config=cfg)
    assert sb.config.time_scale == 0.01 and sb.config.results_limit == 9
    assert cfg.time_scale == 0.5
    assert Sandbox(config=cfg).config.time_scale == 0.5
    with pytest.raises(ValueError):
        Sandbox(api_key="sk_live_nope")


def test_non_loopback_bind_warns() -> None:
    with pytest.warns(UserWarning, match="not a loopback"):
        Sandbox(host="0.0.0.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Sandbox(host="127.0.0.1")
        Sandbox(host="localhost")


def test_lifecycle_context_manager(make_sandbox: object) -> None:
    with Sandbox(time_scale=0.01, api_key="clapi_live_fixed_key_for_test") as sb:
        assert sb.running and sb.port > 0
        assert sb.api_key == "clapi_live_fixed_key_for_test"
        with client(sb) as c:
            assert c.get("/auth/validate-key").status_code == 200
        url = sb.base_url
    assert not sb.running
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as c:
        c.get(url + "/auth/validate-key")


def test_two_sandboxes_are_independent(make_sandbox: object) -> None:
    a = make_sandbox()  # type: ignore[operator]
    b = make_sandbox(credits=5)  # type: ignore[operator]
    assert a.port != b.port and a.api_key != b.api_key
    with client(a, b.api_key) as c:
        assert c.get("/auth/validate-key").status_code == 401
    assert b.balance() == 5


def test_http_control_organizations_keys_config(sandbox: Sandbox) -> None:
    with _ctl(sandbox) as ctl:
        made = ctl.post("/organizations", json={"credits": 5, "api_access": True}).json()
        extra = ctl.post("/keys", json={"organization_id": made["organization_id"]}).json()
        assert ctl.post("/keys", json={"organization_id": "nope"}).status_code == 404
        with client(sandbox, extra["api_key"]) as c:
            assert c.get("/credits/balance").json() == {
                "organization_id": made["organization_id"],
                "credits": 5.0,
            }
            assert ctl.post("/keys/revoke", json={"api_key": extra["api_key"]}).status_code == 200
            assert c.get("/credits/balance").status_code == 401
        assert ctl.post("/keys/revoke", json={"api_key": "clapi_x"}).status_code == 404
        cfg = ctl.patch("/config", json={"rate_limit_enabled": False, "results_limit": 7}).json()
        assert cfg["rate_limit_enabled"] is False and sandbox.config.results_limit == 7
        assert ctl.get("/config").json()["webhook_backoff_s"] == [1.0, 2.0, 4.0, 8.0]
        assert ctl.patch("/config", json={"nope": 1}).status_code == 422
        assert ctl.patch("/config", json={"rate_limit_per_org": "many"}).status_code == 422
        ctl.patch("/config", json={"webhook_backoff_s": [1, 1]})
        assert sandbox.config.webhook_backoff_s == (1, 1)
    sandbox.reset()
    assert sandbox.config.results_limit == 250 and sandbox.config.rate_limit_enabled is True


def test_python_deliveries_and_api_access(sandbox: Sandbox) -> None:
    sandbox.set_api_access(sandbox.organization_id, False)
    with client(sandbox) as c:
        assert c.get("/credits/balance").status_code == 403
        sandbox.set_api_access(sandbox.organization_id, True)
        assert c.get("/credits/balance").status_code == 200
    assert sandbox.deliveries("public_bulk_nope") == []


NONSENSE = [
    b'{"credits": NaN}',
    b'{"credits": Infinity}',
    b'{"credits": -Infinity}',
    b'{"credits": 1e400}',
    b'{"credits": -1}',
    b'{"credits": "5"}',
    b'{"credits": true}',
]


@pytest.mark.parametrize("raw", NONSENSE)
@pytest.mark.parametrize("route", ["/credits", "/organizations"])
def test_control_credits_refuse_nonsense(sandbox: Sandbox, raw: bytes, route: str) -> None:
    with _ctl(sandbox) as ctl:
        r = ctl.post(route, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert sandbox.balance() == 10_000
    assert len(sandbox.state.orgs) == 1


def test_python_credits_refuse_nonsense(sandbox: Sandbox) -> None:
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError):
            sandbox.set_credits(bad)
        with pytest.raises(ValueError):
            sandbox.add_organization(credits=bad)
    assert sandbox.balance() == 10_000


@pytest.mark.parametrize(
    "patch",
    [
        b'{"time_scale": -1}',
        b'{"time_scale": 0}',
        b'{"time_scale": NaN}',
        b'{"time_scale": Infinity}',
        b'{"tick_s": 0}',
        b'{"task_failure_rate": 1.5}',
        b'{"email_found_rate": -0.1}',
        b'{"webhook_timeout_s": -10}',
        b'{"webhook_attempts": 0}',
        b'{"webhook_attempts": 2.5}',
        b'{"webhook_backoff_s": [1, -2]}',
        b'{"webhook_backoff_s": 3}',
        b'{"results_limit": 0}',
        b'{"rate_limit_per_org": -5}',
        b'{"rate_limit_window_s": NaN}',
        b'{"credit_rule": "generous"}',
        b'{"task_time_min_s": 5, "task_time_max_s": 1}',
        b'{"task_time_median_s": 600, "task_time_max_s": 30}',
        b'{"results_limit": 7, "time_scale": -1}',
        b'{"workers_per_org": 0}',
        b'{"workers_per_org": 2.5}',
        b'{"workers_per_org": "4"}',
        b'{"workers_per_org": true}',
        b'{"workflow_speed_sigma": -0.1}',
        b'{"workflow_speed_sigma": NaN}',
        b'{"workflow_start_delay_sigma": Infinity}',
        b'{"workflow_start_delay_sigma": null}',
        b'{"task_time_sigma": null}',
    ],
)
def test_control_config_refuses_nonsense(sandbox: Sandbox, patch: bytes) -> None:
    before = dataclasses.asdict(sandbox.config)
    with _ctl(sandbox) as ctl:
        r = ctl.patch("/config", content=patch, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert dataclasses.asdict(sandbox.config) == before  # all or nothing


def test_http_control_service_model_knobs(sandbox: Sandbox) -> None:
    """The service-model knobs are patchable (and ``null`` where ``None`` is a value), and
    a patched model is served: with one worker, a workflow's tasks run one after another."""
    knobs = {
        "workers_per_org": 1,
        "workflow_speed_sigma": 0.5,
        "workflow_start_delay_sigma": 0.5,
        "workflow_start_delay_s": 2.0,
        "task_time_median_s": 10.0,
        "task_time_sigma": 1.5,
    }
    with _ctl(sandbox) as ctl, client(sandbox) as c:
        r = ctl.patch("/config", json=knobs)
        assert r.status_code == 200, r.text
        assert {k: r.json()[k] for k in knobs} == knobs
        wid = submit(c, {"contacts": contacts(4)})["workflow_id"]
        wait_terminal(c, wid)
        tasks = sandbox.state.workflows[wid].tasks
        assert tasks[0].start_at == sandbox.state.workflows[wid].start_at
        assert [t.start_at for t in tasks[1:]] == [t.finish_at for t in tasks[:-1]]
        r = ctl.patch("/config", json={"workers_per_org": None})
        assert r.status_code == 200 and r.json()["workers_per_org"] is None
    assert sandbox.config.workers_per_org is None
    sandbox.reset()
    assert sandbox.config.workflow_speed_sigma == 0.0
    with pytest.raises(ValueError, match="workers_per_org"):
        Sandbox(config=SandboxConfig(workers_per_org=0))


def test_every_config_field_has_a_rule() -> None:
    from cleanlist_pandas.sandbox.config import _RULES

    assert set(_RULES) == {f.name for f in dataclasses.fields(SandboxConfig)}
    assert SandboxConfig().problems() == []
    with pytest.raises(ValueError, match="time_scale"):
        Sandbox(config=SandboxConfig(time_scale=float("nan")))


def test_readme_fidelity_table_names_real_tests() -> None:
    """The README's table of documented facts names tests that exist (and each fact has
    at least one)."""
    import re
    from pathlib import Path

    tests = Path(__file__).resolve().parents[1]
    readme = (tests.parent / "cleanlist_pandas" / "sandbox" / "README.md").read_text("utf-8")
    section = readme.split("## Fidelity", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "::" in line]
    assert len(rows) >= 40
    for row in rows:
        refs = re.findall(r"`([\w/]+\.py)::(test_\w+)`", row)
        assert refs, row
        for path, name in refs:
            source = (tests / path).read_text("utf-8")
            assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{path}::{name}"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"endpoint": "bulk", "kind": "slow", "delay_s": NaN}',
        b'{"endpoint": "bulk", "kind": "slow", "delay_s": Infinity}',
        b'{"endpoint": "bulk", "kind": "status", "status": 429, "retry_after": NaN}',
        b'{"endpoint": "bulk", "kind": "status", "status": 429, "retry_after": -1}',
        b'{"endpoint": "bulk", "kind": "status", "status": 503, "probability": NaN}',
        b'{"endpoint": "bulk", "kind": "status", "status": "503"}',
        b'{"endpoint": "bulk", "kind": "status", "status": 503, "times": 1.5}',
        b"[" * 100_000,
    ],
)
def test_control_faults_refuse_nonsense(sandbox: Sandbox, raw: bytes) -> None:
    with _ctl(sandbox) as ctl:
        r = ctl.post("/faults", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert ctl.get("/faults").json() == []
        deep = ctl.post("/credits", content=b"[" * 100_000)
    assert deep.status_code == 422


def test_schedule_gives_each_workflows_submission_and_finish(sandbox: Sandbox) -> None:
    with _ctl(sandbox) as ctl, client(sandbox) as c:
        wf = submit(c, {"contacts": contacts(20)})["workflow_id"]
        row = next(r for r in sandbox.schedule()["workflows"] if r["workflow_id"] == wf)
        start = sandbox.config.scaled(sandbox.config.workflow_start_delay_s)
        assert row["finishes"] >= row["submitted"] + start + sandbox.config.scaled(0.5) - 1e-9
        assert row["completed"] is None or row["completed"] >= row["finishes"]
        wait_terminal(c, wf)
        over_http = ctl.get("/schedule").json()
        done = next(r for r in over_http["workflows"] if r["workflow_id"] == wf)
        assert done["completed"] >= done["finishes"] and over_http["now"] >= done["completed"]
