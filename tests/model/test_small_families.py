"""The response model on a small log: families too small for boosted trees of their own
get a penalised logistic regression learnt from all their decisions, instead of a flat
prior."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from nba.catalog import load_catalog
from nba.contract import load_dataset
from nba.policy.response import ACTION_COLUMN, FAMILY_COLUMN, ResponseModel
from nba.simulate import SimulationConfig, simulate_world, write_world
from nba.vocabulary import FAMILIES
from pipelines.train import design, split_points
from tests.model.conftest import decision_frame

pytestmark = pytest.mark.slow
# About 6,000 logged decisions: some families miss 200 rows in a slice, none is tiny.
CONFIG = SimulationConfig(customers=1800, months=9, seed=23, holdout_weeks=2, history_months=3)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("small") / "sim"
    catalog = load_catalog()
    write_world(simulate_world(CONFIG, catalog), out, CONFIG, catalog.source)
    ds = load_dataset(out)
    frame = decision_frame(ds)
    ds.close()
    x, y, shown = design(frame, catalog)
    a, b, c = split_points(len(frame))
    sa, sb, sc, st = (
        np.flatnonzero(shown[lo:hi]) + lo for lo, hi in ((0, a), (a, b), (b, c), (c, len(x)))
    )
    families = [act.family for act in catalog.actions]
    args = (x[sa], y[sa], x[sb], y[sb], x[sc], y[sc], families)
    return {
        "engine": ResponseModel().fit(*args),
        "per_family": ResponseModel(linear=False).fit(*args),
        "x_test": x[st],
        "y_test": y[st],
    }


def test_no_action_tried_hundreds_of_times_is_left_on_a_prior(small: dict[str, Any]) -> None:
    engine, per_family = small["engine"], small["per_family"]
    small_families = set(FAMILIES) - {FAMILIES[c] for c in per_family.models_}
    assert small_families, "this world should have a family too small for trees"
    assert small_families <= set(engine.linear_families())
    # Without the linear models these families' actions answer with a flat rate.
    assert any(e.uses_prior and e.n >= 300 for e in per_family.evidence_)
    assert not [e.n for e in engine.evidence_ if e.uses_prior]
    # Families with enough rows keep their boosted trees, identical to the per-family model.
    assert engine.rounds_ == per_family.rounds_


def test_small_families_are_ranked_by_what_was_learnt(small: dict[str, Any]) -> None:
    engine, per_family = small["engine"], small["per_family"]
    x, y = small["x_test"], small["y_test"]
    codes = [
        FAMILIES.index(f)
        for f in engine.linear_families()
        if FAMILIES.index(f) not in engine.models_
    ]
    rows = np.isin(x[:, FAMILY_COLUMN], codes)
    p = engine.predict_proba(x[rows])
    assert np.unique(np.round(p, 6)).size > 50  # a profile-dependent answer, not a rate
    auc = roc_auc_score(y[rows], p)
    assert auc > 0.6
    assert auc > roc_auc_score(y[rows], per_family.predict_proba(x[rows])) + 0.02
    # Calibrated: the mean prediction is near the acceptance rate it predicts.
    assert abs(p.mean() - y[rows].mean()) < 0.05


def test_an_action_with_little_evidence_is_drawn_toward_its_family() -> None:
    """Partial pooling: an action tried a few times sits near its family's level, not at
    its own raw rate."""
    from nba.policy.design import MODEL_COLUMNS
    from nba.policy.linear import LinearFamilyModel

    rng = np.random.default_rng(0)
    n = 2000
    x = np.zeros((n, len(MODEL_COLUMNS)))
    x[:, ACTION_COLUMN] = np.where(np.arange(n) < 20, 1, 0)  # action 1 tried 20 times
    y = (rng.random(n) < 0.3).astype(float)
    y[:20] = 1.0  # ... and accepted every time
    model = LinearFamilyModel.fit(x, y, n_actions=2)
    p = 1 / (1 + np.exp(-model.raw(x[[0, -1]])))
    assert 0.3 < p[0] < 0.95  # above the family's 30%, well short of its raw 100%
    assert abs(p[1] - 0.3) < 0.05


def test_model_survives_saving_and_explains_exactly(small: dict[str, Any]) -> None:
    engine, x = small["engine"], small["x_test"]
    again = ResponseModel.from_json(engine.to_json())
    assert again.linear_families() == engine.linear_families()
    assert again.rounds_ == engine.rounds_
    np.testing.assert_allclose(again.predict_proba(x), engine.predict_proba(x), rtol=0, atol=0)
    # Contributions add up to each row's logit, for linear and boosted rows alike.
    explained = ~np.array([e.uses_prior for e in again.evidence_])[x[:, ACTION_COLUMN].astype(int)]
    codes = [
        FAMILIES.index(f)
        for f in again.linear_families()
        if FAMILIES.index(f) not in again.models_
    ]
    rows = explained & np.isin(x[:, FAMILY_COLUMN], codes)
    assert rows.any()
    total = again.contributions(x[rows]).sum(axis=1)
    p = again.predict_proba(x[rows])
    np.testing.assert_allclose(total, np.log(p / (1 - p)), rtol=0, atol=1e-9)


def test_models_saved_with_the_pooled_booster_still_load(small: dict[str, Any]) -> None:
    engine, x = small["engine"], small["x_test"]
    saved = json.loads(engine.to_json())
    saved.pop("linear")  # as written before the linear models
    old = ResponseModel.from_json(json.dumps(saved))
    assert old.linear_families() == []
    p = old.predict_proba(x)
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
