"""Issue 19: every value of ``cl_status`` and ``cl_email_status`` is documented, in one table.

README's "Status columns" holds one table per column (value, what it means, what to do).
The source of truth for ``cl_status`` is :data:`cleanlist_pandas.frame.merge.ROW_STATUSES`
(the merge refuses any other value); for ``cl_email_status`` the spec's values
(``_constants.EMAIL_STATUSES``) and whatever the sandbox's oracle emits. A value added to
either without a row in the table fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cleanlist_pandas._constants import EMAIL_STATUSES
from cleanlist_pandas.frame.merge import ROW_STATUSES, build_output
from cleanlist_pandas.run.summary import STATUS_COLORS
from cleanlist_pandas.sandbox.oracle import decide

README = Path(__file__).resolve().parents[1] / "README.md"


def table(column: str) -> dict[str, list[str]]:
    """The rows of README's table whose header cell is ```column```: value -> other cells."""
    lines = README.read_text(encoding="utf-8").splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith(f"| `{column}` |"))
    rows: dict[str, list[str]] = {}
    for line in lines[head + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        m = re.fullmatch(r"`([^`]+)`", cells[0])
        assert m, f"{column} table: the first cell is not a `value`: {line}"
        rows[m.group(1)] = cells[1:]
    return rows


def test_the_tables_are_in_the_status_columns_section() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Status columns.**"):]
    assert section.index("| `cl_status` |") < section.index("| `cl_email_status` |") < 2500
    for column in ("cl_status", "cl_email_status"):
        for value, cells in table(column).items():
            assert len(cells) == 2 and all(cells), f"{column}={value}: meaning and what to do"


def test_every_row_status_is_documented_and_nothing_else() -> None:
    documented = table("cl_status")
    assert set(documented) == set(ROW_STATUSES)
    assert set(STATUS_COLORS) == set(ROW_STATUSES)  # the summary draws each of them


def test_the_merge_emits_only_the_documented_statuses() -> None:
    # ROW_STATUSES is the gate: any other value is refused by the merge itself
    from cleanlist_pandas.frame import map_contacts, plan

    df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/ada"]})
    p = plan(map_contacts(df), "partial")
    results, _workflow_ids, statuses = p.initial_results()
    statuses[0] = "paused"
    try:
        build_output(df, p, results, statuses=statuses)
    except ValueError as exc:
        assert "unknown cl_status values ['paused']" in str(exc)
    else:
        raise AssertionError("the merge accepted a cl_status that is not in ROW_STATUSES")


def test_every_email_status_is_documented() -> None:
    documented = table("cl_email_status")
    assert set(EMAIL_STATUSES) <= set(documented)
    assert set(documented) - set(EMAIL_STATUSES) == {"<NA>"}
    # what the sandbox's oracle emits, primary and discovered e-mails alike
    emitted: set[str] = set()
    rng = np.random.default_rng(0)
    for k in range(3000):
        first, last = f"Ann{k}", f"Lee{int(rng.integers(1_000_000))}"
        out = decide({"first_name": first, "last_name": last, "company_domain": "acme.com"}, 0)
        if out.primary_email_status is not None:
            emitted.add(out.primary_email_status)
        emitted.update(c["email_status"] for c in out.discovered if c.get("email_status"))
    assert emitted == set(EMAIL_STATUSES), emitted
    assert emitted <= set(documented)


def test_the_unknowns_are_told_apart() -> None:
    means_email = table("cl_email_status")["unknown"][1]
    assert 'Not `cl_status="unknown"`' in means_email
    assert "ambiguous" in table("cl_status")["unknown"][0]


def test_the_code_points_at_the_table() -> None:
    from cleanlist_pandas.frame import merge
    from cleanlist_pandas.run import job

    assert "README.md" in (job.__doc__ or "") and "Status columns" in (job.__doc__ or "")
    assert "Status columns" in (merge.__doc__ or "")


def test_the_interrupt_message_counts_every_status() -> None:
    # errors.py cannot import the merge (the client layer knows no engine): its own lists
    # of done and still-to-come statuses must cover ROW_STATUSES
    from cleanlist_pandas.errors import _DONE, _TO_COME

    assert {*_DONE, *_TO_COME, "skipped"} == set(ROW_STATUSES)
