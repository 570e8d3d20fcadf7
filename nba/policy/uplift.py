"""What an action changes: the learned effect on the revenue of the following months.

Δ(a) = E[long-term revenue | profile, contact, a presented] − E[… | profile, contact,
nothing presented], the long-term revenue being that of the contracts held at the contact
over the catalog's ``horizon_days`` (:mod:`nba.outcomes`).

The model is one LightGBM regression over all logged decisions that lived their whole
horizon, *nothing* included: it predicts the share of the fees held that is still earned
over the horizon (:mod:`nba.outcomes`) from the profile, the contact and *what followed*:
the family's action accepted, or not accepted, or nothing presented (the "branch",
:func:`nba.policy.design.branch_code`). An action changes the months that follow through
what the customer does with it, so

    Δ(a) = fees x months x [p(a) kept(accepted, family) + (1 - p(a)) kept(not, family)
                            - kept(nothing)]

with p(a) the response model's calibrated acceptance. By total expectation this is
E[kept | a] - E[kept | nothing], whatever selects who accepts, as long as p is calibrated;
pooling the actions of a family leaves the model far fewer contrasts to learn than one per
action. Measured against the plain S-learner over actions on the simulator
(``benchmarks/uplift_learners.py``, README "What an action changes"). Each logged action
was drawn by a logging policy whose probabilities are known and whose inputs are among the
model's, so who got what does not confound the comparison. The share, not the revenue, is
modelled so that customers of every size share the same trees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from nba.policy.booster import booster_params, refits
from nba.policy.design import CATEGORICAL_COLUMNS, MODEL_COLUMNS, PER_ACTION_COLUMNS
from nba.policy.forest import Forest, compile_forest
from nba.profiles import NUMERIC_FEATURE_NAMES

FEES_COLUMN = NUMERIC_FEATURE_NAMES.index("monthly_fees")
"""Profile column of the fees held at the contact: the revenue at stake."""


@dataclass(frozen=True)
class UpliftFit:
    """How the fit went: rounds and the validation error against a constant."""

    rounds: int
    valid_rmse: float
    valid_rmse_constant: float


class UpliftModel:
    """Predicts the share of the horizon's revenue kept, per (contact, action or nothing).

    Parameters follow scikit-learn's convention: set in ``__init__``, fitted state ends in
    ``_`` and :meth:`fit` returns ``self``.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        early_stopping_rounds: int = 50,
        n_threads: int = 0,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.n_threads = n_threads
        self.seed = seed
        self.predict_threads = 0
        self._forest: Forest | None = None  # compiled from booster_, once per fit

    def params(self) -> dict[str, Any]:
        return booster_params(
            "regression",
            self.learning_rate,
            self.num_leaves,
            self.min_child_samples,
            self.n_threads,
            self.seed,
        )

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_valid: np.ndarray,
        y_valid: np.ndarray,
        horizon_months: float,
    ) -> UpliftModel:
        """Fit on ``train``, stop early on ``valid`` (later in time), then refit on both
        (up to :data:`nba.policy.booster.REFIT_MAX_ROWS` training rows).

        ``x_*``: rows of :func:`nba.policy.design.branch_rows`; ``y_*``: the share of the
        horizon's revenue kept, in [0, 1], shape ``(n,)``.
        """
        cats = [MODEL_COLUMNS.index(c) for c in CATEGORICAL_COLUMNS]

        def dataset(x: np.ndarray | list[np.ndarray], y: np.ndarray) -> lgb.Dataset:
            return lgb.Dataset(x, y, feature_name=list(MODEL_COLUMNS), categorical_feature=cats)

        train = dataset(x_train, y_train)
        booster = lgb.train(
            self.params(),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[lgb.Dataset(x_valid, y_valid, reference=train)],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        rounds = int(booster.best_iteration or booster.num_trees())
        pred = np.asarray(booster.predict(x_valid, num_iteration=rounds), dtype=float)
        self.fit_ = UpliftFit(
            rounds,
            float(np.sqrt(np.mean((pred - y_valid) ** 2))),
            float(np.sqrt(np.mean((y_train.mean() - y_valid) ** 2))),
        )
        self.booster_ = booster
        if refits(len(y_train)):
            self.booster_ = lgb.train(
                self.params(),
                dataset([x_train, x_valid], np.concatenate([y_train, y_valid])),  # no copy
                num_boost_round=rounds,
            )
        self.rounds_ = rounds
        self.horizon_months_ = float(horizon_months)
        self._forest = None
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise RuntimeError("UpliftModel is not fitted: call fit() first")

    def kept_share(self, x: np.ndarray) -> np.ndarray:
        """Predicted share of the horizon's revenue kept, shape ``(n,)``: LightGBM's
        prediction, by the compiled tree walk (:mod:`nba.policy.forest`)."""
        self._check_fitted()
        if not x.shape[0]:
            return np.empty(0)
        return self.forest().raw(x, vary=PER_ACTION_COLUMNS)

    def forest(self) -> Forest:
        """The booster's trees, compiled once."""
        if self._forest is None:
            self._forest = compile_forest(self.booster_, self.rounds_)
        return self._forest

    # --- persistence (plain text: no pickles) -----------------------------------------------

    def to_json(self) -> str:
        self._check_fitted()
        return json.dumps(
            {
                "booster": self.booster_.model_to_string(num_iteration=self.rounds_),
                "rounds": self.rounds_,
                "horizon_months": self.horizon_months_,
                "fit": self.fit_.__dict__,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> UpliftModel:
        data = json.loads(text)
        model = cls()
        model.booster_ = lgb.Booster(model_str=data["booster"])
        model.rounds_ = int(data["rounds"])
        model.horizon_months_ = float(data["horizon_months"])
        model.fit_ = UpliftFit(**data["fit"])
        return model
