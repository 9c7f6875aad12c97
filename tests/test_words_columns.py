"""Issue 9, item 11: columns= given the pandas rename() way round gets "did you mean"; the
accessor's tooltip shows the allowed values as Literal types and no reST markup."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest

import cleanlist_pandas  # noqa: F401  (registers df.cleanlist)
from cleanlist_pandas.errors import MappingError


# -- 11. columns= the wrong way round; the tooltip -----------------------------------------
def test_reversed_columns_says_did_you_mean() -> None:
    df = pd.DataFrame({"Vorname": ["Ada"], "Nachname": ["L"], "Firma": ["acme.com"]})
    with pytest.raises(MappingError) as ei:
        df.cleanlist.enrich(columns={"Vorname": "first_name"}, api_key="clapi_0123456789abcdef")
    msg = str(ei.value)
    assert "did you mean columns={'first_name': 'Vorname'}?" in msg
    assert "the reverse of DataFrame.rename(columns={old: new})" in msg
    with pytest.raises(MappingError) as ei:
        df.cleanlist.mapping({"Vorname": "first_name", "Nachname": "last_name"})
    assert "did you mean columns={'first_name': 'Vorname', 'last_name': 'Nachname'}?" in str(
        ei.value
    )


def test_tooltip_shows_literal_choices_and_no_rest_markup() -> None:
    acc = pd.DataFrame().cleanlist
    # what Shift-Tab shows: IPython renders inspect.signature() and inspect.getdoc()
    shown = f"{inspect.signature(acc.enrich)}\n{inspect.getdoc(acc.enrich)}"
    assert "enrichment_type: Literal['none', 'partial', 'phone_only', 'full', " in shown
    assert "'prospecting_only'] = 'partial'" in shown
    assert "errors: Literal['warn', 'raise', 'ignore'] = 'warn'" in shown
    for name in ("enrich", "aenrich", "estimate", "mapping", "prospects", "resume"):
        method = getattr(acc, name)
        doc = inspect.getdoc(method) or ""
        assert "``" not in doc and ":class:" not in doc and ":meth:" not in doc, name
        assert "``" not in str(inspect.signature(method)), name
    assert "``" not in (inspect.getdoc(type(acc)) or "")
