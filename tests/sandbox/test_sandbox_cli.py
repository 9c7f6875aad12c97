"""The issue's "done when": the quickstart's own commands against a sandbox started from a
shell (``python -m cleanlist_pandas.sandbox`` and ``cleanlist-pandas sandbox``)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sandbox_helpers import receiver


@contextmanager
def served(cmd: list[str], stop_signal: int = signal.SIGINT) -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while not {"base_url", "api_key", "organization_id"} <= set(info):
            line = proc.stdout.readline()
            if not line:
                err = proc.stderr.read() if proc.stderr else ""
                raise AssertionError(f"sandbox exited early: {err}")
            name, sep, value = line.partition(": ")
            if sep and name in ("base_url", "api_key", "organization_id"):
                info[name] = value.strip()
            assert time.monotonic() < deadline
        yield info
    finally:
        proc.send_signal(stop_signal)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            raise
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert code == 0


def _curl(*args: str) -> dict[str, object] | list[object]:
    out = subprocess.run(["curl", "-sS", "--fail-with-body", *args], capture_output=True,
                         text=True, timeout=30, check=True)  # fmt: skip
    parsed: dict[str, object] | list[object] = json.loads(out.stdout)
    return parsed


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_quickstart_against_python_m_sandbox() -> None:
    cmd = [sys.executable, "-m", "cleanlist_pandas.sandbox", "--port", "0",
           "--time-scale", "0.01", "--credits", "500", "--seed", "3"]  # fmt: skip
    with served(cmd) as info, receiver() as rx:
        base, key = info["base_url"], info["api_key"]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/api/v1/public")
        assert key.startswith("clapi_")
        auth = f"Authorization: Bearer {key}"
        # curl: validate the key, read the balance
        valid = _curl("-H", auth, f"{base}/auth/validate-key")
        assert isinstance(valid, dict) and valid["valid"] is True
        assert valid["organization_id"] == info["organization_id"]
        bal = _curl("-H", auth, f"{base}/credits/balance")
        assert isinstance(bal, dict) and bal["credits"] == 500.0
        # curl: a bulk POST with a webhook_url to a local receiver
        body = {
            "enrichment_type": "partial",
            "webhook_url": rx.url,
            "contacts": [
                {"first_name": "John", "last_name": "Doe", "company_domain": "acme.com"},
                {"linkedin_url": "https://www.linkedin.com/in/janedoe"},
            ],
        }
        started = _curl("-X", "POST", "-H", auth, "-H", "Content-Type: application/json",
                        "-d", json.dumps(body), f"{base}/enrich/bulk")  # fmt: skip
        assert isinstance(started, dict) and started["status"] == "processing"
        workflow_id = str(started["workflow_id"])

        # the quickstart's wait_for_workflow loop
        def wait_for_workflow(workflow_id: str) -> dict[str, object]:
            while True:
                response = httpx.get(
                    f"{base}/enrich/status",
                    params={"workflow_id": workflow_id},
                    headers={"Authorization": f"Bearer {key}"},
                    trust_env=False,
                ).json()
                status = response["workflow"]["status"]
                if status in ("completed", "completed_with_errors", "failed"):
                    return dict(response)
                time.sleep(0.05)

        result = wait_for_workflow(workflow_id)
        assert len(result["results"]) == 2  # type: ignore[arg-type]
        hook = rx.wait_for(1)[0]["body"]
        assert hook["workflow_id"] == workflow_id

        # the quickstart's delivery-audit loop
        deadline = time.monotonic() + 10
        rows: list[dict[str, object]] = []
        while not rows and time.monotonic() < deadline:
            rows = httpx.get(
                f"{base}/webhooks/deliveries",
                params={"workflow_id": workflow_id},
                headers={"Authorization": f"Bearer {key}"},
                trust_env=False,
            ).json()
            time.sleep(0.02)
        lines = []
        for delivery in rows:
            lines.append(
                f"Attempt {delivery['attempt_number']}: {delivery['status']} "
                f"(HTTP {delivery['response_status_code']}, {delivery['duration_ms']}ms)"
            )
        assert lines and lines[0].startswith("Attempt 1: success (HTTP 200, ")
        # control routes
        root = base.removesuffix("/api/v1/public")
        stats = httpx.get(root + "/_sandbox/stats", trust_env=False).json()
        assert stats["by_endpoint"]["POST /enrich/bulk"] == {"200": 1}


def test_console_script_sandbox_with_fixed_key() -> None:
    script = Path(sys.executable).with_name("cleanlist-pandas")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "cleanlist_pandas.cli"]
    cmd += ["sandbox", "--port", "0", "--api-key", "clapi_live_cli_test_key", "--credits", "12.5"]
    with served(cmd, stop_signal=signal.SIGTERM) as info:
        assert info["api_key"] == "clapi_live_cli_test_key"
        r = httpx.get(
            info["base_url"] + "/credits/balance",
            headers={"Authorization": "Bearer clapi_live_cli_test_key"},
            trust_env=False,
        )
        assert r.json() == {"organization_id": info["organization_id"], "credits": 12.5}


def test_cli_rejects_bad_key() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cleanlist_pandas.sandbox", "--port", "0", "--api-key", "nope"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "clapi_" in proc.stderr


def _export_lines(cmd: list[str], env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Start the sandbox, read its lines up to the export lines, run ``balance`` with the
    variables they set (as pasting them into a shell would), stop it; return the printed
    ``name: value`` lines and every line read."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while sum(line.startswith("export ") for line in lines) < 2:
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, proc.stderr.read()  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
        names = ("base_url", "api_key", "organization_id")
        info = dict(line.split(": ", 1) for line in lines if line.split(": ", 1)[0] in names)
        pasted = dict(env)
        for line in lines:
            if line.startswith("export "):
                name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
                pasted[name] = value
        script = Path(sys.executable).with_name("cleanlist-pandas")
        cli = [str(script)] if script.exists() else [sys.executable, "-m", "cleanlist_pandas.cli"]
        bal = subprocess.run([*cli, "balance"], capture_output=True, text=True, env=pasted,
                             timeout=60)  # fmt: skip
        assert bal.returncode == 0, bal.stderr
        assert "credits: 10,000.00" in bal.stdout and info["organization_id"] in bal.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    return info, lines


def test_both_sandbox_commands_print_ready_to_paste_export_lines() -> None:
    """`cleanlist-pandas sandbox` and `python -m cleanlist_pandas.sandbox` print the same
    `export` lines; pasted, they point the command line at the sandbox. The key printed is
    the sandbox's own: a real key in the environment is never shown."""
    real = "clapi_live_real_key_never_printed_0123456789"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANLIST_")}
    env["CLEANLIST_API_KEY"] = real
    script = Path(sys.executable).with_name("cleanlist-pandas")
    console = [str(script)] if script.exists() else [sys.executable, "-m", "cleanlist_pandas.cli"]
    shapes = []
    for cmd in ([*console, "sandbox"], [sys.executable, "-m", "cleanlist_pandas.sandbox"]):
        info, lines = _export_lines([*cmd, "--port", "0", "--time-scale", "0.01"], env)
        assert f"export CLEANLIST_API_KEY={info['api_key']}" in lines
        assert f"export CLEANLIST_BASE_URL={info['base_url']}" in lines
        assert info["api_key"].startswith("clapi_") and info["api_key"] != real
        assert info["base_url"].startswith("http://127.0.0.1:")
        assert real not in "\n".join(lines)
        shapes.append([line.split("=")[0].split(":")[0] for line in lines])
    assert shapes[0] == shapes[1]  # both commands print the same lines


def test_sandbox_refuses_to_print_the_real_key_of_the_environment() -> None:
    real = "clapi_live_real_key_never_printed_0123456789"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANLIST_")}
    env["CLEANLIST_API_KEY"] = real
    proc = subprocess.run(
        [sys.executable, "-m", "cleanlist_pandas.sandbox", "--port", "0", "--api-key", real],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and real not in proc.stdout + proc.stderr
    assert "$CLEANLIST_API_KEY" in proc.stderr and "made-up" in proc.stderr
    # the key a sandbox printed before (its base URL local) may be given again
    env["CLEANLIST_BASE_URL"] = "http://127.0.0.1:8765/api/v1/public"
    info, _ = _export_lines([sys.executable, "-m", "cleanlist_pandas.sandbox", "--port", "0",
                             "--api-key", real], env)  # fmt: skip
    assert info["api_key"] == real
