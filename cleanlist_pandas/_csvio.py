"""CSV files of leads for the command line: read as text, and written back in the input's own
format (delimiter, encoding, line ending), so a `;`-separated cp1252 file from Excel comes
back as one Excel opens the same way.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "leads.csv"
>>> _ = p.write_bytes("Vorname;Nachname\\r\\nZoë;Müller\\r\\n".encode("cp1252"))
>>> df, fmt = read_csv(p)
>>> fmt, df.iloc[0].tolist()
(CsvFormat(delimiter=';', encoding='cp1252', lineterminator='\\r\\n'), ['Zoë', 'Müller'])
>>> write_csv(df, p.with_suffix(".out.csv"), fmt) == fmt
True
>>> p.with_suffix(".out.csv").read_bytes() == p.read_bytes()
True
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cleanlist_pandas.errors import UserValueError

__all__ = ["CsvFormat", "read_csv", "write_csv"]

#: Delimiters recognised in a header line, most common first (ties go to the first).
DELIMITERS = (",", ";", "\t", "|")
#: Encodings tried in order: UTF-8 (a BOM is kept as ``utf-8-sig``), then Windows' cp1252.
ENCODINGS = ("utf-8", "cp1252")


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV file is written: delimiter, encoding and line ending.

    >>> CsvFormat()
    CsvFormat(delimiter=',', encoding='utf-8', lineterminator='\\n')
    """

    delimiter: str = ","
    encoding: str = "utf-8"
    lineterminator: str = "\n"

    def describe(self) -> str:
        """A short human description, e.g. ``';'-separated, cp1252, CRLF``.

        >>> CsvFormat(";", "cp1252", "\\r\\n").describe()
        "';'-separated, cp1252, CRLF line endings"
        """
        sep = "tab" if self.delimiter == "\t" else repr(self.delimiter)
        enc = "UTF-8 with BOM" if self.encoding == "utf-8-sig" else self.encoding
        end = "CRLF" if self.lineterminator == "\r\n" else "LF"
        return f"{sep}-separated, {enc}, {end} line endings"


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    for enc in ENCODINGS:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise UserValueError(
        f"{path}: not UTF-8 nor cp1252 text; save it as UTF-8 (CSV UTF-8 in Excel)"
    )


def _header_delimiter(header: str, path: Path) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    counts = {d: 0 for d in DELIMITERS}
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # first of the most frequent
    return best if counts[best] else ","


def read_csv(path: Path) -> tuple[Any, CsvFormat]:
    """Read a CSV/TSV of leads as text (no type guessing: zip codes and ids stay as written)
    and say how it was written: delimiter (from the header line), encoding (UTF-8 with or
    without BOM, else cp1252), line ending.
    """
    import pandas as pd

    text, encoding = _decode(Path(path).read_bytes(), Path(path))
    first, _, _ = text.partition("\n")
    fmt = CsvFormat(
        delimiter=_header_delimiter(first, Path(path)),
        encoding=encoding,
        lineterminator="\r\n" if first.endswith("\r") else "\n",
    )
    df = pd.read_csv(io.StringIO(text), dtype="string", sep=fmt.delimiter, skipinitialspace=False)
    return df, fmt


def write_csv(df: Any, path: Path, fmt: CsvFormat) -> CsvFormat:
    """Write ``df`` (no index) in ``fmt``; return the format used. A value the encoding
    cannot hold (a name in Cyrillic in a cp1252 file) is never replaced or dropped: the file
    is then written as UTF-8 with BOM, which Excel also opens, and that format is returned.
    """
    for used in (fmt, replace(fmt, encoding="utf-8-sig")):
        try:
            df.to_csv(
                path,
                index=False,
                sep=used.delimiter,
                encoding=used.encoding,
                lineterminator=used.lineterminator,
            )
            return used
        except UnicodeEncodeError:
            if used.encoding == "utf-8-sig":
                raise  # pragma: no cover - UTF-8 holds every str
    raise AssertionError("unreachable")  # pragma: no cover
