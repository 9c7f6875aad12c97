"""``df.cleanlist.enrich()`` from the inside: map → plan → engine → merge, with the journal
and the cache on the side. Everything is keyed by row *position*.

- :mod:`.mapping` — :func:`map_contacts`: find the contact columns, normalize them, check
  each row against the API's rule (invalid rows get a reason and are never sent).
- :mod:`.plan` — :func:`plan`: :func:`fingerprint` every valid contact, dedupe, and look the
  unique ones up in the result cache; ``send_ids`` is what is left to send.
- :mod:`.engine` — :class:`~.engine.Engine` (async, UI-free): submits the contacts in chunks
  of 250 through the client's pacer, journaling each chunk *before* it is sent and its
  workflow id right after, polls the workflows adaptively and hands every finished
  workflow's results back as they arrive; it tells the world through :mod:`.events`.
- :mod:`.merge` — :class:`~.merge.FlattenedResults` flattens each workflow's results to
  ``cl_*`` columns as they arrive; :func:`build_output` fans them out to every input row
  (cache hits, duplicates, skipped and unsent rows included) and glues them to the
  untouched input with one ``pd.concat``.
- :mod:`.journal` — :class:`~.journal.Journal`: which chunk went out as which workflow, so
  a re-run of the same call resumes (polls, never resubmits) after Ctrl-C or a crash.
- :mod:`.job` — :func:`~.job.enrich` ties them together (no network until the engine)::

      mapped = map_contacts(df, columns)                     # MappingError if ambiguous
      p = plan(mapped, etype, cache_lookup=lambda fps: cache.get_many(fps, etype))
      job = journal.open_job(job_key(etype, p.fingerprints), etype, rows=p.n_rows)
      # a job lock keeps a second process off the same job; the journaled chunks of an
      # earlier run of it are polled again, never resent; the rest is to_send
      engine = Engine(client=aclient, journal=journal, job_id=job.job_id,
                      on_results=on_results, ...)       # on_results, per finished workflow:
      outcome = await engine.run(to_send, resume_chunks=...)  # cache.put_many + flat.add
      results, workflow_ids, statuses = p.initial_results()  # cache hits, then outcome's
      out = build_output(df, p, results, statuses=statuses, flat=flat)  # input + cl_*
      journal.finish_job(job.job_id)                         # when no row is left over

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

from cleanlist_pandas.enrich.mapping import MappedContacts, MappingError, map_contacts
from cleanlist_pandas.enrich.merge import (
    OutputColumnCollision,
    assemble,
    build_output,
    discovered_contacts_frame,
    flatten_results,
    output_columns,
)
from cleanlist_pandas.enrich.plan import Plan, fingerprint, plan

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
