"""Issue 9, item 7: a user error in a notebook shows its message and the fix, not the frames;
an internal bug keeps its full traceback. Read as the user reads it: the lines IPython shows,
and the error outputs of a notebook run by a real kernel."""

from __future__ import annotations

from pathlib import Path

import pytest
from words_helpers import FAST, client_for, leads

import cleanlist_pandas as clp
from cleanlist_pandas import errors as E
from cleanlist_pandas.errors import MappingError, OutputColumnCollision
from cleanlist_pandas.sandbox import Sandbox


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEANLIST_CACHE_DIR", str(tmp_path / "cache"))


# -- 7. a user error in a notebook: the message and the fix, not the frames ----------------
USER_ERRORS = [
    E.ConfigurationError("No Cleanlist API key. Pass api_key=..."),
    E.AuthenticationError("HTTP 401 ...: Invalid API key. Check the key", status_code=401),
    E.InsufficientCreditsError("HTTP 402 ...: Insufficient credits. Top up", status_code=402),
    E.PermissionDeniedError("HTTP 403 ...: no API access. Upgrade the plan", status_code=403),
    MappingError("ambiguous column for company_domain. Pick one with columns={...}"),
    OutputColumnCollision("cl_email exists; pass another prefix="),
]


@pytest.mark.parametrize("exc", USER_ERRORS, ids=lambda e: type(e).__name__)
def test_user_errors_render_as_message_only(exc: E.CleanlistError) -> None:
    lines = exc._render_traceback_()
    text = "\n".join(lines)
    assert text.startswith(f"{type(exc).__name__}: ")
    assert str(exc).split(". ")[-1] in text.replace("\n", " ")  # the fix is there
    assert "Traceback" not in text and 'File "' not in text


@pytest.mark.parametrize(
    "exc",
    [E.LoopThreadError("bug"), E.UnexpectedResponseError("bug"), E.CleanlistError("bug")],
    ids=lambda e: type(e).__name__,
)
def test_internal_errors_keep_their_traceback(exc: E.CleanlistError) -> None:
    assert not hasattr(exc, "_render_traceback_")  # IPython then shows the full traceback


def test_a_budget_stop_with_errors_raise_renders_its_note(sandbox: Sandbox) -> None:
    sandbox.inject_fault("bulk", "status", status=402, times=1)
    c = client_for(sandbox)
    try:
        with pytest.raises(clp.InsufficientCreditsError) as ei:
            leads(30).cleanlist.enrich(client=c, errors="raise", poll=FAST, progress=False)
    finally:
        c.close()
    text = " ".join(ei.value._render_traceback_())
    assert "InsufficientCreditsError: HTTP 402" in text
    assert "awaiting_credits" in text and "run the same call again" in text  # the note
    assert sandbox.api_key not in text


def test_notebook_shows_user_errors_short_and_bugs_in_full(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real kernel (nbclient): what the notebook's error outputs hold."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.delenv("CLEANLIST_API_KEY", raising=False)
    sandbox.set_credits(5)
    key, url = sandbox.api_key, sandbox.base_url
    cells = [
        "import pandas as pd, cleanlist_pandas as clp\n"
        "df = pd.DataFrame({'Vorname': ['Ada'], 'Nachname': ['L'], 'Website': ['acme.com']})",
        # mapping: the columns given the pandas-rename way round
        f"df.cleanlist.enrich(columns={{'Vorname': 'first_name'}}, api_key={key!r}, "
        f"base_url={url!r})",
        # configuration: no key anywhere
        "df.cleanlist.enrich()",
        # budget / 402: the worst case exceeds the balance, errors='raise'
        f"df.cleanlist.enrich('full', errors='raise', progress=False, api_key={key!r}, "
        f"base_url={url!r})",
        # an internal bug (a non-user CleanlistError, and a KeyError) deep in the package
        "import cleanlist_pandas.frame.mapping as m\n"
        "def broken(*a, **k):\n"
        "    raise clp.errors.LoopThreadError('internal: a bug')\n"
        "m._resolve_columns = broken\n"
        "df.cleanlist.mapping()",
        "def broken(*a, **k):\n"
        "    raise KeyError('a bug')\n"
        "m._resolve_columns = broken\n"
        "df.cleanlist.mapping()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, allow_errors=True).execute()
    outs = [[o for o in c.outputs if o.output_type == "error"] for c in nb.cells]
    assert not outs[0]
    for i in (1, 2, 3):
        assert len(outs[i]) == 1, nb.cells[i].outputs
        tb = "\n".join(outs[i][0].traceback)
        assert "Traceback" not in tb and ".py" not in tb and "accessor" not in tb, tb
        assert key not in tb
    assert "did you mean columns={'first_name': 'Vorname'}?" in " ".join(outs[1][0].traceback)
    assert outs[2][0].ename == "ConfigurationError"
    assert "CLEANLIST_API_KEY" in " ".join(outs[2][0].traceback)
    assert outs[3][0].ename == "InsufficientCreditsError"
    assert "Top up to at least 11 credits" in " ".join(outs[3][0].traceback)
    for i, ename in ((4, "LoopThreadError"), (5, "KeyError")):
        tb = "\n".join(outs[i][0].traceback)
        assert outs[i][0].ename == ename
        assert "accessor.py" in tb and "mapping.py" in tb, tb  # every frame, as for any bug


