"""One enrichment run, start to end: what ``df.cleanlist.enrich()`` does with a frame.

- :mod:`.options` — the run's options and their checks, the journal key;
- :mod:`.prepare` — everything decided before the first request: the plan (from
  :mod:`cleanlist_pandas.frame`), the scope, the journal's job, what to send and to poll;
- :mod:`.engine` — the async I/O: submit the chunks through the client's pacer, read the
  workflows, journal each chunk before it leaves;
- :mod:`.state` — the run's live state, fed by events; :mod:`.summary` — its final numbers;
- :mod:`.report` — merge fix-ups, warnings and errors at the end;
- :mod:`.spend` — the run's row of the spend ledger;
- :mod:`.job` — :func:`~.job.enrich`: a run, and the handle of one started with
  ``wait=False``;
- :mod:`.estimate` — what a run would do, spending nothing; :mod:`.rates` — a pilot's
  measured rates; :mod:`.pilot` — a sample enriched to measure them.

The run imports no view: a progress bar is handed in as a factory and listens to events.
"""
