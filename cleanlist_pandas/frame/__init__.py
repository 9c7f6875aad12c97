"""The data transforms of a run: pure functions over frames, with no network, no file and
no clock. Everything is keyed by row *position* (duplicate labels and MultiIndexes are fine).

- :mod:`.mapping` — :func:`map_contacts`: find the contact columns, normalize them, check
  each row against the API's rule (invalid rows get a reason and are never sent).
- :mod:`.select` — which rows may be sent (``where=``, ``only_missing=``) and where
  ``fill=`` writes, decided from the frame before any request.
- :mod:`.plan` — :func:`plan`: :func:`fingerprint` every valid contact, dedupe, look the
  unique ones up through a cache look-up it is given; ``send_ids`` is what is left to send.
- :mod:`.merge` — :class:`~.merge.FlattenedResults` flattens each workflow's results to
  ``cl_*`` columns as they arrive; :func:`build_output` fans them out to every input row
  (cache hits, duplicates, skipped and unsent rows included) and glues them to the
  untouched input with one ``pd.concat``.

The run (:mod:`cleanlist_pandas.run`) ties them to the client, the cache and the journal.

The data layer alone, without a network:

>>> import pandas as pd
>>> df = pd.DataFrame({"LinkedIn": ["linkedin.com/in/ada", "nope", None]})
>>> p = plan(map_contacts(df), "partial")
>>> p.n_valid, p.n_to_send, p.contact_dicts(p.send_ids)
(1, 1, [{'linkedin_url': 'https://www.linkedin.com/in/ada'}])
>>> results, workflow_ids, statuses = p.initial_results()
>>> results[0] = {"status": "completed", "primary_email": "ada@x.io"}
>>> out = build_output(df, p, results)
>>> out["cl_status"].tolist(), out.loc[0, "cl_email"], out["LinkedIn"].equals(df["LinkedIn"])
(['enriched', 'skipped', 'skipped'], 'ada@x.io', True)
"""

from __future__ import annotations

from cleanlist_pandas.errors import MappingError, OutputColumnCollision
from cleanlist_pandas.frame.mapping import MappedContacts, map_contacts
from cleanlist_pandas.frame.merge import (
    assemble,
    build_output,
    discovered_contacts_frame,
    flatten_results,
    output_columns,
)
from cleanlist_pandas.frame.plan import Plan, fingerprint, plan

__all__ = [
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
