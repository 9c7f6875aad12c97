"""The tree tells the architecture, and the layers hold (issues 8 and 20).

Every import statement is read from the source — module level and inside functions,
absolute and relative — so a lazy import cannot slip through. The rules:

- each module belongs to one layer, named by where it lives (:data:`LAYERS`);
- a layer imports only the layers below it (:data:`ALLOWED`): no arrow runs back up, and
  two layers side by side (the client, the frame transforms) do not import each other;
- the sandbox shares nothing with the package but ``_constants.py`` (the spec's numbers);
- no import circle, in-function imports counted;
- re-exports happen only in a package's ``__init__.py``: a module's ``__all__`` names only
  what it defines.

The README's "Architecture" drawing is this table; a test checks they agree.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "cleanlist_pandas"
ROOT = "cleanlist_pandas"

#: layer -> the top-level modules or packages of the package that are in it
LAYERS: dict[str, tuple[str, ...]] = {
    "base": ("_constants", "errors", "_perf", "_display", "_advice", "types", "config",
             "events", "_sandbox_info"),
    "client": ("client", "webhooks"),
    "frame": ("frame",),
    "store": ("store",),
    "run": ("run",),
    "views": ("views",),
    "entry": ("__init__", "accessor", "polars", "cli", "_csvio", "_interrupt"),
    "sandbox": ("sandbox",),
}
#: layer -> the layers it may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "client": {"base", "client"},
    "frame": {"base", "frame"},
    "store": {"base", "frame", "store"},
    "run": {"base", "client", "frame", "store", "run"},
    "views": {"base", "client", "frame", "store", "run", "views"},
    "entry": {"base", "client", "frame", "store", "run", "views", "entry", "sandbox"},
    "sandbox": {"sandbox"},
}
#: what the sandbox may import of the package beyond itself: the spec's numbers only
SANDBOX_SHARES = {"cleanlist_pandas._constants"}
UI = ("tqdm", "ipywidgets", "IPython")


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def layer_of(module: str) -> str:
    top = module.removeprefix(ROOT).lstrip(".").split(".")[0] or "__init__"
    for layer, tops in LAYERS.items():
        if top in tops:
            return layer
    raise AssertionError(f"{module} is in no layer: add its folder to LAYERS")


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if path.name == "__init__.py" else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, module: str | None = None) -> set[str]:
    """Every name a module imports, relative imports resolved: ``x`` and ``x.name`` for
    ``from x import name``."""
    module = module or module_name(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(module, path, node)
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def package_deps(module: str) -> set[str]:
    """The package's modules that ``module`` imports (``from pkg import submodule`` is an
    import of the submodule, not of the package's ``__init__``)."""
    path = MODULES[module]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(module, path, node)
            for a in node.names:
                sub = f"{mod}.{a.name}"
                names.add(sub if sub in MODULES else mod)
    deps: set[str] = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module and name.startswith(ROOT):
            deps.add(name)
    return deps


def edges() -> Iterator[tuple[str, str]]:
    for m in MODULES:
        for d in package_deps(m):
            yield m, d


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports_only_the_layers_below_it(module: str) -> None:
    layer = layer_of(module)
    bad = sorted(
        d
        for d in package_deps(module)
        if layer_of(d) not in ALLOWED[layer]
        and not (layer == "sandbox" and d in SANDBOX_SHARES)
    )
    assert bad == [], f"{module} ({layer}) imports {bad}"


def test_the_sandbox_shares_only_the_spec_constants() -> None:
    shared = {
        d
        for m in MODULES
        if layer_of(m) == "sandbox"
        for d in package_deps(m)
        if layer_of(d) != "sandbox"
    }
    assert shared <= SANDBOX_SHARES


@pytest.mark.parametrize(
    "module", [m for m in sorted(MODULES) if layer_of(m) not in ("views", "entry")]
)
def test_only_views_and_entry_points_import_ui(module: str) -> None:
    """tqdm, ipywidgets and IPython are for the views (a view is handed to the run)."""
    hits = sorted(
        n for n in imports(MODULES[module], module) if any(n == u or n.startswith(u + ".")
                                                          for u in UI)
    )
    assert hits == []


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for a, b in edges():
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.If):  # if TYPE_CHECKING / try-import blocks
            names.update(_defined(ast.Module(body=node.body, type_ignores=[])))
    return names


@pytest.mark.parametrize(
    "module", [m for m, p in sorted(MODULES.items()) if p.name != "__init__.py"]
)
def test_only_package_inits_re_export(module: str) -> None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    exported: list[str] = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            exported = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    borrowed = sorted(set(exported) - _defined(tree))
    assert borrowed == [], f"{module} re-exports {borrowed}: import them from where they live"


def test_the_readme_drawing_names_every_layer() -> None:
    readme = (PKG.parent / "README.md").read_text(encoding="utf-8")
    docs = PKG.parent / "docs" / "explanation" / "architecture.md"
    text = docs.read_text(encoding="utf-8") if docs.exists() else readme
    for layer, tops in LAYERS.items():
        for top in tops:
            if top.startswith("_") or top == "__init__":
                continue
            assert top in text, f"the architecture drawing does not name {top} ({layer})"


def test_the_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text(
        "def f():\n    from tqdm.auto import tqdm\n    from ..run import job\n"
        "    import ipywidgets as w\n"
    )
    found = imports(mod, "cleanlist_pandas.frame.m")
    assert {"tqdm.auto", "ipywidgets", "cleanlist_pandas.run", "cleanlist_pandas.run.job"} <= found
