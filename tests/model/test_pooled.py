"""The pooled response model on a small log: families too small for a model of their own
share one learnt from every family, instead of falling back to a flat prior."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from nba.catalog import load_catalog
from nba.contract import load_dataset
from nba.policy.response import FAMILY_COLUMN, ResponseModel
from nba.simulate import SimulationConfig, simulate_world, write_world
from nba.vocabulary import FAMILIES
from pipelines.train import design, split_points
from tests.model.conftest import decision_frame

pytestmark = pytest.mark.slow
# About 6,000 logged decisions: some families miss 200 rows in a slice, none is tiny.
CONFIG = SimulationConfig(customers=1800, months=9, seed=23, holdout_weeks=2, history_months=3)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("pooled") / "sim"
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
        "pooled": ResponseModel().fit(*args),
        "per_family": ResponseModel(pooled=False).fit(*args),
        "x_test": x[st],
        "y_test": y[st],
    }


def test_no_action_tried_hundreds_of_times_is_left_on_a_prior(small: dict[str, Any]) -> None:
    pooled, per_family = small["pooled"], small["per_family"]
    assert pooled.pooled_families(), "this world should have a family too small for its own"
    assert not per_family.pooled_families()
    # Without pooling these families' actions answer with a flat rate.
    assert any(e.uses_prior and e.n >= 300 for e in per_family.evidence_)
    assert not [e.n for e in pooled.evidence_ if e.uses_prior and e.n >= 300]
    # Families with enough rows keep a model of their own.
    own = {FAMILIES[c] for c, m in pooled.models_.items() if not m.pooled}
    assert own == set(per_family.rounds_)


def test_pooled_families_are_ranked_by_what_was_learnt(small: dict[str, Any]) -> None:
    pooled, x, y = small["pooled"], small["x_test"], small["y_test"]
    codes = [FAMILIES.index(f) for f in pooled.pooled_families()]
    rows = np.isin(x[:, FAMILY_COLUMN], codes)
    p = pooled.predict_proba(x[rows])
    assert np.unique(np.round(p, 6)).size > 50  # a profile-dependent answer, not a rate
    assert roc_auc_score(y[rows], p) > 0.6
    # Calibrated: the mean prediction is near the acceptance rate it predicts.
    assert abs(p.mean() - y[rows].mean()) < 0.05


def test_pooled_model_survives_saving_and_explains_exactly(small: dict[str, Any]) -> None:
    pooled, x = small["pooled"], small["x_test"]
    again = ResponseModel.from_json(pooled.to_json())
    assert again.pooled_families() == pooled.pooled_families()
    assert again.rounds_ == pooled.rounds_
    np.testing.assert_allclose(again.predict_proba(x), pooled.predict_proba(x), rtol=0, atol=0)
    fast = again.contributions(x)
    shared = again.pooled_model()
    assert shared is not None
    rows = np.isin(x[:, FAMILY_COLUMN], [FAMILIES.index(f) for f in again.pooled_families()])
    slow = shared.booster.predict(x[rows], num_iteration=shared.rounds, pred_contrib=True)
    np.testing.assert_allclose(fast[rows], slow, rtol=0, atol=1e-9)
