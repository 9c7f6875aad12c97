"""The API client: :class:`AsyncClient` (the core) and :class:`Client` (sync, Jupyter-safe).

- :mod:`.api` — the two clients: the five v1 endpoints as typed results
  (:mod:`cleanlist_pandas.types`), ``wait()``, ``sandbox_info()``;
- :mod:`.http` — the one request loop: the :class:`~.http.Pacer` (the rate window shared by
  every client of a key), retries, the mapping of answers to :mod:`cleanlist_pandas.errors`;
- :mod:`.runner` — sync over async: the one loop thread a sync call runs its coroutine on.

The client knows no run, no frame and no view: the run layer above drives it.

>>> import cleanlist_pandas.client as c
>>> sorted(c.__all__)
['AsyncClient', 'Client', 'validate_contacts']
"""

from cleanlist_pandas.client.api import AsyncClient, Client, validate_contacts

__all__ = ["AsyncClient", "Client", "validate_contacts"]
