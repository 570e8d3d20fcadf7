"""The compiled tree walk (nba.policy.forest) against LightGBM's own predict: the same raw
scores on numeric and categorical splits, missing values, zeros, values exactly at the
thresholds, unseen categories, big trees (no size limit, unlike the TreeSHAP tables), a
regression, and the first rounds only."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from nba.policy.forest import compile_forest
from tests.model.test_treeshap import _data, _probe_rows, _train


@pytest.mark.parametrize(
    "extra",
    [{}, {"zero_as_missing": True}, {"use_missing": False}, {"max_cat_to_onehot": 64}],
    ids=["nan-missing", "zero-as-missing", "no-missing", "one-hot-categories"],
)
@pytest.mark.parametrize("leaves", [7, 63])
@pytest.mark.parametrize("parallel", [False, True])
def test_raw_scores_equal_lightgbm(extra: dict[str, Any], leaves: int, parallel: bool) -> None:
    booster, x = _train(leaves, **extra)
    rows = _probe_rows(booster, x)
    ours = compile_forest(booster).raw(rows, parallel=parallel)
    np.testing.assert_allclose(ours, booster.predict(rows, raw_score=True), rtol=0, atol=1e-9)


def test_a_regression_and_the_first_rounds_only() -> None:
    x, y = _data(3000, 4)
    params = {"objective": "regression", "num_leaves": 15, "verbosity": -1, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(x, y * 3.0, categorical_feature=[3, 4]), 80)
    forest = compile_forest(booster, num_iteration=30)
    np.testing.assert_allclose(
        forest.raw(x[:500]), booster.predict(x[:500], num_iteration=30), rtol=0, atol=1e-9
    )
    assert compile_forest(booster).raw(np.empty((0, x.shape[1]))).shape == (0,)


@pytest.mark.parametrize("vary", [(3,), (2, 4), (0, 1, 2, 3, 4)], ids=["one", "two", "all"])
@pytest.mark.parametrize("parallel", [False, True])
def test_rows_of_one_contact_share_their_walk_and_give_the_same_scores(
    vary: tuple[int, ...], parallel: bool
) -> None:
    """Groups of rows equal outside ``vary`` (as one contact's candidates are), next to
    each other or not, with NaNs and zeros among the shared values: the grouped walk gives
    exactly the plain walk's scores, and LightGBM's."""
    booster, x = _train(15)
    forest = compile_forest(booster)
    base = _probe_rows(booster, x)
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 8, size=len(base))
    rows = np.repeat(base, sizes, axis=0)
    donors = base[rng.integers(0, len(base), size=len(rows))]
    rows[:, list(vary)] = donors[:, list(vary)]  # each row its own action's columns
    # A few groups broken up: the walk must not assume that equal rows are adjacent.
    rows[::50] = rows[::50][::-1]
    plain = forest.raw(rows, parallel=parallel)
    grouped = forest.raw(rows, parallel=parallel, vary=vary)
    assert np.array_equal(grouped, plain)
    np.testing.assert_allclose(grouped, booster.predict(rows, raw_score=True), rtol=0, atol=1e-9)
    assert forest.raw(rows[:0], vary=vary).shape == (0,)
