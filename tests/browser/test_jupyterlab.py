"""The quickstart notebook in a real JupyterLab, in headless Chromium, as a user sees it.

Runs ``notebooks/quickstart.ipynb`` top to bottom at the real service's pace (the sandbox at
``time_scale`` 1) and asserts what a person would look for:

- no "Error displaying widget" and no traceback on the page;
- the progress bar's elapsed clock advances while a run goes on;
- the panel lists the running ``wait=False`` job and its counts advance, with no click;
- after the kernel is shut down and the saved notebook reopened, every run's final numbers
  are still there (static ``text/html``, no kernel needed).

A second test interrupts a run from the toolbar's stop button (Kernel → Interrupt) and checks
that the cell shows a few plain lines, not a traceback; that ``clp.last_result()`` in the
next cell shows the rows (done ones enriched, the rest pending); and that running the same
call again resumes for free (no bulk request sent again, 0 credits for the rows done before).

Screenshots go to ``artifacts/browser/`` (``CLEANLIST_ARTIFACTS`` overrides), which CI keeps.
Needs Debian's ``chromium`` (``scripts/_leg.sh`` installs it when run as root), Playwright
and JupyterLab (the ``browser`` extra). Where one is missing the test is skipped, and the
reason names it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
ARTIFACTS = Path(os.environ.get("CLEANLIST_ARTIFACTS", ROOT / "artifacts")) / "browser"

pytestmark = pytest.mark.timeout(600)


def _chromium() -> str:
    for name in (os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    pytest.skip("no Chromium: Debian's `chromium` package is not installed "
                "(`apt-get install chromium`; scripts/_leg.sh installs it when run as root)")


def _needs() -> tuple[str, str, Any]:
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[browser]')")
    jupyter = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent))
    if jupyter is None:
        pytest.skip("JupyterLab is not installed (pip install -e '.[browser]')")
    return chromium, jupyter, sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _jupyterlab(jupyter: str, root: Path, notebook: str = "quickstart.ipynb") -> Iterator[str]:
    """A JupyterLab server on a free port, serving ``root``; yields the URL of ``notebook``."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "CLEANLIST_DEMO_TIME_SCALE": "1",  # the real service's pace
        "CLEANLIST_CACHE_DIR": str(root / "cache"),
        "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
        "IPYTHONDIR": str(root / "ipython"),
    }
    # every cell in the DOM (JupyterLab 4 detaches cells scrolled out of view by default)
    settings = root / "jupyter-config" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    # and no "news?" toast over the outputs in the screenshots
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log = (root / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [jupyter, "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start: "
                                       + (root / "jupyterlab.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        yield f"{base}/lab/tree/{notebook}?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# JavaScript run in the page (``window.jupyterapp`` is exposed by the flag above).
_NOTEBOOK = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
_KERNEL_IDLE = (f"() => {{ const w = {_NOTEBOOK}; const k = w && w.sessionContext && "
                "w.sessionContext.session && w.sessionContext.session.kernel; "
                "return !!k && k.status === 'idle'; }")
_CELLS = ("() => Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell')).map(c => ({"
          "code: c.classList.contains('jp-CodeCell'), "
          "source: (c.querySelector('.jp-InputArea-editor') || {innerText: ''}).innerText, "
          "prompt: (c.querySelector('.jp-InputPrompt') || {innerText: ''}).innerText, "
          "output: (c.querySelector('.jp-OutputArea') || {innerText: ''}).innerText}))")


class Page:
    """The JupyterLab page, read as text (what a person reads)."""

    def __init__(self, page: Any, prefix: str = "") -> None:
        self.page = page
        self.shots = 0
        self.prefix = prefix  # of the screenshots' names

    def cells(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate(_CELLS))

    def cell(self, needle: str) -> dict[str, Any]:
        return next(c for c in self.cells() if needle in c["source"])

    def command(self, name: str) -> None:
        """Start a JupyterLab command; does not wait for it to finish (run-all would)."""
        self.page.evaluate(
            f"() => {{ window.jupyterapp.commands.execute({json.dumps(name)}); }}")

    def wait(self, what: str, timeout_s: float = 120) -> None:
        self.page.wait_for_function(what, timeout=timeout_s * 1000, polling=250)

    def shot(self, name: str, needle: str | None = None) -> Path:
        """A screenshot (of the window, scrolled to the cell whose source holds ``needle``)."""
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.prefix}{self.shots:02d}-{name}.png"
        if needle is not None:
            self.locate(needle).evaluate("c => c.scrollIntoView({block: 'start'})")
        self.page.screenshot(path=str(path))
        return path

    def watch(self, needle: str, until: Callable[[dict[str, Any]], bool],
              timeout_s: float = 180, shoot: tuple[str, str] | None = None) -> list[str]:
        """Read the output of the cell whose source holds ``needle`` about 4x a second
        until ``until(cell)``; the outputs seen, in order. ``shoot=(name, text)``: one
        screenshot the first time the output holds ``text``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            cell = self.cell(needle)
            if shoot and shoot[1] in cell["output"]:
                self.shot(shoot[0], needle)
                shoot = None
            if not seen or cell["output"] != seen[-1]:
                seen.append(cell["output"])
            if until(cell):
                return seen
            time.sleep(0.25)
        raise AssertionError(f"timed out watching {needle!r}; last output: {seen[-1:]}")

    def locate(self, needle: str) -> Any:
        """The first cell whose *source* holds ``needle`` (an output may quote it too)."""
        source = self.page.locator(".jp-InputArea-editor", has_text=needle)
        return self.page.locator(".jp-Notebook .jp-Cell").filter(has=source).first

    def run_cell(self, needle: str) -> None:
        """Select the cell whose source holds ``needle`` and run it (as Ctrl-Enter does)."""
        self.locate(needle).locator(".jp-InputArea-editor").click()
        self.command("notebook:run-cell")

    def problems(self) -> list[str]:
        text = self.page.inner_text("body")
        return [p for p in ("Error displaying widget", "Traceback", "model not found")
                if p in text]


def _ran(cell: dict[str, Any]) -> bool:
    return bool(re.fullmatch(r"\[\d+\]:", cell["prompt"].strip()))


_ELAPSED = re.compile(r"\[(\d+):(\d\d)(?::(\d\d))?[<\]]")


def _elapsed(text: str) -> int | None:
    m = _ELAPSED.search(text)
    if not m:
        return None
    parts = [int(g) for g in m.groups() if g is not None]
    return sum(v * 60 ** i for i, v in enumerate(reversed(parts)))


_COUNTS = re.compile(r"running: (\d+)/(\d+)")


def test_quickstart_in_jupyterlab(tmp_path: Path) -> None:
    chromium, jupyter, sync_playwright = _needs()
    shutil.copy(NOTEBOOK, tmp_path / "quickstart.ipynb")
    with _jupyterlab(jupyter, tmp_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            lab = Page(browser.new_page(viewport={"width": 1400, "height": 1000}))
            lab.page.goto(url)
            lab.wait(_KERNEL_IDLE, 120)
            lab.shot("opened")
            lab.command("notebook:run-all-cells")

            # 1. the bar of the "full" run: its clock ticks while the run goes on
            bar = lab.watch('enrich("full"', _ran, shoot=("full-run-live", "running"))
            clock = [t for t in map(_elapsed, bar) if t is not None]
            lab.shot("full-run-done", 'enrich("full"')
            assert len(set(clock)) >= 3 and clock == sorted(clock), (
                f"the bar's elapsed clock did not advance: {bar}")

            # 2. the panel lists the wait=False job, its counts advancing, with no click
            panel = lab.watch("clp.panel()", lambda _c: _ran(lab.cell("job.result()")),
                              shoot=("panel-live", "running:"))
            counts = [tuple(map(int, m)) for p in panel for m in _COUNTS.findall(p)]
            lab.shot("wait-false-job-done", "clp.panel()")
            assert len(set(counts)) >= 2 and counts == sorted(counts), (
                f"the panel did not follow the running job: {panel}")

            lab.wait(_KERNEL_IDLE, 180)
            lab.watch("sb.stop()", _ran, 60)
            lab.shot("ran-all")
            assert not lab.problems(), lab.problems()
            ran = [c for c in lab.cells() if c["code"]]
            assert all(_ran(c) for c in ran), [c["prompt"] for c in ran]

            # 3. save, shut the kernel down, reopen: the final numbers need no kernel
            lab.command("docmanager:save")
            lab.page.wait_for_timeout(1500)
            lab.command("kernelmenu:shutdown")
            lab.page.wait_for_timeout(1500)
            lab.page.goto(url.replace("/lab/tree/", "/lab/tree/") + "&reset")
            lab.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            lab.page.wait_for_timeout(3000)
            lab.shot("reopened", 'enrich("full"')
            lab.shot("reopened-panel", "clp.panel()")
            assert not lab.problems(), lab.problems()
            runs = [c for c in lab.cells() if "df.cleanlist.enrich(" in c["source"]]
            assert len(runs) == 3
            for run in runs:  # rows by status, credits against the worst case, time, job id
                out = run["output"]
                assert re.search(r"Cleanlist job job_\w+ \(\w+\): \d+ rows in [\d.]+ s", out)
                assert "credits spent" in out and "enriched" in out, out
            assert "100%" in runs[0]["output"]  # the saved bar is its last state, not its first
            # the pilot's rates and the spend chart are static HTML too
            lab.shot("reopened-pilot", "df.cleanlist.pilot(")
            assert "expected credits" in lab.cell("df.cleanlist.pilot(")["output"]
            lab.shot("reopened-spend", "clp.spend_chart(")
            assert "credits spent" in lab.cell("clp.spend_chart(")["output"]
        finally:
            browser.close()

    # the .ipynb itself: static final numbers, and no widget left where a run was
    saved = json.loads((tmp_path / "quickstart.ipynb").read_text())
    code = [c for c in saved["cells"] if c["cell_type"] == "code"]
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    for cell in code:
        if "df.cleanlist.enrich(" in "".join(cell["source"]):
            data = [o.get("data", {}) for o in cell["outputs"]]
            assert not [d for d in data if "application/vnd.jupyter.widget-view+json" in d]
            assert any("credits spent" in "".join(d.get("text/plain", "")) for d in data)


# -- Kernel -> Interrupt: a short message, the rows one call away, a free resume ----------
_INTERRUPT_CELLS = [
    # the real service's pace (time_scale 1), with a wider spread of task times, and 251
    # leads: a chunk of 250 (its slowest task ends ~15 s in) and a chunk of 1 (~3 s), so
    # the interrupt lands with one workflow collected and one still running
    "import pandas as pd, cleanlist_pandas as clp\n"
    "sb = clp.Sandbox(credits=5_000, time_scale=1.0, seed=0,\n"
    "                 config=clp.SandboxConfig(task_time_sigma=0.6)).start()\n"
    "clp.configure(api_key=sb.api_key, base_url=sb.base_url)\n"
    "df = pd.DataFrame({'First Name': [f'Ann{i}' for i in range(251)],\n"
    "                   'Last Name': [f'Lee{i}' for i in range(251)],\n"
    "                   'Website': [f'co{i % 97}.com' for i in range(251)]})",
    "out = df.cleanlist.enrich('partial')",
    "out = clp.last_result()\n"
    "print('rows by status:', out['cl_status'].value_counts().to_dict())\n"
    "out.groupby('cl_status').head(2)[['First Name', 'cl_email', 'cl_status', 'cl_credits']]",
    "bulk_before = sb.stats()['by_endpoint']['POST /enrich/bulk']\n"
    "again = df.cleanlist.enrich('partial')",
    "done = out['cl_status'].isin(['enriched', 'not_found', 'failed']).to_numpy()\n"
    "print('resumed: bulk requests sent again:',\n"
    "      sum(sb.stats()['by_endpoint']['POST /enrich/bulk'].values())\n"
    "      - sum(bulk_before.values()))\n"
    "print('resumed: credits for the rows done before:',\n"
    "      int(again.loc[done, 'cl_credits'].fillna(0).sum()), 'of', int(done.sum()))\n"
    "print('resumed: credits for the rest:', int(again.loc[~done, 'cl_credits'].fillna(0).sum()))\n"
    "print('resumed: statuses:', again['cl_status'].value_counts().to_dict())",
    "sb.stop()",
]
_RUNNING = re.compile(r"\b(\d+)\s+workflows?\s+running")  # \s: tqdm pads with U+2007
_RESUMED = re.compile(
    r"bulk requests sent again: (\d+)\s+resumed: credits for the rows done before: (\d+) of "
    r"(\d+)\s+resumed: credits for the rest: (\d+)")
_SPENT = re.compile(r"credits spent\s+([\d,]+) of ([\d,]+) worst case")


def _status_counts(text: str) -> dict[str, int]:
    m = re.search(r"rows by status: (\{[^}]*\})", text)
    assert m, text
    return {str(k): int(v) for k, v in json.loads(m.group(1).replace("'", '"')).items()}


def test_interrupt_in_jupyterlab(tmp_path: Path) -> None:
    chromium, jupyter, sync_playwright = _needs()
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in _INTERRUPT_CELLS],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}},
    )
    nbformat.write(nb, str(tmp_path / "interrupt.ipynb"))
    with _jupyterlab(jupyter, tmp_path, "interrupt.ipynb") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            lab = Page(browser.new_page(viewport={"width": 1400, "height": 1000}),
                       prefix="interrupt-")
            lab.page.goto(url)
            lab.wait(_KERNEL_IDLE, 120)
            lab.run_cell("clp.Sandbox(")
            lab.watch("clp.Sandbox(", _ran, 120)

            # 1. run, and interrupt from the toolbar once one workflow of two is collected
            run = "out = df.cleanlist.enrich("
            lab.run_cell(run)
            seen: list[int] = []

            def one_collected(cell: dict[str, Any]) -> bool:
                seen.extend(int(n) for n in _RUNNING.findall(cell["output"]))
                return 2 in seen and seen[-1] == 1
            lab.watch(run, one_collected, 120, shoot=("running", "running"))
            lab.page.locator(
                '.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]'
            ).first.click()
            lab.watch(run, lambda c: _ran(c) and "Interrupted" in c["output"], 60)
            lab.wait(_KERNEL_IDLE, 60)
            lab.shot("message", run)
            shown = lab.cell(run)["output"]
            assert not lab.problems(), (lab.problems(), shown)
            error = lab.locate(run).locator(
                "[data-mime-type='application/vnd.jupyter.stderr']").inner_text()
            lines = [line for line in error.splitlines() if line.strip()]
            assert 3 <= len(lines) <= 6, error  # a few lines, not a screen of frames
            assert lines[0].startswith("Interrupted; nothing paid for is lost."), error
            assert re.search(r"\d+ of 251 rows done", error) and "pending" in error, error
            assert "The rows so far:  out = clp.last_result()" in error, error
            assert "Resume for free:  run the same call again" in error, error
            assert "File " not in error and ".py" not in error, error
            # the bar above it ends on what happened, not on "1 workflow running, ~1s left"
            assert "stopped: interrupted" in shown and not _RUNNING.search(shown), shown

            # 2. the next cell: the rows so far, done ones enriched, the rest pending
            rows = "out = clp.last_result()"
            lab.run_cell(rows)
            cell = lab.watch(rows, _ran, 60)[-1]
            lab.shot("last-result", rows)
            counts = _status_counts(cell)
            done = sum(counts.get(k, 0) for k in ("enriched", "not_found", "failed"))
            assert sum(counts.values()) == 251, counts
            assert counts.get("enriched", 0) > 0 and counts.get("pending", 0) > 0, counts
            assert done + counts["pending"] == 251, counts  # both chunks were out
            assert "enriched" in cell and "pending" in cell

            # 3. the same call again: nothing resent, the rows done before cost nothing
            rerun = "again = df.cleanlist.enrich("
            lab.run_cell(rerun)
            summary = lab.watch(rerun, _ran, 120)[-1]
            check = "resumed: bulk requests"
            lab.run_cell(check)
            printed = lab.watch(check, _ran, 60)[-1]
            lab.shot("resumed", rerun)
            m = _RESUMED.search(printed)
            assert m, printed
            resent, before, n_done, rest = map(int, m.groups())
            assert resent == 0 and before == 0 and n_done == done, printed
            spent = _SPENT.search(summary)
            assert spent, summary
            paid, worst = (int(g.replace(",", "")) for g in spent.groups())
            assert paid == rest, (summary, printed)  # the run paid for the rest only
            assert worst >= paid and worst > 0, summary  # never "163 of 0 worst case"
            assert "pending" not in printed.split("statuses:")[-1], printed
            lab.run_cell("sb.stop()")
            lab.watch("sb.stop()", _ran, 60)
            assert not lab.problems(), lab.problems()
        finally:
            browser.close()
