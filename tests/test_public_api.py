"""The package's public surface: one version, typed names, nothing private exported."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

import cleanlist_pandas as clp
from cleanlist_pandas import _constants

ROOT = Path(clp.__file__).resolve().parents[1]
INIT = Path(clp.__file__)


def _type_checking_imports() -> dict[str, str]:
    """name -> module of every import under ``if TYPE_CHECKING:`` in ``__init__.py``."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                for alias in stmt.names:
                    out[alias.asname or alias.name] = stmt.module
    return out


def test_the_version_has_one_source() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "cleanlist_pandas._constants.__version__"
    assert clp.__version__ is _constants.__version__
    from cleanlist_pandas.client import http as _http

    assert f"cleanlist-pandas/{clp.__version__}" == _http.USER_AGENT


def test_py_typed_is_shipped() -> None:
    assert (INIT.parent / "py.typed").is_file()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in pyproject["tool"]["setuptools"]["package-data"]["cleanlist_pandas"]


def test_lazy_table_type_checking_imports_and_all_agree() -> None:
    lazy = dict(clp._LAZY)
    assert _type_checking_imports() == lazy, (
        "a name was added to or moved in _LAZY without its import under TYPE_CHECKING "
        "(or the other way round): update both in cleanlist_pandas/__init__.py"
    )
    assert sorted(clp.__all__) == sorted(["__version__", *lazy])
    assert len(set(clp.__all__)) == len(clp.__all__)
    assert dir(clp) == sorted(clp.__all__)


@pytest.mark.parametrize("name", sorted(clp._LAZY))
def test_every_public_name_resolves_to_its_definition(name: str) -> None:
    value = getattr(clp, name)
    assert getattr(value, "__name__", name) == name


def test_nothing_private_is_exported() -> None:
    assert not [n for n in clp.__all__ if n.startswith("_") and n != "__version__"]
    # from the private request loop only the types a user meets: the pacer a client takes
    # and its stats (the events a listener receives live in cleanlist_pandas.events); never
    # the loop's machinery
    from_http = {n for n, m in clp._LAZY.items() if m == "cleanlist_pandas.client.http"}
    assert from_http == {"Pacer", "PacerStats"}
    for internal in ("RequestLoop", "SendHooks", "retry_decision", "shared_pacer", "Decision"):
        assert internal not in clp.__all__
        with pytest.raises(AttributeError):
            getattr(clp, internal)


def test_type_checkers_see_the_real_types(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "use_clp.py"
    snippet.write_text(
        "import cleanlist_pandas as clp\n"
        "reveal_type(clp.Client)\n"
        "reveal_type(clp.AsyncClient)\n"
        "reveal_type(clp.CleanlistError)\n"
        "reveal_type(clp.InsufficientCreditsError)\n"
        "reveal_type(clp.JobBusyError)\n"
        "reveal_type(clp.__version__)\n"
        "def f(c: clp.Client) -> None:\n"
        "    reveal_type(c.balance)\n",
        encoding="utf-8",
    )
    stdout, stderr, _status = mypy_api.run(
        [
            "--no-error-summary",
            "--follow-imports=silent",
            "--ignore-missing-imports",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--python-version",
            "3.11",
            str(snippet),
        ]
    )
    revealed = [
        line.split("Revealed type is ", 1)[1].strip('"')
        for line in stdout.splitlines()
        if "Revealed type is" in line
    ]
    assert len(revealed) == 7, stdout + stderr
    assert not [r for r in revealed if r == "Any"], stdout
    client, aclient, base, credits, busy, version, method = revealed
    assert "cleanlist_pandas.client.api.Client" in client
    assert "cleanlist_pandas.client.api.AsyncClient" in aclient
    assert "cleanlist_pandas.errors.CleanlistError" in base
    assert "cleanlist_pandas.errors.InsufficientCreditsError" in credits
    assert "JobBusyError" in busy
    assert version in ("str", "builtins.str")
    assert method.startswith("def ") and "Any" not in method.split("->")[-1], method
