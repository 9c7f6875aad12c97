"""Bad input end to end: cells that are not usable text, an http:// webhook_url."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pandas as pd
import pytest

from cleanlist_pandas.errors import InputValidationError
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.sandbox import Sandbox

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def _frame() -> pd.DataFrame:
    """Five leads from a JSON source: a lone surrogate in row 1, a list in row 3."""
    records = json.loads(
        '[{"First Name": "Ann", "Last Name": "Lee", "Website": "acme.com"},'
        ' {"First Name": "Ada\\ud800", "Last Name": "Love", "Website": "beta.io"},'
        ' {"First Name": "Bob", "Last Name": "Ray", "Website": "corp.de"},'
        ' {"First Name": ["Cy", "Fox"], "Last Name": "Fox", "Website": "dent.fr"},'
        ' {"First Name": "Dee", "Last Name": "Yu", "Website": "eel.com"}]'
    )
    return pd.DataFrame(records, dtype=object)


def test_estimate_and_enrich_skip_rows_whose_cells_are_not_text(
    sandbox: Sandbox, client: Any
) -> None:
    """Issue 7 items 8 and 9: estimate() and enrich() raised UnicodeEncodeError (in plan)
    and TypeError: unhashable type (in map) on this frame."""
    df = _frame()
    before = df.copy()
    est = df.cleanlist.estimate(client=client)
    assert est.counts["invalid"] == 2 and est.counts["to_send"] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = df.cleanlist.enrich(client=client, poll=FAST, progress=False)
    status = out["cl_status"].tolist()
    assert status[1] == status[3] == "skipped"
    assert "skipped" not in status[:1] + status[2:3] + status[4:]
    assert "column 'First Name'" in out.loc[1, "cl_error"]
    assert "lone surrogate" in out.loc[1, "cl_error"]
    assert "not text" in out.loc[3, "cl_error"]
    pd.testing.assert_frame_equal(df, before)
    assert out["cl_task_id"].notna().tolist() == [True, False, True, False, True]


def test_estimate_with_only_a_lone_surrogate(sandbox: Sandbox, client: Any) -> None:
    """Issue 7 item 8 alone: map_contacts let the surrogate through; plan raised."""
    df = _frame().drop(index=3)
    est = df.cleanlist.estimate(client=client)
    assert est.counts["invalid"] == 1 and est.counts["to_send"] == 3
    (reason,) = est.counts["invalid_by_reason"]
    assert reason.startswith("unusable first_name in column 'First Name'")


# -- webhook_url (issue 7 item 11) ---------------------------------------------------------
HTTP_HOOK = "http://example.com/hook"


def _requests(sb: Sandbox) -> dict[str, Any]:
    return dict(sb.stats()["by_endpoint"])


def test_enrich_never_sends_an_http_webhook_nor_fails_rows_for_it(
    sandbox: Sandbox, client: Any
) -> None:
    """Every row used to come back ``failed`` after a 422 on each bulk request."""
    df = _frame().drop(index=[1, 3])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = df.cleanlist.enrich(
                client=client, poll=FAST, progress=False, webhook_url=HTTP_HOOK
            )
    except InputValidationError as exc:  # once job.py checks it up front (see below)
        assert "webhook_url" in str(exc)
    else:
        assert "failed" not in out["cl_status"].tolist()
    assert "POST /enrich/bulk" not in _requests(sandbox)
    assert sandbox.ledger() == []


def test_enrich_refuses_an_http_webhook_before_any_request(
    sandbox: Sandbox, client: Any
) -> None:
    df = _frame().drop(index=[1, 3])
    with pytest.raises(InputValidationError, match="webhook_url"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df.cleanlist.enrich(client=client, poll=FAST, progress=False, webhook_url=HTTP_HOOK)
    assert _requests(sandbox) == {}
