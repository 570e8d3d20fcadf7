"""Calibrated acceptance model: one LightGBM over (contact, action) rows.

One model with the action and its family as categorical features (rather than one model per
family): it shares what is common (an unhappy customer accepts little) and still splits by
action where responses differ; all candidates of a contact score in one ``predict``.

Calibration is Platt scaling on a later time slice than the one used for early stopping:
a monotone map, so it keeps the model's order and its ``pred_contrib`` explanations valid.
Actions with little evidence (fewer than ``min_evidence`` logged decisions) fall back to a
Beta posterior around their family's acceptance rate, and say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression

from nba.policy.design import CATEGORICAL_COLUMNS, MODEL_COLUMNS, MONOTONE_CONSTRAINTS

ACTION_COLUMN = MODEL_COLUMNS.index("ctx_action")


@dataclass(frozen=True)
class Evidence:
    """How much each action was tried and accepted in the training data."""

    n: int
    accepted: int
    uses_prior: bool
    prior_rate: float


class ResponseModel:
    """Predicts P(accept | contact, action), calibrated.

    Parameters follow scikit-learn's convention: set in ``__init__``, fitted state ends in
    ``_`` and :meth:`fit` returns ``self``.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 2000,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int = 50,
        early_stopping_rounds: int = 50,
        min_evidence: int = 200,
        prior_strength: float = 20.0,
        n_threads: int = 0,
        refit: bool = True,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.min_evidence = min_evidence
        self.prior_strength = prior_strength
        self.n_threads = n_threads
        self.refit = refit
        self.seed = seed

    def params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "cat_smooth": 10.0,
            "monotone_constraints": list(MONOTONE_CONSTRAINTS),
            "monotone_constraints_method": "advanced",
            "num_threads": self.n_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_valid: np.ndarray,
        y_valid: np.ndarray,
        x_calib: np.ndarray,
        y_calib: np.ndarray,
        families: list[str],
    ) -> ResponseModel:
        """Fit on ``train``, stop early on ``valid``, calibrate on ``calib`` (later in time).

        ``x_*`` have shape ``(n, len(MODEL_COLUMNS))``; ``y_*`` are 0/1 of shape ``(n,)``;
        ``families[j]`` is the family of catalog action ``j``.
        """
        cats = [MODEL_COLUMNS.index(c) for c in CATEGORICAL_COLUMNS]
        train = lgb.Dataset(
            x_train,
            y_train,
            feature_name=list(MODEL_COLUMNS),
            categorical_feature=cats,
            free_raw_data=True,
        )
        valid = lgb.Dataset(x_valid, y_valid, reference=train)
        self.booster_ = lgb.train(
            self.params(),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.num_trees())
        if self.refit:
            # Early stopping chose the number of rounds; refit on train + valid with it, so
            # the newest pre-calibration data also shapes the trees.
            both = lgb.Dataset(
                np.vstack([x_train, x_valid]),
                np.concatenate([y_train, y_valid]),
                feature_name=list(MODEL_COLUMNS),
                categorical_feature=cats,
            )
            self.booster_ = lgb.train(self.params(), both, num_boost_round=self.best_iteration_)
        raw = self._raw(x_calib)
        platt = LogisticRegression(C=1e6)  # unregularised Platt scaling
        platt.fit(raw.reshape(-1, 1), y_calib)
        self.platt_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        if self.platt_[0] <= 0:
            raise ValueError(
                "calibration found no positive link between the model's scores "
                "and acceptance on the calibration period: too little data"
            )
        self.evidence_ = self._evidence(
            np.concatenate(
                [x_train[:, ACTION_COLUMN], x_valid[:, ACTION_COLUMN], x_calib[:, ACTION_COLUMN]]
            ).astype(int),
            np.concatenate([y_train, y_valid, y_calib]),
            families,
        )
        return self

    def _evidence(self, actions: np.ndarray, y: np.ndarray, families: list[str]) -> list[Evidence]:
        k = len(families)
        n = np.bincount(actions, minlength=k)
        acc = np.bincount(actions, weights=y, minlength=k)
        out = []
        for j in range(k):
            same = [i for i in range(k) if families[i] == families[j]]
            fam_n, fam_acc = n[same].sum(), acc[same].sum()
            fam_rate = (fam_acc + 1.0) / (fam_n + 2.0)  # Beta(1, 1) on the family's rate
            a = fam_rate * self.prior_strength + acc[j]
            b = (1 - fam_rate) * self.prior_strength + (n[j] - acc[j])
            out.append(
                Evidence(
                    int(n[j]), int(acc[j]), bool(n[j] < self.min_evidence), float(a / (a + b))
                )
            )
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise RuntimeError("ResponseModel is not fitted: call fit() first")

    def _raw(self, x: np.ndarray) -> np.ndarray:
        raw = self.booster_.predict(x, raw_score=True, num_iteration=self.best_iteration_)
        return np.asarray(raw, dtype=float)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(accept), shape ``(n,)``; prior rates for actions with little evidence."""
        self._check_fitted()
        a, b = self.platt_
        p = 1.0 / (1.0 + np.exp(-(a * self._raw(x) + b)))
        actions = x[:, ACTION_COLUMN].astype(int)
        prior = np.array([e.prior_rate for e in self.evidence_])
        uses_prior = np.array([e.uses_prior for e in self.evidence_])
        out: np.ndarray = np.where(uses_prior[actions], prior[actions], p)
        return out

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature contributions to the raw score, shape ``(n, n_columns + 1)``
        (last column: the expected value), from LightGBM's ``pred_contrib``."""
        self._check_fitted()
        contrib = self.booster_.predict(x, pred_contrib=True, num_iteration=self.best_iteration_)
        return np.asarray(contrib, dtype=float)

    def uses_prior(self, action_index: int) -> bool:
        return self.evidence_[action_index].uses_prior

    # --- persistence (plain text: no pickles) -----------------------------------------------

    def to_json(self) -> str:
        self._check_fitted()
        return json.dumps(
            {
                "booster": self.booster_.model_to_string(num_iteration=self.best_iteration_),
                "best_iteration": self.best_iteration_,
                "platt": self.platt_,
                "evidence": [e.__dict__ for e in self.evidence_],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ResponseModel:
        data = json.loads(text)
        model = cls()
        model.booster_ = lgb.Booster(model_str=data["booster"])
        model.best_iteration_ = int(data["best_iteration"])
        model.platt_ = (float(data["platt"][0]), float(data["platt"][1]))
        model.evidence_ = [Evidence(**e) for e in data["evidence"]]
        return model
