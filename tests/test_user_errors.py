"""Issue 19: every error a notebook user can act on shows short in IPython/Jupyter.

Every argument check of ours raises a ``UserValueError``/``UserTypeError``/``UserKeyError``
(still a ``ValueError``/``TypeError``/``KeyError`` for the user's ``except``), which IPython
shows as its message, not as ~40 lines of internal frames; a typo gets the closest value.
A scan of the source keeps a bare ``raise ValueError`` from coming back, and a real kernel
(nbclient) shows what a notebook shows, an interrupted run included.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cleanlist_pandas as clp
from cleanlist_pandas import errors as E
from cleanlist_pandas.sandbox import Sandbox

PKG = Path(clp.__file__).resolve().parent
LEADS = pd.DataFrame(
    {"First Name": ["Ada", "Bob"], "Last Name": ["L", "M"], "Website": ["acme.com", "b.io"]}
)
PHONES = pd.DataFrame({"LinkedIn": ["linkedin.com/in/ada"], "Mobile": [None]})


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "cache"))


def _client_wait(**kw: Any) -> None:
    with clp.Client(api_key="clapi_" + "x" * 32, base_url="http://127.0.0.1:9") as c:
        c.wait("wf_1", **kw)


def _closed_client() -> None:
    c = clp.Client(api_key="clapi_" + "x" * 32, base_url="http://127.0.0.1:9")
    c.close()
    c.balance()


def _not_utf8(tmp: Path) -> None:
    from cleanlist_pandas._csvio import read_csv

    path = tmp / "bad.csv"
    path.write_bytes(b"a,b\n\x81\x8d\x8f\x90\x9d,1\n")  # undefined in cp1252 too
    read_csv(path)


def _polars_enrich() -> None:
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    pl.from_pandas(LEADS).cleanlist.enrich("ful")


# (id, call, the builtin it still is, words the message must hold)
CASES: list[tuple[str, Callable[[Path], Any], type[Exception], str]] = [
    ("enrich-type-typo", lambda _t: LEADS.cleanlist.enrich("ful"), ValueError,
     "enrichment_type='ful' is not one of ['none', 'partial', 'phone_only', 'full', "
     "'prospecting_only']; did you mean 'full'?"),
    ("enrich-errors-typo", lambda _t: LEADS.cleanlist.enrich(errors="rasie"), ValueError,
     "did you mean 'raise'?"),
    ("enrich-max-credits", lambda _t: LEADS.cleanlist.enrich(max_credits=-1), ValueError,
     "max_credits must be >= 0, got -1"),
    ("enrich-only-missing-typo", lambda _t: LEADS.cleanlist.enrich(only_missing="mail"),
     ValueError, "did you mean 'email'?"),
    ("enrich-only-missing-kind", lambda _t: LEADS.cleanlist.enrich(only_missing=5),
     ValueError, "only_missing=5: use 'email', 'phone'"),
    ("enrich-fill-field", lambda _t: LEADS.cleanlist.enrich(fill={"phon": "x"}), ValueError,
     "did you mean 'phone'?"),
    ("enrich-fill-type", lambda _t: PHONES.cleanlist.enrich("partial", fill={"phone": "Mobile"}),
     ValueError, "finds no phone"),
    ("estimate-type-typo", lambda _t: LEADS.cleanlist.estimate("Full"), ValueError,
     "did you mean 'full'?"),
    ("pilot-n", lambda _t: LEADS.cleanlist.pilot(0), ValueError, "n must be a whole number"),
    ("pilot-seed", lambda _t: LEADS.cleanlist.pilot(2, seed="x"), ValueError, "seed must be"),
    ("pilot-nothing", lambda _t: LEADS.iloc[:0].cleanlist.pilot(2), ValueError,
     "no contact to sample"),
    ("resume-unknown-job", lambda _t: LEADS.cleanlist.resume("job_nope"), KeyError,
     "no journaled job 'job_nope'"),
    ("resume-cache-dir", lambda t: LEADS.cleanlist.resume("job_x", cache_dir=t), TypeError,
     "resume() takes no cache_dir="),
    ("spend-by-typo", lambda _t: clp.spend(by="days"), ValueError, "did you mean 'day'?"),
    ("spend-since", lambda _t: clp.spend(since="yesterday"), ValueError, "is not a date"),
    ("spend-until-type", lambda _t: clp.spend(until=5), TypeError, "until must be a date"),
    ("spend-chart-last", lambda _t: clp.spend_chart(last=0), ValueError, "last must be"),
    ("forget-nothing", lambda _t: clp.forget(), ValueError, "needs what the person knows"),
    ("forget-type", lambda _t: clp.forget(email=5), TypeError, "email must be a str"),
    ("forget-blank", lambda _t: clp.forget(first_name=" "), ValueError, "first_name is blank"),
    ("forget-linkedin", lambda _t: clp.forget(linkedin_url="x"), ValueError,
     "not a LinkedIn profile"),
    ("forget-email", lambda _t: clp.forget(email="x"), ValueError, "not an e-mail address"),
    ("client-wait", lambda _t: _client_wait(timeout=-1), ValueError,
     "poll_interval and timeout must be >= 0"),
    ("pacer", lambda _t: clp.Pacer(rate=0), ValueError, "rate >= 1"),
    ("webhook-host", lambda _t: clp.WebhookReceiver(host="192.0.2.1"), ValueError,
     "loopback hosts only"),
    ("webhook-max-body", lambda _t: clp.WebhookReceiver(max_body=0), ValueError, "max_body"),
    ("webhook-payload", lambda _t: clp.WebhookPayload.from_dict({}), ValueError,
     "no workflow_id"),
    ("plan-type-typo", lambda _t: _plan("ful"), ValueError, "did you mean 'full'?"),
    ("map-contacts-type", lambda _t: _map_contacts([1, 2]), TypeError, "expects a pandas"),
    ("value-column", lambda _t: _value_column("mail"), ValueError, "'mail' is not one of"),
    ("csv-not-utf8", _not_utf8, ValueError, "not UTF-8 nor cp1252"),
    ("polars-type-typo", lambda _t: _polars_enrich(), ValueError, "did you mean 'full'?"),
]


def _plan(enrichment_type: str) -> None:
    from cleanlist_pandas.frame import map_contacts, plan

    plan(map_contacts(LEADS), enrichment_type)


def _map_contacts(obj: Any) -> None:
    from cleanlist_pandas.frame import map_contacts

    map_contacts(obj)


def _value_column(field: str) -> None:
    from cleanlist_pandas.frame.mapping import value_column

    value_column(LEADS, field)


@pytest.mark.parametrize(("call", "builtin", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_argument_checks_are_short_user_errors(
    call: Callable[[Path], Any], builtin: type[Exception], words: str, tmp_path: Path
) -> None:
    with pytest.raises(builtin) as ei:  # the user's `except ValueError` still catches it
        call(tmp_path)
    exc = ei.value
    assert isinstance(exc, E.CleanlistError) and exc.user_error, type(exc)
    lines = exc._render_traceback_()  # what IPython shows instead of the frames
    text = " ".join(lines)
    assert lines[0].startswith(f"{builtin.__name__}: "), lines
    assert words in text, text
    assert "Traceback" not in text and 'File "' not in text


def test_closed_client_is_a_user_error() -> None:
    with pytest.raises(E.UserError, match="This client is closed; create a new one"):
        _closed_client()


def test_did_you_mean() -> None:
    assert E.did_you_mean("ful", ["partial", "full"]) == "; did you mean 'full'?"
    assert E.did_you_mean("PARTIAL", ["partial", "full"]) == "; did you mean 'partial'?"
    assert E.did_you_mean("zzz", ["partial", "full"]) == ""
    assert E.did_you_mean(3, ["partial"]) == ""


def test_a_key_error_reads_as_text() -> None:
    err = E.UserKeyError("no journaled job 'job_x'")
    assert str(err) == "no journaled job 'job_x'" and isinstance(err, KeyError)
    assert str(KeyError("x")) == "'x'"  # what a plain KeyError would have shown


# -- the source: no bare raise of a builtin for a user's mistake ------------------------
#: Plain ``raise ValueError`` left on purpose: invariants of our own data (a bug if they ever
#: fire, so they keep their traceback). (file, enclosing function)
INTERNAL_INVARIANTS = {
    ("polars.py", "with_output_columns"),  # the run's frame and the caller's differ in rows
    ("frame/plan.py", "plan"),  # "the selection has N rows, the mapping M" only
    ("frame/merge.py", "_flatten"),
    ("frame/merge.py", "add"),
    ("frame/merge.py", "_gather"),
    ("frame/merge.py", "assemble"),
    ("frame/merge.py", "build_output"),
}
BUILTINS = ("ValueError", "TypeError", "KeyError")


def _bare_raises() -> list[tuple[str, str, int, str]]:
    """Every ``raise ValueError(...)`` (TypeError, KeyError) in the package, as (file,
    innermost enclosing function, line, the call)."""
    found: list[tuple[str, str, int, str]] = []

    class Visitor(ast.NodeVisitor):
        def __init__(self, rel: str) -> None:
            self.rel, self.stack = rel, ["<module>"]

        def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
            self.stack.append(node.name)
            self.generic_visit(node)
            self.stack.pop()

        visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Raise(self, node: ast.Raise) -> None:
            call = node.exc
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in BUILTINS
            ):
                found.append((self.rel, self.stack[-1], node.lineno, ast.unparse(call)[:90]))

    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("sandbox/"):
            # the sandbox shares nothing with the package but _constants.py (README,
            # Architecture), so its own checks cannot use errors.py
            continue
        Visitor(rel).visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_no_argument_check_raises_a_bare_builtin() -> None:
    bare = _bare_raises()
    unexpected = [b for b in bare if (b[0], b[1]) not in INTERNAL_INVARIANTS]
    assert not unexpected, (
        "raise UserValueError / UserTypeError (cleanlist_pandas.errors) for a user's "
        f"mistake, so a notebook shows it short: {unexpected}"
    )
    plan_raises = [b for b in bare if b[:2] == ("frame/plan.py", "plan")]
    assert len(plan_raises) == 1 and "the selection has" in plan_raises[0][3], plan_raises


def test_the_scan_sees_a_bare_raise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "pkg"
    fake.mkdir()
    (fake / "m.py").write_text("def f(x):\n    if x:\n        raise ValueError('bad x')\n")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    assert [b[:3] for b in _bare_raises()] == [("m.py", "f", 3)]


# -- a real kernel: what the notebook shows ----------------------------------------------
def test_notebook_shows_argument_errors_and_an_interrupt_short(
    make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    sb = make_sandbox(time_scale=1.0)  # workflows take seconds: the interrupt lands mid-run
    key, url = sb.api_key, sb.base_url
    cells = [
        "import os, signal, threading\n"
        "import pandas as pd, cleanlist_pandas as clp\n"
        f"clp.configure(api_key={key!r}, base_url={url!r})\n"
        "df = pd.DataFrame({'First Name': [f'Ann{i}' for i in range(300)],\n"
        "                   'Last Name': [f'Lee{i}' for i in range(300)],\n"
        "                   'Website': [f'co{i}.com' for i in range(300)]})",
        "df.cleanlist.enrich('ful')",
        "clp.spend(by='days')",
        # Kernel -> Interrupt is a SIGINT to the kernel's process
        "threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "df.cleanlist.enrich(progress=False)",
        "out = clp.last_result()\n"
        "print(type(out).__name__, len(out), sorted(out['cl_status'].unique()))",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, allow_errors=True).execute()
    errors = [[o for o in c.outputs if o.output_type == "error"] for c in nb.cells]
    assert not errors[0] and not errors[4], (nb.cells[0].outputs, nb.cells[4].outputs)
    for i in (1, 2, 3):
        assert len(errors[i]) == 1, nb.cells[i].outputs
        tb = "\n".join(errors[i][0].traceback)
        assert "Traceback" not in tb and ".py" not in tb and "---" not in tb, tb
        assert len(tb.splitlines()) <= 6, tb
        assert key not in tb
    assert "ValueError: enrichment_type='ful' is not one of" in errors[1][0].traceback[0]
    assert "did you mean 'full'?" in " ".join(errors[1][0].traceback)
    assert "did you mean 'day'?" in " ".join(errors[2][0].traceback)
    # the interrupt: what happened, rows done and pending, where they are, how to resume
    assert errors[3][0].ename == "EnrichmentInterrupted"
    shown = " ".join(errors[3][0].traceback)
    assert shown.startswith("Interrupted; nothing paid for is lost."), shown
    assert re.search(r"\d+ of 300 rows done", shown) and "pending" in shown, shown
    assert "out = clp.last_result()" in shown and "run the same call again" in shown
    printed = "".join(o.get("text", "") for o in nb.cells[4].outputs)
    assert printed.startswith("DataFrame 300 ["), printed
    assert "'pending'" in printed, printed
