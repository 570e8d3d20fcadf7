"""Penalised logistic regression of one action family: the acceptance model where a
family has too few decisions for boosted trees of its own.

Each action gets its own offset (a one-hot column), shrunk by the L2 penalty toward the
family's level: an action tried a few dozen times starts near its family and moves away
as its evidence grows, which is the partial pooling a flat per-action prior lacks. The
profile's effects are learnt from every decision of the family. The penalty is chosen by
5-fold cross-validated log loss, so the data decides how far to trust the profile.

Measured with ``benchmarks/learning_curve.py`` (README, "Learning from small logs"): on
logs of 2k and 5k decisions it ranks better than the pooled booster it replaced, whose
trees could not learn the family x profile interactions from so few rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from nba.policy.design import CONTEXT_COLUMNS, MODEL_COLUMNS
from nba.vocabulary import CHANNELS, INTERACTION_TYPES

NUMERIC = np.array([i for i, c in enumerate(MODEL_COLUMNS) if c not in CONTEXT_COLUMNS])
ONE_HOT = ("ctx_channel", "ctx_reason", "ctx_action")
"""Categorical columns coded one-hot (the family is constant within a model)."""
PENALTIES = np.logspace(-3, 1, 9)
"""Inverse L2 strengths tried by cross-validation."""
MAX_ROWS = 50_000
"""A family with more rows is fitted on its newest ones: the model only answers where
data is scarce, and cross-validation grows with the rows."""
MIN_ROWS = 100
"""Rows a family needs (and ``MIN_EACH`` of each outcome) for a model at all."""
MIN_EACH = 10


def _squash(values: np.ndarray) -> np.ndarray:
    """Signed log: counts and amounts have long tails that would dominate a linear fit."""
    out: np.ndarray = np.sign(values) * np.log1p(np.abs(values))
    return out


def enough(y: np.ndarray) -> bool:
    """Whether a family's outcomes are enough for a linear model."""
    positives = int(y.sum())
    return len(y) >= MIN_ROWS and min(positives, len(y) - positives) >= MIN_EACH


@dataclass
class LinearFamilyModel:
    """Logit = intercept + coef . design(x). ``center``/``scale`` standardise the squashed
    numeric columns; ``levels[c]`` is the number of one-hot levels of ``ONE_HOT[c]``."""

    coef: np.ndarray
    intercept: float
    center: np.ndarray
    scale: np.ndarray
    levels: tuple[int, ...]
    means: np.ndarray
    """Mean of each design column in training: the baseline of the contributions."""

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, n_actions: int) -> LinearFamilyModel:
        """Fit on a family's rows (``x`` in ``MODEL_COLUMNS`` order), newest last."""
        x, y = x[-MAX_ROWS:], y[-MAX_ROWS:]
        squashed = _squash(x[:, NUMERIC])
        with np.errstate(all="ignore"):
            center = np.nan_to_num(np.nanmean(squashed, axis=0))
            scale = np.nan_to_num(np.nanstd(squashed, axis=0))
        scale[scale <= 0] = 1.0
        levels = (len(CHANNELS), len(INTERACTION_TYPES) + 1, n_actions)
        model = cls(np.zeros(0), 0.0, center, scale, levels, np.zeros(0))
        z = model.design(x)
        folds = int(min(5, y.sum(), len(y) - y.sum()))
        search = GridSearchCV(
            LogisticRegression(max_iter=2000),
            {"C": PENALTIES},
            cv=StratifiedKFold(folds),  # unshuffled: folds are blocks of time
            scoring="neg_log_loss",
        ).fit(z, y)  # refits on every row with the chosen penalty
        final = search.best_estimator_
        model.coef = final.coef_[0].astype(float)
        model.intercept = float(final.intercept_[0])
        model.means = z.mean(axis=0)
        return model

    def design(self, x: np.ndarray) -> np.ndarray:
        """Standardised numeric columns (missing = the mean, clipped at 5 sd), then the
        one-hot codes of channel, reason and action."""
        z = (_squash(x[:, NUMERIC]) - self.center) / self.scale
        z = np.nan_to_num(z, nan=0.0).clip(-5.0, 5.0)
        hots = [
            (x[:, MODEL_COLUMNS.index(col), None] == np.arange(n)).astype(float)
            for col, n in zip(ONE_HOT, self.levels, strict=True)
        ]
        return np.hstack([z, *hots])

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The logit of acceptance, shape ``(n,)``."""
        out: np.ndarray = self.design(x) @ self.coef + self.intercept
        return out

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Exact per-column contributions to the logit, shape ``(n, len(MODEL_COLUMNS) + 1)``
        (last column: the logit at the training means), as TreeSHAP gives the boosters: a
        linear model's Shapley values are ``coef * (value - mean)``; one-hot levels add up
        into their categorical column."""
        terms = (self.design(x) - self.means) * self.coef
        out = np.zeros((x.shape[0], len(MODEL_COLUMNS) + 1))
        out[:, NUMERIC] = terms[:, : len(NUMERIC)]
        start = len(NUMERIC)
        for col, n in zip(ONE_HOT, self.levels, strict=True):
            out[:, MODEL_COLUMNS.index(col)] = terms[:, start : start + n].sum(axis=1)
            start += n
        out[:, -1] = self.intercept + float(self.means @ self.coef)
        return out

    def importance(self) -> np.ndarray:
        """Weight of each model column: the absolute coefficient of a standardised numeric
        column; a categorical column's largest level."""
        out = np.zeros(len(MODEL_COLUMNS))
        out[NUMERIC] = np.abs(self.coef[: len(NUMERIC)])
        start = len(NUMERIC)
        for col, n in zip(ONE_HOT, self.levels, strict=True):
            out[MODEL_COLUMNS.index(col)] = np.abs(self.coef[start : start + n]).max(initial=0.0)
            start += n
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "levels": list(self.levels),
            "means": self.means.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearFamilyModel:
        return cls(
            np.asarray(data["coef"], dtype=float),
            float(data["intercept"]),
            np.asarray(data["center"], dtype=float),
            np.asarray(data["scale"], dtype=float),
            tuple(int(n) for n in data["levels"]),
            np.asarray(data["means"], dtype=float),
        )
