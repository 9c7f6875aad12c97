"""The closed sets of values of the public arguments, as ``Literal`` types, so that a
signature (a notebook tooltip, an IDE) shows what is allowed.

>>> from typing import get_args
>>> get_args(EnrichmentType)
('none', 'partial', 'phone_only', 'full', 'prospecting_only')
>>> get_args(ErrorsMode)
('warn', 'raise', 'ignore')
"""

from __future__ import annotations

from typing import Literal

#: ``enrichment_type=``: what to look up (spec §5); the same values as
#: ``_constants.ENRICHMENT_TYPES``.
EnrichmentType = Literal["none", "partial", "phone_only", "full", "prospecting_only"]

#: ``errors=``: what a run that stops early (or leaves rows over) does.
ErrorsMode = Literal["warn", "raise", "ignore"]

__all__ = ["EnrichmentType", "ErrorsMode"]
