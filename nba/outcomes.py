"""The long-term outcome of logged decisions, read from the contracts that followed them.

For a decision at time ``t`` the outcome is the revenue of the contracts the customer held
at ``t`` over the ``horizon_days`` after it: each contract's ``monthly_fee`` x the days it
stayed active in the horizon / 30.44 (a missing fee counts 0). Whatever else the decision
did (a product sold, a balance recovered) is the catalog's ``value``, not this.

**Censoring.** A decision less than ``horizon_days`` before the end of the data has not
lived its whole horizon yet. The horizon is cut into ``periods`` equal periods; each
decision's revenue is known for the periods that ended before the data did
(``observed``). Two uses, two treatments:

- the uplift model learns only from decisions that lived their whole horizon
  (``full_horizon``; exclusion). Unbiased when who is censored depends on the calendar
  only (an export cut at a date, a world that does not drift within the horizon).
  Measured in the README against per-period censoring weights on all decisions, which
  did worse: a weighted label is low for recent decisions, and the trees learn "recent"
  from features that grow with time;
- the long-term reward of a *set* of decisions (off-policy evaluation of the newest ones,
  none of which lived its horizon) is the per-period inverse-probability-of-censoring
  estimate (:meth:`LongTermOutcomes.revenue_estimate`; Lin et al. 1997's partitioned
  estimator): each period's revenue from the decisions that lived through it, weighted by
  1 / the share of decisions that did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from nba.contract import Dataset

MONTH_DAYS = 30.44
_US_PER_DAY = 86_400_000_000.0


@dataclass
class LongTermOutcomes:
    """Per decision (rows in the order of ``decision_id``): the monthly fees held at the
    decision, and per period of the horizon the share of those fees still earned
    (``kept``, in [0, 1]) and whether that period ended before the data (``observed``),
    shapes ``(n, periods)``."""

    decision_id: np.ndarray
    fees: np.ndarray
    kept: np.ndarray
    observed: np.ndarray
    horizon_days: int
    contracts_without_fee: int

    @property
    def full_horizon(self) -> np.ndarray:
        """Decisions whose whole horizon ended before the data did, shape ``(n,)``."""
        out: np.ndarray = self.observed[:, -1]
        return out

    def kept_share(self) -> np.ndarray:
        """Share of the fees held that was earned over the horizon, shape ``(n,)`` (only
        meaningful where :attr:`full_horizon`)."""
        out: np.ndarray = self.kept.mean(axis=1)
        return out

    @property
    def periods(self) -> int:
        return int(self.kept.shape[1])

    @property
    def horizon_months(self) -> float:
        return self.horizon_days / MONTH_DAYS

    def observed_share(self) -> np.ndarray:
        """Share of decisions that lived through each period, shape ``(periods,)``."""
        if not self.observed.shape[0]:
            return np.zeros(self.periods)
        out: np.ndarray = self.observed.mean(axis=0)
        return out

    def kept_share_estimate(self, share: np.ndarray | None = None) -> np.ndarray:
        """Per decision, an unbiased (under calendar censoring) estimate of the share of the
        horizon's revenue kept: the mean over periods of kept x observed / P(observed).
        ``share`` defaults to :meth:`observed_share`. Shape ``(n,)``."""
        share = self.observed_share() if share is None else share
        weight = np.divide(1.0, share, out=np.zeros_like(share), where=share > 0)
        out: np.ndarray = (self.kept * self.observed * weight).mean(axis=1)
        return out

    def revenue_estimate(self) -> np.ndarray:
        """Estimated revenue over the horizon per decision (fees x months x kept share)."""
        out: np.ndarray = self.fees * self.horizon_months * self.kept_share_estimate()
        return out


def default_periods(horizon_days: int) -> int:
    """About one period a month, at least one."""
    return max(1, round(horizon_days / MONTH_DAYS))


def long_term_outcomes(
    dataset: Dataset, horizon_days: int, periods: int | None = None
) -> LongTermOutcomes:
    """The long-term outcome of every logged decision (see the module docstring)."""
    periods = periods or default_periods(horizon_days)
    con = dataset.con
    end_row = _one(con.execute("SELECT epoch_us(CAST(? AS TIMESTAMP))", [_data_end(dataset)]))
    data_end = float(end_row[0]) / _US_PER_DAY if end_row and end_row[0] is not None else 0.0
    rows = con.execute("SELECT decision_id FROM decisions ORDER BY decision_id").fetchall()
    ids = np.array([r[0] for r in rows], dtype=object)
    held = con.execute(
        """
        SELECT d.decision_id, epoch_us(d.timestamp) / 86400000000.0 AS t,
               coalesce(epoch_us(c.end_date) / 86400000000.0, 'infinity'::DOUBLE) AS ended,
               coalesce(c.monthly_fee, 0) AS fee
        FROM decisions d JOIN contracts c
          ON c.customer_id = d.customer_id AND c.start_date <= d.timestamp
         AND (c.end_date IS NULL OR c.end_date > d.timestamp)
        ORDER BY d.decision_id
        """
    ).fetchnumpy()
    times = con.execute(
        "SELECT epoch_us(timestamp) / 86400000000.0 FROM decisions ORDER BY decision_id"
    ).fetchnumpy()
    t_all = np.asarray(next(iter(times.values())), dtype=float) if ids.size else np.empty(0)
    no_fee_row = _one(con.execute("SELECT count(*) FROM contracts WHERE monthly_fee IS NULL"))
    row = np.searchsorted(ids, np.asarray(held["decision_id"], dtype=object))
    fee = np.asarray(held["fee"], dtype=float)
    t = np.asarray(held["t"], dtype=float)
    ended = np.asarray(held["ended"], dtype=float)
    length = horizon_days / periods
    fees = np.bincount(row, weights=fee, minlength=ids.size)
    kept = np.zeros((ids.size, periods))
    for k in range(periods):
        lo = t + k * length
        overlap = np.clip(np.minimum(ended, lo + length) - lo, 0.0, length) / length
        kept[:, k] = np.bincount(row, weights=fee * overlap, minlength=ids.size)
    kept = np.divide(kept, fees[:, None], out=np.zeros_like(kept), where=fees[:, None] > 0)
    observed = t_all[:, None] + length * np.arange(1, periods + 1)[None, :] <= data_end + 1e-9
    return LongTermOutcomes(
        ids,
        fees,
        np.clip(kept, 0.0, 1.0),
        observed,
        horizon_days,
        int(no_fee_row[0]) if no_fee_row else 0,
    )


def _data_end(dataset: Dataset) -> object:
    """When the data stops: the newest interaction, contract change or decision."""
    result = dataset.con.execute(
        """SELECT greatest(
             (SELECT max(timestamp) FROM interactions),
             (SELECT max(timestamp) FROM decisions),
             (SELECT max(start_date) FROM contracts),
             (SELECT max(end_date) FROM contracts))"""
    )
    row = _one(result)
    return row[0] if row else None


def _one(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row, with the result consumed (an open result blocks the connection)."""
    rows = result.fetchall()
    return rows[0] if rows else None
