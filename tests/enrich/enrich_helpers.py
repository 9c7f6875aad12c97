"""What the enrichment tests share (imported by name: tests/enrich is on sys.path)."""

from __future__ import annotations

import cleanlist_pandas as clp
from cleanlist_pandas.sandbox import Sandbox
from cleanlist_pandas.store.provenance import Scope


def client_for(sb: Sandbox) -> clp.Client:
    """A client of ``sb`` whose rate window is scaled like the sandbox's clock."""
    return clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * sb.config.time_scale)


#: A scope for tests that write the result cache or the journal directly.
SCOPE = Scope("https://api.cleanlist.ai", "org_test")
