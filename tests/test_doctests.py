"""Every docstring example of the package runs (the ones marked +SKIP need a live server)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cleanlist_pandas

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(cleanlist_pandas.__path__, prefix="cleanlist_pandas.")
    if not m.name.endswith("__main__") or m.name == "cleanlist_pandas.sandbox.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
