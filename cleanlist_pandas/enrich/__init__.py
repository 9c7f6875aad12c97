"""The data layer of ``df.cleanlist.enrich()``: pure, network-free, by row position.

- :mod:`.mapping` — :func:`map_contacts`: find, normalize and validate the contact columns.
- :mod:`.plan` — :func:`fingerprint`, :func:`plan`: dedupe, cache look-up, 250-contact chunks.
- :mod:`.merge` — :func:`flatten_results`, :func:`assemble`, :func:`build_output`,
  :func:`discovered_contacts_frame`: results → ``cl_*`` columns next to the input rows.

The engine (submission, polling) lives beside these modules and glues them together.
"""

from __future__ import annotations

from cleanlist_pandas.enrich.mapping import MappedContacts, MappingError, map_contacts
from cleanlist_pandas.enrich.merge import (
    OutputColumnCollision,
    assemble,
    build_output,
    discovered_contacts_frame,
    flatten_results,
    output_columns,
)
from cleanlist_pandas.enrich.plan import Chunk, Plan, fingerprint, plan

__all__ = [
    "Chunk",
    "MappedContacts",
    "MappingError",
    "OutputColumnCollision",
    "Plan",
    "assemble",
    "build_output",
    "discovered_contacts_frame",
    "fingerprint",
    "flatten_results",
    "map_contacts",
    "output_columns",
    "plan",
]
