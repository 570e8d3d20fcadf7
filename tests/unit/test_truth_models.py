"""The benchmarks' stand-in for the response model answers each row with its own contact's
and action's rate, in the order ``Policy.score`` builds the rows (sorted by family)."""

from __future__ import annotations

import numpy as np

from benchmarks.truth_models import TrueRates
from nba.policy.design import MODEL_COLUMNS


def test_rows_sorted_by_family_get_their_own_rate() -> None:
    n, k = 4, 5
    family = np.array([1, 0, 1, 2, 0])
    rates = np.arange(n * k, dtype=float).reshape(n, k) / 100
    who, act = np.divmod(np.arange(n * k), k)
    order = np.argsort(family[act], kind="stable")  # as Policy._rows_by_family
    x = np.zeros((n * k, len(MODEL_COLUMNS)))
    x[:, MODEL_COLUMNS.index("ctx_action")] = act[order]
    got = TrueRates(rates, np.zeros(k)).predict_proba(x)
    np.testing.assert_array_equal(got, rates[who[order], act[order]])
    # Read contact-major, as before the fix, most rows would get another row's rate.
    assert (rates.ravel() != got).sum() > n * k // 2
