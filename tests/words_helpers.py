"""What the "words the user can act on" tests (test_words_*.py) share: a fast poll policy,
a frame of valid leads, and a client paced to a sandbox's scaled window."""

from __future__ import annotations

import numpy as np
import pandas as pd

import cleanlist_pandas as clp
from cleanlist_pandas.run.engine import PollPolicy
from cleanlist_pandas.sandbox import Sandbox

FAST = PollPolicy(first=0.02, min_interval=0.005, max_interval=0.1)


def leads(n: int) -> pd.DataFrame:
    """``n`` valid, distinct leads (name + company website)."""
    i = np.arange(n)
    return pd.DataFrame(
        {
            "First Name": [f"Ann{k}" for k in i],
            "Last Name": [f"Lee{k}" for k in i],
            "Company Website": [f"https://www.co{k % 97}.com/about" for k in i],
        }
    )


def client_for(sb: Sandbox) -> clp.Client:
    """A client of ``sb`` whose rate window is scaled like the sandbox's clock."""
    return clp.Client(api_key=sb.api_key, base_url=sb.base_url, per=60 * sb.config.time_scale)
