"""Lift of the NBA over the control group, with confidence intervals.

Customers in the control group (a stable share, by customer hash) get a uniformly random
candidate instead of the NBA's choice. Comparing the value per decision of the two arms
measures what choosing well is worth:

- absolute lift: mean(NBA) - mean(control), variance var_n / n_n + var_c / n_c;
- relative lift: mean(NBA) / mean(control) - 1, with Fieller's interval for the ratio:
  the ratios r for which the difference mean(NBA) - r mean(control) is not significant.
  Unlike the delta method's symmetric interval it agrees with the absolute one (the
  relative interval excludes 0 exactly when the absolute one does), and when the control
  group's mean is itself not clearly away from zero it has no finite bounds: the report
  then gives no relative lift rather than a misleading one.

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
    rel = m1 / m0 - 1 if m0 != 0 else float("nan")
    rel_low, rel_high = fieller(m1, v1, m0, v0, z)
    return Lift(
        segment, n1, n0, m1, m0, diff, diff - z * se, diff + z * se,
        rel, rel_low - 1, rel_high - 1,
    )  # fmt: skip


def fieller(m1: float, v1: float, m0: float, v0: float, z: float = Z95) -> tuple[float, float]:
    """Fieller's interval for the ratio m1 / m0 of independent means with variances of
    the means ``v1``, ``v0``: the roots of (m1 - r m0)^2 = z^2 (v1 + r^2 v0). NaN bounds
    when the control mean is not significantly away from zero (the set is unbounded)."""
    a = m0**2 - z**2 * v0
    if a <= 0:
        nan = float("nan")
        return nan, nan
    b = m1 * m0
    c = m1**2 - z**2 * v1
    root = float(np.sqrt(max(b**2 - a * c, 0.0)))
    return (b - root) / a, (b + root) / a


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
