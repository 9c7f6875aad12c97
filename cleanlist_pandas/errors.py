"""The exception tree. Every error of this package derives from :class:`CleanlistError`.

>>> from cleanlist_pandas.errors import CleanlistError
>>> issubclass(CleanlistError, Exception)
True
"""

from __future__ import annotations


class CleanlistError(Exception):
    """Base class of every error raised by cleanlist-pandas."""
