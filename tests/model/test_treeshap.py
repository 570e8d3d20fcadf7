"""The compiled TreeSHAP tables (nba.policy.treeshap) against LightGBM itself: the SHAP
values must equal ``pred_contrib`` and the split decisions ``pred_leaf``, on numeric and
categorical splits, with missing values, zeros and values exactly at the thresholds."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from nba.policy.treeshap import MAX_SPLITS, compile_booster


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=n),
            rng.poisson(2.0, size=n).astype(float),  # many exact zeros and ties
            rng.uniform(-1, 1, size=n),
            rng.integers(0, 12, size=n).astype(float),  # categorical, codes 0..11
            rng.integers(0, 40, size=n).astype(float),  # categorical, > 32 codes
        ]
    )
    x[rng.random(n) < 0.15, 0] = np.nan
    x[rng.random(n) < 0.10, 2] = np.nan
    x[rng.random(n) < 0.05, 3] = np.nan
    logit = x[:, 0] * (x[:, 1] > 1) - x[:, 2] + (x[:, 3] % 3 == 0) + (x[:, 4] > 30) * 0.7
    logit = np.nan_to_num(logit, nan=0.3)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return x, y


def _train(num_leaves: int, **extra: Any) -> tuple[lgb.Booster, np.ndarray]:
    x, y = _data(4000, 1)
    params = {
        "objective": "binary",
        "num_leaves": num_leaves,
        "min_child_samples": 20,
        "learning_rate": 0.1,
        "verbosity": -1,
        "seed": 3,
        "deterministic": True,
        "force_row_wise": True,
        **extra,
    }
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=[3, 4]), 60)
    return booster, x


def _probe_rows(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """Held-out rows plus rows sitting exactly on thresholds, zeros, NaNs, unseen categories."""
    fresh, _ = _data(1500, 2)
    edges = fresh[:300].copy()
    thresholds = [
        float(node["threshold"])
        for tree in booster.dump_model()["tree_info"]
        for node in _nodes(tree["tree_structure"])
        if node["decision_type"] == "<="
    ]
    rng = np.random.default_rng(5)
    edges[:, 0] = rng.choice(thresholds, size=len(edges))
    edges[::3, 1] = 0.0
    edges[1::3, 2] = 0.0
    edges[::4, 0] = np.nan
    edges[::5, 3] = 55.0  # a category never seen in training
    edges[::7, 4] = np.nan
    return np.vstack([fresh, edges])


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    if "split_index" not in node:
        return []
    return [node, *_nodes(node["left_child"]), *_nodes(node["right_child"])]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"zero_as_missing": True},
        {"use_missing": False},
        {"max_cat_to_onehot": 64},
    ],
    ids=["nan-missing", "zero-as-missing", "no-missing", "one-hot-categories"],
)
@pytest.mark.parametrize("parallel", [False, True])
def test_tables_equal_lightgbm_pred_contrib(extra: dict[str, Any], parallel: bool) -> None:
    booster, x = _train(7, **extra)
    tables = compile_booster(booster)
    assert tables is not None
    rows = _probe_rows(booster, x)
    ours = tables.contributions(rows, parallel=parallel)
    theirs = booster.predict(rows, pred_contrib=True)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    # SHAP values add up to the raw score.
    np.testing.assert_allclose(ours.sum(axis=1), booster.predict(rows, raw_score=True), atol=1e-9)


def test_contributions_write_into_a_given_buffer() -> None:
    booster, x = _train(7)
    tables = compile_booster(booster)
    assert tables is not None
    out = np.zeros((50, x.shape[1] + 1))
    returned = tables.contributions(x[:50], parallel=False, out=out)
    assert returned is out
    np.testing.assert_allclose(out, booster.predict(x[:50], pred_contrib=True), atol=1e-9)


def test_only_the_used_iterations_are_compiled() -> None:
    booster, x = _train(7)
    tables = compile_booster(booster, num_iteration=25)
    assert tables is not None
    np.testing.assert_allclose(
        tables.contributions(x[:200], parallel=False),
        booster.predict(x[:200], num_iteration=25, pred_contrib=True),
        atol=1e-9,
    )


def test_trees_beyond_the_table_size_fall_back() -> None:
    booster, _ = _train(2 * MAX_SPLITS)
    assert max(len(_nodes(t["tree_structure"])) for t in booster.dump_model()["tree_info"]) > (
        MAX_SPLITS
    )
    assert compile_booster(booster) is None
