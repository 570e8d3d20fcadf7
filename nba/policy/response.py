"""Calibrated acceptance models: one LightGBM per action family, and one pooled LightGBM
for the families with too little data for their own.

Measured on the demo world (``README.md``, Performance): one model per family reached a
normalised policy value of 0.818 against 0.803 for a single model over all actions, and
fits in half the time. Each family's model sees the same columns (profile features,
channel, reason, action), so the action still matters within a family and explanations
read the same way for all.

A family needs ``MIN_FAMILY_ROWS`` rows in each time slice for a model of its own. The
families below that share one pooled booster fitted on every family's rows (family and
action are inputs, so each keeps its own level and borrows the profile's effects from
the rest), stopped early and calibrated on their own rows. Measured in the README's
learning curve (``benchmarks/learning_curve.py``): on logs of 5k-25k decisions it lifts
the test AUC and the policy value where a family's flat prior used to answer.

Each booster stops early on a later time slice, is refit on train + valid with the
chosen number of rounds, and is calibrated by Platt scaling on a later slice still: a
monotone map, so it keeps the model's order and its ``pred_contrib`` explanations valid.
Actions with little evidence (fewer than ``min_evidence`` logged decisions), and every
action when even the pooled model has too little data, fall back to a Beta posterior
around the family's acceptance rate, and say so."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression

from nba.policy.design import CATEGORICAL_COLUMNS, MODEL_COLUMNS, MONOTONE_CONSTRAINTS
from nba.policy.forest import Forest, compile_forest
from nba.policy.treeshap import TreeTables, compile_booster
from nba.vocabulary import FAMILIES

ACTION_COLUMN = MODEL_COLUMNS.index("ctx_action")
FAMILY_COLUMN = MODEL_COLUMNS.index("ctx_family")
MIN_FAMILY_ROWS = 200
"""A family needs this many rows in each time slice (and both outcomes) to get a model of
its own; smaller families share the pooled model."""
MIN_POOLED_ROWS = 100
"""Rows (with both outcomes) in each time slice below which not even the pooled model is
fitted, and every action answers with its prior."""


def _enough(parts: list[tuple[np.ndarray, np.ndarray]], rows: int) -> bool:
    """Whether every slice has ``rows`` rows and both outcomes."""
    return all(len(y) >= rows and 0 < y.sum() < len(y) for _, y in parts)


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


@dataclass(frozen=True)
class Evidence:
    """How much each action was tried and accepted in the training data."""

    n: int
    accepted: int
    uses_prior: bool
    prior_rate: float


@dataclass
class FamilyModel:
    booster: lgb.Booster
    rounds: int
    platt: tuple[float, float]
    pooled: bool = False
    """Shared by the families too small for a model of their own."""
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


class ResponseModel:
    """Predicts P(accept | contact, action), calibrated, with one booster per family.

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
        pooled: bool = True,
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
        self.pooled = pooled
        self.seed = seed
        # Threads per predict call; 0 = LightGBM's default (every core). The API sets 1: an
        # answer scores a dozen rows, and idle OpenMP workers spinning on the other core
        # only take CPU from the server's other work.
        self.predict_threads = 0

    def params(self) -> dict[str, Any]:
        return {
            **booster_params(
                "binary",
                self.learning_rate,
                self.num_leaves,
                self.min_child_samples,
                self.n_threads,
                self.seed,
            ),
            "monotone_constraints": list(MONOTONE_CONSTRAINTS),
            "monotone_constraints_method": "advanced",
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
        self.families_ = tuple(families)
        self.models_: dict[int, FamilyModel] = {}
        slices = ((x_train, y_train), (x_valid, y_valid), (x_calib, y_calib))
        for code in range(len(FAMILIES)):
            parts = [
                (x[x[:, FAMILY_COLUMN] == code], y[x[:, FAMILY_COLUMN] == code]) for x, y in slices
            ]
            if _enough(parts, MIN_FAMILY_ROWS):
                fitted = self._fit_family(*parts[0], *parts[1], *parts[2])
                if fitted is not None:
                    self.models_[code] = fitted
        if self.pooled:
            self._fit_pooled(slices, families)
        actions = np.concatenate(
            [x_train[:, ACTION_COLUMN], x_valid[:, ACTION_COLUMN], x_calib[:, ACTION_COLUMN]]
        ).astype(int)
        self.evidence_ = self._evidence(
            actions, np.concatenate([y_train, y_valid, y_calib]), families
        )
        return self

    def _fit_pooled(
        self, slices: tuple[tuple[np.ndarray, np.ndarray], ...], families: list[str]
    ) -> None:
        """One booster for every family without a model of its own, fitted on all the
        presented actions (family and action are inputs, so each keeps its own level and
        shares the profile's effects with the rest), stopped early and calibrated on the
        rows of the families it answers for when they are enough, else on all rows."""
        present = {FAMILIES.index(f) for f in families}
        rest = sorted(present - set(self.models_))
        if not rest:
            return
        (xt, yt), *held = slices
        own = []
        for x, y in held:
            mine = np.isin(x[:, FAMILY_COLUMN], rest)
            part = (x[mine], y[mine])
            own.append(part if _enough([part], MIN_POOLED_ROWS) else (x, y))
        if not _enough([(xt, yt), *own], MIN_POOLED_ROWS):
            return
        fitted = self._fit_family(xt, yt, *own[0], *own[1])
        if fitted is None:
            return
        fitted.pooled = True
        for code in rest:
            self.models_[code] = fitted

    def _fit_family(
        self,
        xt: np.ndarray,
        yt: np.ndarray,
        xv: np.ndarray,
        yv: np.ndarray,
        xc: np.ndarray,
        yc: np.ndarray,
    ) -> FamilyModel | None:
        """A calibrated booster, or ``None`` when calibration finds no positive link
        between its scores and acceptance (too little data to learn from)."""
        cats = [MODEL_COLUMNS.index(c) for c in CATEGORICAL_COLUMNS]

        def dataset(x: np.ndarray, y: np.ndarray) -> lgb.Dataset:
            return lgb.Dataset(x, y, feature_name=list(MODEL_COLUMNS), categorical_feature=cats)

        train = dataset(xt, yt)
        booster = lgb.train(
            self.params(),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[lgb.Dataset(xv, yv, reference=train)],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        rounds = int(booster.best_iteration or booster.num_trees())
        if self.refit:
            # Early stopping chose the number of rounds; refit on train + valid with it, so
            # the newest pre-calibration data also shapes the trees.
            booster = lgb.train(
                self.params(),
                dataset(np.vstack([xt, xv]), np.concatenate([yt, yv])),
                num_boost_round=rounds,
            )
        raw = np.asarray(booster.predict(xc, raw_score=True, num_iteration=rounds), dtype=float)
        platt = LogisticRegression(C=1e6)  # unregularised Platt scaling
        platt.fit(raw.reshape(-1, 1), yc)
        a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        if a <= 0:  # no positive link between scores and acceptance: too little data
            return None
        return FamilyModel(booster, rounds, (a, b))

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
            modelled = FAMILIES.index(families[j]) in self.models_
            out.append(
                Evidence(
                    int(n[j]),
                    int(acc[j]),
                    bool(n[j] < self.min_evidence or not modelled),
                    float(a / (a + b)),
                )
            )
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise RuntimeError("ResponseModel is not fitted: call fit() first")

    @property
    def rounds_(self) -> dict[str, int]:
        """Boosting rounds per family with a model of its own, and of the pooled model."""
        own = {FAMILIES[c]: m.rounds for c, m in self.models_.items() if not m.pooled}
        pooled = self.pooled_model()
        return own | ({"pooled": pooled.rounds} if pooled else {})

    def pooled_model(self) -> FamilyModel | None:
        return next((m for m in self.models_.values() if m.pooled), None)

    def pooled_families(self) -> list[str]:
        """The families answered by the pooled model."""
        return [FAMILIES[c] for c, m in self.models_.items() if m.pooled]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(accept), shape ``(n,)``; prior rates for actions with little evidence.

        Rows sorted by family (as :meth:`nba.policy.policy.Policy.score` builds them) are
        scored as slices, without copying each family's rows.
        """
        self._check_fitted()
        actions = x[:, ACTION_COLUMN].astype(int)
        out = self.prior_rates()[actions]
        uses_prior = np.array([e.uses_prior for e in self.evidence_])[actions]
        for _code, m, rows in self._family_blocks(x):
            modelled = ~uses_prior[rows]
            if not modelled.any():
                continue
            part = x[rows] if modelled.all() else x[rows][modelled]
            raw = m.forest().raw(part)  # LightGBM's raw score, without its per-call cost
            a, b = m.platt
            p = 1.0 / (1.0 + np.exp(-(a * raw + b)))
            if modelled.all():
                out[rows] = p
            else:
                idx = np.arange(x.shape[0])[rows][modelled]
                out[idx] = p
        return out

    def prepare(self) -> None:
        """Compile every family model for TreeSHAP now (about a second for the demo model)
        rather than on the first explanation: a server's first answer, a batch's first
        chunk."""
        self._check_fitted()
        for m in self.models_.values():
            m.tree_tables()
            m.forest()

    def contributions(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Per-feature contributions to the raw score, shape ``(n, n_columns + 1)`` (last
        column: the expected value): each family model's exact TreeSHAP values
        (:mod:`nba.policy.treeshap`, equal to ``pred_contrib``); zeros for rows answered by
        the prior. Written into ``out`` (C-ordered, of that shape) if given."""
        self._check_fitted()
        shape = (x.shape[0], len(MODEL_COLUMNS) + 1)
        if out is None:
            out = np.zeros(shape)
        elif out.shape != shape or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-ordered array of shape {shape}, got {out.shape}")
        else:
            out.fill(0.0)
        for _code, m, rows in self._family_blocks(x):
            tables = m.tree_tables()
            part = x[rows]
            if tables is None:
                out[rows] = self._predict(m, part, pred_contrib=True)
            elif isinstance(rows, slice):  # written in place: no copy of millions of rows
                parallel = self.predict_threads != 1 and part.shape[0] >= 256
                tables.contributions(part, parallel, out=out[rows])
            else:
                parallel = self.predict_threads != 1 and part.shape[0] >= 256
                out[rows] = tables.contributions(part, parallel)
        return out

    def _family_blocks(self, x: np.ndarray) -> list[tuple[int, FamilyModel, slice | np.ndarray]]:
        """(family code, its model, its rows) for the modelled families present in ``x``:
        a slice when rows are sorted by family, else a boolean mask."""
        codes = x[:, FAMILY_COLUMN]
        if codes.size and np.all(codes[1:] >= codes[:-1]):
            bounds = np.searchsorted(codes, np.arange(len(FAMILIES) + 1) - 0.5)
            return [
                (c, m, slice(int(bounds[c]), int(bounds[c + 1])))
                for c, m in self.models_.items()
                if bounds[c + 1] > bounds[c]
            ]
        found = []
        for c, m in self.models_.items():
            rows = codes == c
            if rows.any():
                found.append((c, m, rows))
        return found

    def _predict(self, m: FamilyModel, x: np.ndarray, **kind: bool) -> np.ndarray:
        out = m.booster.predict(
            x, num_iteration=m.rounds, num_threads=self.predict_threads, **kind
        )
        return np.asarray(out, dtype=float)

    def feature_importance(self) -> dict[str, float]:
        """Total gain per model column, summed over the family models (and the pooled one)."""
        total = np.zeros(len(MODEL_COLUMNS))
        for m in {id(m): m for m in self.models_.values()}.values():
            total += m.booster.feature_importance("gain", iteration=m.rounds)
        return dict(zip(MODEL_COLUMNS, total.tolist(), strict=True))

    def prior_rates(self) -> np.ndarray:
        """Each catalog action's prior acceptance rate (its family's average), shape
        ``(n_actions,)``: the answer for a customer without a profile."""
        return np.array([e.prior_rate for e in self.evidence_])

    def uses_prior(self, action_index: int) -> bool:
        return self.evidence_[action_index].uses_prior

    # --- persistence (plain text: no pickles) -----------------------------------------------

    def to_json(self) -> str:
        self._check_fitted()

        def saved(m: FamilyModel) -> dict[str, Any]:
            return {
                "booster": m.booster.model_to_string(num_iteration=m.rounds),
                "rounds": m.rounds,
                "platt": list(m.platt),
            }

        pooled = self.pooled_model()
        return json.dumps(
            {
                "families": list(self.families_),
                "models": {FAMILIES[c]: saved(m) for c, m in self.models_.items() if not m.pooled},
                "pooled": None
                if pooled is None
                else saved(pooled) | {"families": self.pooled_families()},
                "evidence": [e.__dict__ for e in self.evidence_],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ResponseModel:
        data = json.loads(text)
        model = cls()
        model.families_ = tuple(data["families"])

        def loaded(m: dict[str, Any], pooled: bool = False) -> FamilyModel:
            platt = (float(m["platt"][0]), float(m["platt"][1]))
            return FamilyModel(
                lgb.Booster(model_str=m["booster"]), int(m["rounds"]), platt, pooled
            )

        model.models_ = {FAMILIES.index(f): loaded(m) for f, m in data["models"].items()}
        if data.get("pooled"):  # absent in models saved before the pooled model
            shared = loaded(data["pooled"], pooled=True)
            model.models_ |= {FAMILIES.index(f): shared for f in data["pooled"]["families"]}
        model.evidence_ = [Evidence(**e) for e in data["evidence"]]
        return model
