"""The uplift model recovers what actions change, on a world where the effects are planted.

The simulator plants them in its dynamics (``nba.simulate.dynamics``): a retention gesture
keeps customers who asked to cancel and does little for anyone else; a product offer that
an unhappy customer declines makes them likelier to leave. The engine sees none of this:
it learns from the logged decisions and the contracts that followed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from nba.catalog import load_catalog
from nba.contract import load_dataset
from nba.inputs import policy_input
from nba.outcomes import long_term_outcomes
from nba.policy.frames import contacts_from_frame
from nba.policy.policy import Policy
from nba.policy.response import ResponseModel
from nba.simulate import SimulationConfig, simulate_world, write_world
from pipelines.train import SPLITS, branch_design, design, fit_uplift
from tests.model.conftest import decision_frame

pytestmark = pytest.mark.slow
CONFIG = SimulationConfig(customers=8000, months=12, seed=21, holdout_weeks=3, history_months=3)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("uplift") / "sim"
    catalog = load_catalog()
    write_world(simulate_world(CONFIG, catalog), out, CONFIG, catalog.source)
    ds = load_dataset(out)
    frame = decision_frame(ds)
    x, y, shown = design(frame, catalog)
    xs, ys = x[shown], y[shown]
    n = len(xs)
    a, b = int(n * SPLITS[0]), int(n * SPLITS[1])
    model = ResponseModel().fit(
        xs[:a], ys[:a], xs[a:b], ys[a:b], xs[b:], ys[b:], [act.family for act in catalog.actions]
    )
    uplift = fit_uplift(
        branch_design(frame, catalog), frame, long_term_outcomes(ds, catalog.horizon_days), 0
    )
    contacts = ds.con.sql("SELECT * FROM contacts ORDER BY contact_id").df()
    inputs = policy_input(ds, contacts)
    ds.close()
    policy = Policy(catalog, model, uplift=uplift)
    scores = policy.score(contacts_from_frame(inputs, catalog))
    return {"policy": policy, "inputs": inputs, "scores": scores, "dir": out}


def _family_change(world: dict[str, Any], family: str) -> np.ndarray:
    """Mean learned Δ over the family's actions, per held-out contact."""
    cols = [j for j, a in enumerate(world["policy"].catalog.actions) if a.family == family]
    out: np.ndarray = world["scores"].change[:, cols].mean(axis=1)
    return out


def test_a_gesture_helps_the_customers_who_are_leaving(world: dict[str, Any]) -> None:
    inputs = world["inputs"]
    change = _family_change(world, "retention_gesture")
    leaving = (inputs["reason"] == "cancellation_request").to_numpy()
    assert leaving.sum() >= 20
    # Learned: a large gain where the customer asked to cancel, little elsewhere.
    assert change[leaving].mean() > 40
    assert change[leaving].mean() > 8 * abs(change[~leaving].mean())


def test_a_pushed_product_hurts_unhappy_customers(world: dict[str, Any]) -> None:
    inputs = world["inputs"]
    change = _family_change(world, "product_offer")
    unhappy = (inputs["n_complaint_30d"] >= 1).to_numpy()
    calm = (inputs["n_complaint_365d"] == 0).to_numpy()
    assert unhappy.sum() >= 50 and calm.sum() >= 50
    assert change[unhappy].mean() < change[calm].mean()
    assert change[unhappy].mean() < 0


def test_gestures_go_to_the_leaving_as_the_oracle_would(world: dict[str, Any]) -> None:
    """The NBA gives retention gestures to customers with a recent cancellation request
    about as selectively as the oracle does, far above their share of contacts."""
    from nba.policy.evaluation import choices

    policy, inputs = world["policy"], world["inputs"]
    truth = pd.read_parquet(world["dir"] / "truth" / "expected_value.parquet")
    best = truth[truth.eligible].sort_values("expected_total").groupby("contact_id").tail(1)
    oracle = best.set_index("contact_id").family.reindex(inputs["contact_id"]).to_numpy()
    chosen = choices(world["scores"], policy.catalog)["nba"]
    families = np.array([a.family for a in policy.catalog.actions])
    gesture = (chosen >= 0) & (families[np.maximum(chosen, 0)] == "retention_gesture")
    asked = (
        (inputs["n_cancellation_request_30d"] > 0) | (inputs["reason"] == "cancellation_request")
    ).to_numpy()
    oracle_rate = asked[oracle == "retention_gesture"].mean()
    print(
        f"leaving share: contacts {asked.mean():.3f}, NBA's gestures "
        f"{asked[gesture].mean():.3f}, oracle's {oracle_rate:.3f}"
    )
    assert gesture.sum() > 0
    assert asked[gesture].mean() > 2 * asked.mean()
    assert asked[gesture].mean() > 0.5 * oracle_rate
