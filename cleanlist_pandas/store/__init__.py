"""What is kept on this machine: one directory of SQLite files, every record attributed to
the API's origin and the organization that paid (:mod:`.provenance`).

- :mod:`.files` — where the files live and the one right way to open them (0600, WAL), the
  cross-process job lock, the finisher thread;
- :mod:`.cache` — results by contact fingerprint, type and scope; the identity index;
- :mod:`.journal` — jobs and their chunks: what was sent as which workflow (resume);
- :mod:`.ledger` — the spend ledger (``clp.spend``) and its chart;
- :mod:`.provenance` — the scope of a key at a server (origin and organization);
- :mod:`.privacy` — ``clp.forget``: erase one person.
"""
