"""The data layer of ``df.cleanlist.enrich()``: pure, network-free, by row position.

- :mod:`.mapping` — :func:`map_contacts`: find, normalize and validate the contact columns.
- :mod:`.plan` — :func:`fingerprint`, :func:`plan`: dedupe, cache look-up, 250-contact chunks.
- :mod:`.merge` — :func:`flatten_results`, :func:`assemble`, :func:`build_output`,
  :func:`discovered_contacts_frame`: results → ``cl_*`` columns next to the input rows.

The engine (submission, polling) lives beside these modules and glues them together::

    mapped = map_contacts(df, columns)                       # MappingError if ambiguous
    p = plan(mapped, etype, cache_lookup=lambda fps: cache.get_many(fps, etype))
    results, workflow_ids, statuses = p.initial_results()   # cache hits pre-filled
    for chunk in p.iter_chunks():                            # ≤ 250 contacts each
        resp = submit(chunk.contacts)                        # task_ids in chunk order
        ...                                                  # poll; for each result r of
        results[u] = r; workflow_ids[u] = wf                 # unique id u = chunk.unique_ids[k]
        # (ambiguous submission → statuses[u] = "unknown"; never sent → leave None)
    cache.put_many(zip(p.fingerprints[ids], [results[u] for u in ids], wfs, tids), etype)
    out = build_output(df, p, results, statuses=statuses, workflow_ids=workflow_ids)
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
