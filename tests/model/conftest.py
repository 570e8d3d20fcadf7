"""Helpers of the model tests: logged decisions with their profiles, without Feast."""

from __future__ import annotations

import pandas as pd

from nba.contract import Dataset
from nba.inputs import decisions_with_reason, profiles_at


def decision_frame(ds: Dataset) -> pd.DataFrame:
    """The decision log with each decision's reason and profile as of it (what training
    reads through Feast), computed directly."""
    dec = decisions_with_reason(ds)
    return pd.concat(
        [dec, profiles_at(ds, dec).drop(columns=["customer_id", "timestamp"])], axis=1
    )
