"""CSV files of leads for the command line: read as text, and written back in the input's own
format (delimiter, encoding, line ending), so a `;`-separated cp1252 file from Excel comes
back as one Excel opens the same way. A file that cannot be read, or an output path that
cannot be written, is a :class:`CsvFileError` whose message names the path and says why
(checked before anything is sent); :func:`save_csv` never loses a frame it could not write
where asked: it writes a private fallback file instead and says where.

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

import contextlib
import io
import os
import stat
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cleanlist_pandas.errors import UserValueError

__all__ = [
    "CsvFileError",
    "CsvFormat",
    "Saved",
    "check_output_path",
    "read_csv",
    "save_csv",
    "write_csv",
]


class CsvFileError(UserValueError):
    """A CSV file that cannot be read, or an output path that cannot be written; the message
    names the path and says why (no ``[Errno ...]``).

    >>> str(CsvFileError("leads.csv: no such file"))
    'leads.csv: no such file'
    """

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
    hint = (
        " (it looks like an Excel workbook: save it as CSV UTF-8)"
        if raw.startswith(b"PK\x03\x04") or path.suffix.lower() in (".xlsx", ".xls")
        else ""
    )
    raise CsvFileError(
        f"{path}: not UTF-8 nor cp1252 text{hint}; save it as UTF-8 (CSV UTF-8 in Excel)"
    )


def _reason(exc: OSError) -> str:
    """An OSError's reason in words, without ``[Errno N]``.

    >>> _reason(PermissionError(13, "Permission denied", "x.csv"))
    'permission denied'
    """
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a :class:`CsvFileError` naming it: missing, a directory,
    unreadable."""
    if path.is_dir():  # checked first: Windows says "permission denied" for a directory
        raise CsvFileError(f"{path} is a directory, not a CSV file; name a file in it")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CsvFileError(f"{path}: no such file") from None
    except NotADirectoryError:
        raise CsvFileError(f"{path}: no such file (a part of the path is a file)") from None
    except PermissionError:
        raise CsvFileError(f"{path}: permission denied, cannot read it") from None
    except OSError as exc:
        raise CsvFileError(f"{path}: cannot read it ({_reason(exc)})") from None


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

    Raises:
        CsvFileError: the file is missing, a directory, unreadable, not text, empty, or not
            CSV; the message names the file.

    >>> read_csv(Path("no-such-file.csv"))
    Traceback (most recent call last):
    ...
    cleanlist_pandas._csvio.CsvFileError: no-such-file.csv: no such file
    """
    import pandas as pd

    path = Path(path)
    text, encoding = _decode(_read_bytes(path), path)
    first, _, _ = text.partition("\n")
    fmt = CsvFormat(
        delimiter=_header_delimiter(first, path),
        encoding=encoding,
        lineterminator="\r\n" if first.endswith("\r") else "\n",
    )
    try:
        df = pd.read_csv(
            io.StringIO(text), dtype="string", sep=fmt.delimiter, skipinitialspace=False
        )
    except pd.errors.EmptyDataError:
        raise CsvFileError(f"{path} is empty: no header line") from None
    except (pd.errors.ParserError, ValueError) as exc:
        why = " ".join(str(exc).split()).removeprefix("Error tokenizing data. ")
        raise CsvFileError(f"{path}: not a readable CSV file ({why})") from None
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


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:  # pragma: no cover - a race: one of them went away
        return False


def check_output_path(path: Path, input_path: Path | None = None) -> None:
    """Raise :class:`CsvFileError` unless a CSV can be written at ``path``: not a directory,
    not the input file, its directory exists and takes a new file (one is created and
    removed to find out), and an existing file there may be overwritten. Run it before
    anything is sent, so a run never pays for rows it cannot save.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> check_output_path(d / "out.csv") is None
    True
    >>> check_output_path(d / "no" / "out.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cleanlist_pandas._csvio.CsvFileError: the directory .../no does not exist
    """
    path = Path(path)
    if path.is_dir():
        raise CsvFileError(
            f"{path} is a directory; name a file in it, e.g. {path / 'leads.enriched.csv'}"
        )
    if input_path is not None and _same_file(path, Path(input_path)):
        raise CsvFileError(
            f"{path} is the input file, which the output never replaces (the same command "
            "run again would read its own result columns): name another file"
        )
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise CsvFileError(f"the directory {parent} {what}")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".cleanlist-check-", suffix=".tmp")
    except OSError as exc:
        raise CsvFileError(f"cannot create a file in {parent} ({_reason(exc)})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    if path.exists() and not os.access(path, os.W_OK):
        raise CsvFileError(f"{path} exists and may not be overwritten (permission denied)")


@dataclass(frozen=True)
class Saved:
    """Where :func:`save_csv` put a frame.

    ``path`` holds the rows: the file asked for, or a fallback file when ``error`` (why the
    file asked for could not be written) is set; ``None`` when no file could be written
    (``tried`` then says why for each fallback directory).

    >>> Saved(Path("out.csv"), CsvFormat(), Path("out.csv")).fallback
    False
    """

    path: Path | None
    fmt: CsvFormat | None
    asked: Path
    error: str | None = None
    tried: tuple[str, ...] = field(default=())

    @property
    def fallback(self) -> bool:
        """True when the rows are in a fallback file, not in the file asked for."""
        return self.error is not None and self.path is not None


def _error_text(exc: BaseException) -> str:
    return _reason(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"


def save_csv(
    df: Any, path: Path, fmt: CsvFormat, fallback_dirs: Sequence[Path] = ()
) -> Saved:
    """Write ``df`` to ``path`` as :func:`write_csv` does; if that fails anyway (disk full,
    permission changed during the run), write it to a new fallback file instead, in the
    first of ``fallback_dirs`` that takes it, named ``<stem>.rescued-<time>-<random>.csv``
    and readable only by its owner (0600: it holds personal data). A file ``path`` that
    the failed write created is removed (it would be a truncated copy); the frame is never
    dropped.

    >>> import tempfile, pandas as pd
    >>> d = Path(tempfile.mkdtemp())
    >>> saved = save_csv(pd.DataFrame({"a": ["1"]}), d / "gone" / "out.csv", CsvFormat(), [d])
    >>> saved.fallback, saved.path.parent == d, saved.path.name.startswith("out.rescued-")
    (True, True, True)
    >>> saved.path.read_text()
    'a\\n1\\n'
    """
    path = Path(path)
    existed = path.exists()
    try:
        return Saved(path, write_csv(df, path, fmt), path)
    except Exception as exc:  # the frame was paid for: whatever failed, keep it
        error = _error_text(exc)
    if not existed:
        with contextlib.suppress(OSError):
            if path.is_file():
                path.unlink()
    stem = path.stem or "cleanlist"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tried: list[str] = []
    for folder in fallback_dirs:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, name = tempfile.mkstemp(
                prefix=f"{stem}.rescued-{stamp}-", suffix=".csv", dir=folder
            )  # created 0600 whatever the umask
        except OSError as exc:
            tried.append(f"{folder}: {_reason(exc)}")
            continue
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        finally:
            os.close(fd)
        target = Path(name)
        try:
            used = write_csv(df, target, fmt)
        except Exception as exc:
            tried.append(f"{folder}: {_error_text(exc)}")
            with contextlib.suppress(OSError):
                target.unlink()
            continue
        return Saved(target, used, path, error, tuple(tried))
    return Saved(None, None, path, error, tuple(tried))
