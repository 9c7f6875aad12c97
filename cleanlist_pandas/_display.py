"""Key/value tables as text and HTML, for the reprs of the estimate, the job and the panel,
and the one building block of the package's pictures (:func:`html_box`).

Reprs never do I/O: these only format rows that were already computed.

>>> print(text_table("Cleanlist", [("rows", "3"), ("credits", "1")]))
Cleanlist
  rows     3
  credits  1
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Collection, Sequence


def text_table(
    title: str,
    rows: Sequence[tuple[str, str]],
    *,
    width: int = 80,
    nowrap: Collection[str] = (),
) -> str:
    """A title and aligned ``key  value`` lines, no wider than ``width`` columns: a long key
    (a skip reason) or value (a note) wraps onto the next lines, keeping its indent. The
    value of a key in ``nowrap`` (code to copy) stays on one line, however long.

    >>> print(text_table("T", [("  skipped: missing last_name and company", "12"),
    ...                        ("  awaiting credits", "5 rows"),
    ...                        ("note", "balance not read: no API key")], width=60))
    T
        skipped: missing    12
          last_name and
          company
        awaiting credits    5 rows
      note                  balance not read: no API key
    >>> print(text_table("T", [("fix", "columns={'a': 'b c'}")], width=20, nowrap={"fix"}))
    T
      fix  columns={'a': 'b c'}
    """
    key_width = min(max((len(k) for k, _ in rows), default=0), max(12, width // 3))
    value_width = max(width - key_width - 4, 1)
    lines = [title]
    for key, value in rows:
        indent = len(key) - len(key.lstrip(" "))
        keys = textwrap.wrap(
            key.strip(),
            max(key_width, indent + 3),
            initial_indent=" " * indent,
            subsequent_indent=" " * (indent + 2),
            break_on_hyphens=False,
            break_long_words=False,
        ) or [key]
        values = (
            [value]
            if key in nowrap
            else textwrap.wrap(value, value_width, break_on_hyphens=False) or [""]
        )
        for i in range(max(len(keys), len(values))):
            k = keys[i] if i < len(keys) else ""
            v = values[i] if i < len(values) else ""
            lines.append(f"  {k:<{key_width}}  {v}".rstrip())
    return "\n".join(lines)


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


def html_box(width: float, color: str, tip: str, *, height: int = 16) -> str:
    """One coloured box of a bar picture: an inline-block ``span`` with inline styles and a
    tooltip. Pictures are rows of these, not SVG: JupyterLab's sanitizer strips SVG from a
    reopened (untrusted) notebook but keeps styled boxes, so a picture survives reopened
    files, static HTML (``nbconvert``) and GitHub alike, with no script and no kernel.

    >>> print(html_box(12.34, "#1b9e77", "enriched 3").replace(";", ";\\n"))
    <span title='enriched 3' style='display:inline-block;
    width:12.3px;
    height:16px;
    background-color:#1b9e77'></span>
    """
    return (
        f"<span title='{html.escape(tip)}' style='display:inline-block;"
        f"width:{max(width, 0.0):.1f}px;height:{height}px;background-color:{color}'></span>"
    )
