"""Lift of the NBA over the control group, with delta-method confidence intervals.

Customers in the control group (a stable share, by customer hash) get a uniformly random
candidate instead of the NBA's choice. Comparing the value per decision of the two arms
measures what choosing well is worth:

- absolute lift: mean(NBA) - mean(control), variance var_n / n_n + var_c / n_c;
- relative lift: mean(NBA) / mean(control) - 1, by the delta method:
  var(a / b) ~ var(a) / b^2 + a^2 var(b) / b^4 for independent arms.

Segments are the family of the action the NBA would have chosen for the customer (for
the control group too: the policy's own top candidate is logged), so each family's lift
compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Lift:
    segment: str
    n_nba: int
    n_control: int
    value_nba: float
    value_control: float
    lift: float
    lift_low: float
    lift_high: float
    relative: float
    relative_low: float
    relative_high: float


def lift(segment: str, nba: np.ndarray, control: np.ndarray, z: float = Z95) -> Lift:
    """Lift of ``nba`` over ``control`` (values per decision), with ``z``-intervals."""
    n1, n0 = len(nba), len(control)
    if n1 < 2 or n0 < 2:
        nan = float("nan")
        m1 = float(np.mean(nba)) if n1 else nan
        m0 = float(np.mean(control)) if n0 else nan
        return Lift(segment, n1, n0, m1, m0, m1 - m0, nan, nan, nan, nan, nan)
    m1, m0 = float(np.mean(nba)), float(np.mean(control))
    v1, v0 = float(np.var(nba, ddof=1)) / n1, float(np.var(control, ddof=1)) / n0
    diff, se = m1 - m0, float(np.sqrt(v1 + v0))
    if m0 != 0:
        rel = m1 / m0 - 1
        rel_se = float(np.sqrt(v1 / m0**2 + m1**2 * v0 / m0**4))
    else:
        rel = rel_se = float("nan")
    return Lift(
        segment, n1, n0, m1, m0, diff, diff - z * se, diff + z * se,
        rel, rel - z * rel_se, rel + z * rel_se,
    )  # fmt: skip


def lift_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``: one row per decision with ``arm`` (nba/control), ``segment`` and
    ``value``. Returns one row per segment plus ``overall``."""
    rows = []
    for segment, part in [*sorted(frame.groupby("segment")), ("overall", frame)]:
        rows.append(
            lift(
                str(segment),
                part.loc[part["arm"] == "nba", "value"].to_numpy(dtype=float),
                part.loc[part["arm"] == "control", "value"].to_numpy(dtype=float),
            )
        )
    return pd.DataFrame([r.__dict__ for r in rows])
