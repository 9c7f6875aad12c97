"""What a user sees while a run goes: views that only listen to the run's state.

- :mod:`.progress` — the tqdm bar drawn from a run's state, and a ``wait=False`` job's
  display that updates itself in place;
- :mod:`.widgets` — ``clp.panel()``: the key, the balance and running jobs;
- :mod:`.bars` — tqdm bars that become plain text when they end (a saved notebook).
"""
