"""The layers hold (issue 8): the data layer imports no UI, the client imports no engine.

Every import statement is read from the source (module level and inside functions), so a
lazy import cannot slip through.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "cleanlist_pandas"
UI = ("cleanlist_pandas.progress", "cleanlist_pandas.widgets", "tqdm", "ipywidgets", "IPython")
CLIENT_LAYER = ["_http.py", "client.py", "models.py", "config.py", "events.py", "errors.py",
                "runner.py", "_constants.py"]


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _hits(path: Path, banned: tuple[str, ...]) -> list[str]:
    return sorted(
        m for m in imports(path) if any(m == b or m.startswith(b + ".") for b in banned)
    )


@pytest.mark.parametrize("path", sorted((PKG / "enrich").glob("*.py")), ids=lambda p: p.name)
def test_the_data_layer_imports_no_ui(path: Path) -> None:
    assert _hits(path, UI) == []


@pytest.mark.parametrize("name", CLIENT_LAYER)
def test_the_client_imports_no_engine(name: str) -> None:
    assert _hits(PKG / name, ("cleanlist_pandas.enrich",)) == []


def test_the_check_itself_sees_lazy_imports(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text("def f():\n    from tqdm.auto import tqdm\n    import ipywidgets as w\n")
    assert _hits(mod, UI) == ["ipywidgets", "tqdm.auto", "tqdm.auto.tqdm"]
