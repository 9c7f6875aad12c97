"""The notebook runs top to bottom; the CLI works on a messy CSV; the panel renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cleanlist_pandas as clp
from cleanlist_pandas.cli import main, read_leads
from cleanlist_pandas.sandbox.config import BALANCE_SHAPES, DELIVERIES_SHAPES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "cache"))


def test_notebook_executes(tmp_path: Path) -> None:
    pytest.importorskip("nbconvert")
    pytest.importorskip("ipykernel")
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    if jupyter is None:
        pytest.skip("jupyter is not installed")
    out = tmp_path / "executed.ipynb"
    proc = subprocess.run(
        [
            jupyter,
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.timeout=120",
            str(ROOT / "notebooks" / "quickstart.ipynb"),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import nbformat

    nb = nbformat.read(out, 4)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "credits spent by the re-run: 0" in text
    assert "clapi_" not in text.replace("clapi_…", "")  # only masked keys
    # a run with a progress bar leaves its final numbers as static output too (the widget's
    # state is not saved with the notebook): text/plain and text/html with the picture
    # every run leaves its final numbers as static output (text/plain and text/html with the
    # picture), and no widget: a widget's state is not saved with the notebook
    runs = [c for c in nb.cells if "df.cleanlist.enrich(" in c.source]
    assert len(runs) == 3
    job_ids = []
    for cell in runs:
        static = [o for o in cell.outputs if "Cleanlist job" in o.get("data", {}).get(
            "text/html", "")]
        assert static, f"no static summary left by {cell.source!r}"
        assert "background-color:#1b9e77" in static[0]["data"]["text/html"]
        assert "credits spent" in static[0]["data"]["text/plain"]
        job_ids += re.findall(r"Cleanlist job (job_\w+)", static[0]["data"]["text/plain"])
        assert not [o for o in cell.outputs
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    from nbconvert import HTMLExporter

    page, _ = HTMLExporter().from_notebook_node(nb)
    assert page.count("credits spent") >= 3 and "background-color:#1b9e77" in page
    assert all(job_id in page for job_id in job_ids) and len(set(job_ids)) == 3


MESSY = (
    "\ufeffFirst Name;Last Name;Website;LinkedIn\n"  # BOM, semicolons
    "Ada;Lovelace;https://www.acme.com;\n"
    ";;;linkedin.com/in/someone\n"
    "Bob;;b.com;\n"
    "Ada;Lovelace;acme.com;\n"
    "Zoë;Müller;https://ünï.de/x;\n"
)


def test_cli_enrich_messy_csv_on_sandbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "leads.csv"
    src.write_text(MESSY, encoding="utf-8")
    df = read_leads(src)
    assert list(df.columns) == ["First Name", "Last Name", "Website", "LinkedIn"]
    assert main(["estimate", str(src), "--sandbox"]) == 0
    assert "to send" in capsys.readouterr().out
    out_csv = tmp_path / "out.csv"
    assert main(["enrich", str(src), "--sandbox", "-o", str(out_csv), "--no-progress"]) == 0
    assert out_csv.read_bytes().startswith("\ufeffFirst Name;".encode())  # the input's format
    res = pd.read_csv(out_csv, dtype="string", sep=";", encoding="utf-8-sig")
    assert len(res) == 5 and "cl_status" in res.columns
    assert res["cl_status"].tolist()[2] == "skipped"
    assert "missing last_name" in res["cl_error"].tolist()[2]
    printed = capsys.readouterr().out
    assert "Wrote 5 rows" in printed


def test_cli_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "leads.csv"
    src.write_text("Website,Domain,First Name,Last Name\na.com,b.com,A,B\n", encoding="utf-8")
    assert main(["estimate", str(src), "--sandbox"]) == 2
    err = capsys.readouterr().err
    assert "Website" in err and "Domain" in err  # ambiguous: names the candidates
    assert main(["enrich", str(tmp_path / "nope.csv"), "--sandbox"]) == 2
    assert main(["enrich", str(src), "--sandbox", "-c", "nonsense"]) == 2
    monkey_env = {k: v for k, v in os.environ.items() if not k.startswith("CLEANLIST_API")}
    proc = subprocess.run(
        [sys.executable, "-m", "cleanlist_pandas.cli", "balance"],
        capture_output=True,
        text=True,
        env=monkey_env,
        timeout=60,
    )
    assert proc.returncode != 0 and "CLEANLIST_API_KEY" in proc.stderr


@pytest.mark.parametrize(("balance_shape", "deliveries_shape"),
                         list(zip(BALANCE_SHAPES, DELIVERIES_SHAPES, strict=True)))
def test_cli_quickstart_commands(sandbox: clp.Sandbox, capsys: pytest.CaptureFixture[str],
                                 balance_shape: str, deliveries_shape: str) -> None:
    sandbox.config.balance_shape = balance_shape  # both documented shapes (spec §3.2, §3.5)
    sandbox.config.deliveries_shape = deliveries_shape
    conn = ["--api-key", sandbox.api_key, "--base-url", sandbox.base_url]
    assert main(["validate-key", *conn]) == 0
    out = capsys.readouterr().out
    assert "valid: True" in out and sandbox.api_key not in out
    assert main(["balance", *conn]) == 0
    assert "10,000.00" in capsys.readouterr().out
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12)
    sub = c.submit([{"linkedin_url": "https://www.linkedin.com/in/x"}])
    c.close()
    assert main(["status", sub.workflow_id, *conn]) == 0
    assert sub.workflow_id in capsys.readouterr().out
    assert main(["deliveries", sub.workflow_id, *conn]) == 0
    assert "no delivery attempts" in capsys.readouterr().out
    assert main(["jobs"]) == 0
    assert main(["cache", "info"]) == 0


@pytest.mark.parametrize("balance_shape", BALANCE_SHAPES)
def test_panel_renders_without_io_and_masks_the_key(sandbox: clp.Sandbox,
                                                    balance_shape: str) -> None:
    sandbox.config.balance_shape = balance_shape  # both documented shapes (spec §3.2)
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12)
    p = clp.Panel(c)
    before = sandbox.stats()["total"]
    text, html = repr(p), p._repr_html_()
    assert sandbox.stats()["total"] == before  # reprs do no I/O
    assert "not checked" in text
    p.refresh()
    text, html = repr(p), p._repr_html_()
    assert "10,000.00" in text and "✓ valid" in text and "<table>" in html
    assert sandbox.api_key not in text + html
    sandbox.revoke_key(sandbox.api_key)
    p.refresh()
    assert "refused" in repr(p) and "AuthenticationError" in repr(p)
    c.close()


def test_panel_follows_running_jobs_live_and_rereads_the_balance_after(
    make_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ipywidgets")
    import cleanlist_pandas.views.widgets as widgets

    monkeypatch.setattr(widgets, "FOLLOW_INTERVAL_S", 0.02)
    sb = make_sandbox(time_scale=0.05)
    c = clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=3.0, burst=1)
    p = clp.panel(c)

    class Handle:  # what IPython's display(..., display_id=True) returns, as the panel uses it
        value = ""

        def update(self, bundle: dict[str, str], raw: bool) -> None:
            assert raw and set(bundle) == {"text/plain", "text/html"}  # no widget: no kernel
            self.value = bundle["text/html"]  # needed to read it tomorrow

    body = Handle()
    p.follow(body)
    df = pd.DataFrame({"First Name": [f"A{i}" for i in range(1000)],
                       "Last Name": [f"B{i}" for i in range(1000)],
                       "Website": [f"c{i % 50}.com" for i in range(1000)]})
    job = df.cleanlist.enrich(client=c, wait=False, progress=False)
    seen: set[str] = set()
    while not job.done():
        seen.add(body.value)
        time.sleep(0.02)
    assert any(job.job_id in v and "running" in v for v in seen)  # no click needed
    assert len({v for v in seen if job.job_id in v}) > 1  # its counts moved
    job.result(timeout=60)
    spent = sum(r["credits"] for r in sb.ledger())
    deadline = time.monotonic() + 10
    while f"{10_000 - spent:,.2f}" not in body.value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"{10_000 - spent:,.2f}" in body.value  # the balance read again after the job
    c.close()


def test_panel_rereads_the_balance_after_a_blocking_run(
    sandbox: clp.Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cleanlist_pandas.views.widgets as widgets

    monkeypatch.setattr(widgets, "FOLLOW_INTERVAL_S", 0.02)
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12)
    p = clp.panel(c)

    class Handle:
        value = ""

        def update(self, bundle: dict[str, str], raw: bool) -> None:
            self.value = bundle["text/plain"]

    shown = Handle()
    p.follow(shown)
    time.sleep(0.1)
    df = pd.DataFrame({"First Name": ["Ann", "Bo"], "Last Name": ["Lee", "Chen"],
                       "Website": ["acme.com", "initech.com"]})
    out = df.cleanlist.enrich("full", client=c, progress=False)  # blocking: never a job handle
    left = 10_000 - float(out["cl_credits"].fillna(0).sum())
    assert left < 10_000
    deadline = time.monotonic() + 10
    while f"{left:,.2f}" not in shown.value and time.monotonic() < deadline:
        time.sleep(0.02)
    assert f"{left:,.2f}" in shown.value
    c.close()


def test_panel_says_a_failed_check_failed(sandbox: clp.Sandbox) -> None:
    c = clp.Client(api_key=sandbox.api_key, base_url=sandbox.base_url, per=0.12, max_retries=0)
    sandbox.inject_fault("validate-key", "status", status=503, times=1)
    p = clp.panel(c)
    assert "check failed: ServerError" in repr(p) and "not checked" not in repr(p)
    c.close()


def test_the_demo_runs_every_step_and_its_numbers_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's first command ends in `cleanlist-pandas demo`: every step runs, the
    re-run is free, and the spend ledger's total is what the enrich step said it spent."""
    assert main(["demo", "--time-scale", "0.01"]) == 0
    out = capsys.readouterr().out
    for step in ("== 1.", "== 2.", "== 3.", "== 4.", "Done."):
        assert step in out
    assert re.search(r"webhook received: \S+ completed\S*, 3 results", out)
    assert "identical result: True; bulk requests sent: 0; credits spent: 0" in out
    spent = re.search(r"credits spent: ([\d,]+); balance now", out)
    total = re.search(r"total: ([\d,]+) credits spent", out)
    assert spent and total and spent.group(1) == total.group(1) and spent.group(1) != "0"
    assert "clapi_" not in out.replace("clapi_…", "")  # only the masked key
