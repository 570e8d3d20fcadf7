"""One family's boosted trees: LightGBM stopped early on a later time slice, refit on
train + valid with the chosen number of rounds (below :data:`REFIT_MAX_ROWS`), and
calibrated by Platt scaling on a later slice still (a monotone map, so it keeps the
model's order and its ``pred_contrib`` explanations valid)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression

from nba.policy.design import CATEGORICAL_COLUMNS, MODEL_COLUMNS
from nba.policy.forest import Forest, compile_forest
from nba.policy.treeshap import TreeTables, compile_booster

REFIT_MAX_ROWS = 200_000
"""Training rows up to which a booster is refit on train + valid after early stopping.
On a small log the validation slice's newest decisions are worth a second fit; on a
large one the refit doubles the fit for nothing measurable (1M decisions: normalised
value 0.818 without refits, README "Performance"), so the early-stopped booster is kept."""


def refits(train_rows: int) -> bool:
    """Whether a booster trained on ``train_rows`` rows is refit (:data:`REFIT_MAX_ROWS`)."""
    return train_rows <= REFIT_MAX_ROWS


def booster_params(
    objective: str,
    learning_rate: float,
    num_leaves: int,
    min_child_samples: int,
    n_threads: int,
    seed: int,
) -> dict[str, Any]:
    """LightGBM settings shared by the engine's boosters (deterministic, row-wise)."""
    return {
        "objective": objective,
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "min_child_samples": min_child_samples,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "cat_smooth": 10.0,
        "num_threads": n_threads,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


@dataclass
class FamilyModel:
    booster: lgb.Booster
    rounds: int
    platt: tuple[float, float]
    pooled: bool = False
    """Shared by several families: the pooled booster of models saved before the
    linear models, still loaded."""
    _tables: TreeTables | bool | None = False  # False: not compiled yet
    _forest: Forest | None = None

    def tree_tables(self) -> TreeTables | None:
        """The booster compiled for fast TreeSHAP (once); ``None`` if its trees are too big."""
        if self._tables is False:
            self._tables = compile_booster(self.booster, self.rounds)
        return self._tables if isinstance(self._tables, TreeTables) else None

    def forest(self) -> Forest:
        """The booster's trees for the compiled raw score (once)."""
        if self._forest is None:
            self._forest = compile_forest(self.booster, self.rounds)
        return self._forest


def fit_booster(
    params: dict[str, Any],
    slices: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_estimators: int,
    early_stopping_rounds: int,
    refit: bool,
) -> FamilyModel | None:
    """A booster fitted on train, stopped early on valid, calibrated on calib (``slices``:
    x and y of each, in that order); ``None`` when calibration finds no positive link
    between its scores and acceptance (too little data to learn from)."""
    xt, yt, xv, yv, xc, yc = slices
    cats = [MODEL_COLUMNS.index(c) for c in CATEGORICAL_COLUMNS]

    def dataset(x: np.ndarray | list[np.ndarray], y: np.ndarray) -> lgb.Dataset:
        return lgb.Dataset(x, y, feature_name=list(MODEL_COLUMNS), categorical_feature=cats)

    train = dataset(xt, yt)
    booster = lgb.train(
        params,
        train,
        num_boost_round=n_estimators,
        valid_sets=[lgb.Dataset(xv, yv, reference=train)],
        callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
    )
    rounds = int(booster.best_iteration or booster.num_trees())
    if refit and refits(len(yt)):
        # Early stopping chose the number of rounds; refit on train + valid with it, so
        # the newest pre-calibration data also shapes the trees.
        booster = lgb.train(
            params,
            dataset([xt, xv], np.concatenate([yt, yv])),  # a list: no stacked copy
            num_boost_round=rounds,
        )
    raw = np.asarray(booster.predict(xc, raw_score=True, num_iteration=rounds), dtype=float)
    platt = LogisticRegression(C=1e6)  # unregularised Platt scaling
    platt.fit(raw.reshape(-1, 1), yc)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    if a <= 0:  # no positive link between scores and acceptance: too little data
        return None
    return FamilyModel(booster, rounds, (a, b))
