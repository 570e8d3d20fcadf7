"""Calibrated acceptance models: one LightGBM per action family, and a penalised logistic
regression (:mod:`nba.policy.linear`) for the families with too little data for trees.

Measured on the demo world (``README.md``, Performance): one model per family reached a
normalised policy value of 0.818 against 0.803 for a single model over all actions, and
fits in half the time. Each family's model sees the same columns (profile features,
channel, reason, action), so the action still matters within a family and explanations
read the same way for all.

A family needs ``MIN_FAMILY_ROWS`` rows in each time slice for a booster of its own. The
families below that get a linear model fitted on all their decisions, each action's
level shrunk toward the family's; so do the actions of a boosted family tried fewer than
``min_evidence`` times. Measured in the README's learning curve
(``benchmarks/learning_curve.py``): on logs of 2k-10k decisions it ranks better than
either a flat prior or the pooled booster over all families that it replaced.

Each booster stops early on a later time slice, is refit on train + valid with the
chosen number of rounds (on up to ``REFIT_MAX_ROWS`` training rows), and is calibrated
by Platt scaling on a later slice still: a monotone map, so it keeps the model's order
and its ``pred_contrib`` explanations valid.
Only an action whose family has too few decisions even for the linear model
(:func:`nba.policy.linear.enough`) falls back to a Beta posterior around the family's
acceptance rate, and says so. Models saved with the earlier pooled booster still load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from nba.policy.booster import FamilyModel, booster_params, fit_booster
from nba.policy.design import MODEL_COLUMNS, MONOTONE_CONSTRAINTS, PER_ACTION_COLUMNS
from nba.policy.linear import LinearFamilyModel, enough
from nba.vocabulary import FAMILIES

ACTION_COLUMN = MODEL_COLUMNS.index("ctx_action")
FAMILY_COLUMN = MODEL_COLUMNS.index("ctx_family")
MIN_FAMILY_ROWS = 200
"""A family needs this many rows in each time slice (and both outcomes) to get a model of
its own; smaller families get a linear model."""


def _enough(parts: list[tuple[np.ndarray, np.ndarray]], rows: int) -> bool:
    """Whether every slice has ``rows`` rows and both outcomes."""
    return all(len(y) >= rows and 0 < y.sum() < len(y) for _, y in parts)


@dataclass(frozen=True)
class Evidence:
    """How much each action was tried and accepted in the training data."""

    n: int
    accepted: int
    uses_prior: bool
    prior_rate: float


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
        linear: bool = True,
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
        self.linear = linear
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
        # Columns of all rows, not a stacked copy of them (a large log is gigabytes).
        xs = (x_train, x_valid, x_calib)
        y_all = np.concatenate([y_train, y_valid, y_calib])
        actions = np.concatenate([x[:, ACTION_COLUMN] for x in xs]).astype(int)
        family_of_row = np.concatenate([x[:, FAMILY_COLUMN] for x in xs])
        n = np.bincount(actions, minlength=len(families))
        self.linear_: dict[int, LinearFamilyModel] = {}
        if self.linear:
            for code in range(len(FAMILIES)):
                mine = [j for j, f in enumerate(families) if FAMILIES.index(f) == code]
                if not mine or (code in self.models_ and n[mine].min() >= self.min_evidence):
                    continue  # boosted, and every action has evidence: no linear model needed
                rows = family_of_row == code
                if enough(y_all[rows]):
                    x_family = np.vstack([x[x[:, FAMILY_COLUMN] == code] for x in xs])
                    self.linear_[code] = LinearFamilyModel.fit(
                        x_family, y_all[rows], len(families)
                    )
        self.evidence_ = self._evidence(actions, y_all, families)
        self._answered_by = self._answers()
        return self

    def _fit_family(
        self,
        xt: np.ndarray,
        yt: np.ndarray,
        xv: np.ndarray,
        yv: np.ndarray,
        xc: np.ndarray,
        yc: np.ndarray,
    ) -> FamilyModel | None:
        return fit_booster(
            self.params(),
            (xt, yt, xv, yv, xc, yc),
            self.n_estimators,
            self.early_stopping_rounds,
            self.refit,
        )

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
            code = FAMILIES.index(families[j])
            boosted = code in self.models_ and n[j] >= self.min_evidence
            out.append(
                Evidence(
                    int(n[j]),
                    int(acc[j]),
                    bool(not boosted and code not in self.linear_),
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
        """The pooled booster of a model saved before the linear models, if any."""
        return next((m for m in self.models_.values() if m.pooled), None)

    def linear_families(self) -> list[str]:
        """Families whose acceptance (of some or all actions) a linear model answers."""
        return [FAMILIES[c] for c in sorted(self.linear_)]

    def _answers(self) -> tuple[np.ndarray, np.ndarray]:
        """Per catalog action: answered by its family's booster, and by its family's
        linear model (neither: its prior rate)."""
        booster, linear = [], []
        for e, f in zip(self.evidence_, self.families_, strict=True):
            code = FAMILIES.index(f)
            small = code in self.linear_ and (code not in self.models_ or e.n < self.min_evidence)
            booster.append(not e.uses_prior and code in self.models_ and not small)
            linear.append(not e.uses_prior and not booster[-1])
        return np.array(booster, dtype=bool), np.array(linear, dtype=bool)

    def _sources(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row (its catalog action's index): answered by a booster, by a linear model."""
        booster, linear = self._answered_by
        return booster[actions], linear[actions]

    def _linear_blocks(
        self, x: np.ndarray, linear: np.ndarray
    ) -> list[tuple[LinearFamilyModel, np.ndarray]]:
        """(linear model, its rows) for the rows of ``x`` a linear model answers."""
        if not linear.any():
            return []
        codes = x[:, FAMILY_COLUMN]
        blocks = [(lm, linear & (codes == c)) for c, lm in self.linear_.items()]
        return [(lm, rows) for lm, rows in blocks if rows.any()]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(accept), shape ``(n,)``; prior rates for actions with little evidence.

        Rows sorted by family (as :meth:`nba.policy.policy.Policy.score` builds them) are
        scored as slices, without copying each family's rows.
        """
        self._check_fitted()
        actions = x[:, ACTION_COLUMN].astype(int)
        out = self.prior_rates()[actions]
        boosted, linear = self._sources(actions)
        for lm, mine in self._linear_blocks(x, linear):
            out[mine] = 1.0 / (1.0 + np.exp(-lm.raw(x[mine])))
        for _code, m, rows in self._family_blocks(x):
            modelled = boosted[rows]
            if not modelled.any():
                continue
            part = x[rows] if modelled.all() else x[rows][modelled]
            raw = m.forest().raw(part, vary=PER_ACTION_COLUMNS)  # LightGBM's raw score
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
        column: the expected value): each family booster's exact TreeSHAP values
        (:mod:`nba.policy.treeshap`, equal to ``pred_contrib``), a linear model's exact
        Shapley values; zeros for rows answered by the prior. Written into ``out``
        (C-ordered, of that shape) if given."""
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
        _, linear = self._sources(x[:, ACTION_COLUMN].astype(int))
        for lm, mine in self._linear_blocks(x, linear):
            out[mine] = lm.contributions(x[mine])
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
        """Total gain per model column, summed over the family boosters; where no family has
        one, the linear models' absolute standardised coefficients."""
        total = np.zeros(len(MODEL_COLUMNS))
        for m in {id(m): m for m in self.models_.values()}.values():
            total += m.booster.feature_importance("gain", iteration=m.rounds)
        if not self.models_:
            for lm in self.linear_.values():
                total += lm.importance()
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
                else saved(pooled)
                | {"families": [FAMILIES[c] for c, m in self.models_.items() if m.pooled]},
                "linear": {FAMILIES[c]: lm.to_dict() for c, lm in self.linear_.items()},
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
        model.linear_ = {  # absent in models saved before the linear models
            FAMILIES.index(f): LinearFamilyModel.from_dict(m)
            for f, m in data.get("linear", {}).items()
        }
        model.evidence_ = [Evidence(**e) for e in data["evidence"]]
        model._answered_by = model._answers()
        return model
