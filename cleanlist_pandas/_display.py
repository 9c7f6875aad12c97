"""Key/value tables as text and HTML, for the reprs of the estimate, the job and the panel.

Reprs never do I/O: these only format rows that were already computed.

>>> print(text_table("Cleanlist", [("rows", "3"), ("credits", "1")]))
Cleanlist
  rows     3
  credits  1
"""

from __future__ import annotations

import html
from collections.abc import Sequence


def text_table(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """A title and aligned ``key  value`` lines."""
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join([title, *(f"  {k:<{width}}  {v}" for k, v in rows)])


def html_table(title: str, rows: Sequence[tuple[str, str]], *, align: str = "left") -> str:
    """A bold title and a two-column table; every text is escaped.

    >>> "&lt;b&gt;</th>" in html_table("T", [("<b>", "x")])
    True
    """
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td style='text-align:{align}'>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<div><strong>{html.escape(title)}</strong><table>{cells}</table></div>"
