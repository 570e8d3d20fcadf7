"""Behavioural tests of a model trained on the simulator world (no Feast: profiles direct).

Directional: more payment trouble never lowers an installment offer's propensity (by
construction: a monotone constraint), and more complaints raise retention propensities on
average. Invariance: fields the policy must ignore (region, ids) never change a ranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nba.catalog import load_catalog
from nba.contract import load_dataset
from nba.inputs import policy_input
from nba.policy.explain import _reason_of, reason_lists, top_reasons
from nba.policy.frames import contacts_from_frame
from nba.policy.policy import Policy
from nba.policy.response import ACTION_COLUMN, FAMILY_COLUMN, ResponseModel
from nba.simulate import SimulationConfig, simulate_world, write_world
from nba.vocabulary import FAMILIES
from pipelines.train import SPLITS, design
from tests.model.conftest import decision_frame

pytestmark = pytest.mark.slow
CONFIG = SimulationConfig(customers=5000, months=8, seed=5, holdout_weeks=3, history_months=3)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("behaviour") / "sim"
    catalog = load_catalog()
    write_world(simulate_world(CONFIG, catalog), out, CONFIG, catalog.source)
    ds = load_dataset(out)
    frame = decision_frame(ds)
    x, y, shown = design(frame, ds.catalog)
    x, y = x[shown], y[shown]  # the response model learns from presented actions
    n = len(x)
    a, b = int(n * SPLITS[0]), int(n * SPLITS[1])
    model = ResponseModel().fit(
        x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], [act.family for act in ds.catalog.actions]
    )
    contacts = ds.con.sql("SELECT * FROM contacts ORDER BY contact_id").df()
    inputs = policy_input(ds, contacts)
    ds.close()
    return {
        "dir": out,
        "policy": Policy(ds.catalog, model),
        "inputs": inputs,
        "contacts": contacts,
        "x_test": x[b:],
    }


def _propensities(policy: Policy, frame: pd.DataFrame) -> np.ndarray:
    scores = policy.score(contacts_from_frame(frame, policy.catalog))
    return scores.propensity


@pytest.mark.parametrize("extra", [1, 2, 4])
def test_more_missed_payments_never_lower_installment_propensity(
    world: dict[str, Any], extra: int
) -> None:
    policy, base = world["policy"], world["inputs"]
    worse = base.copy()
    for w in (7, 30, 90, 365):
        worse[f"n_missed_payment_{w}d"] = worse[f"n_missed_payment_{w}d"] + extra
    worse["amount_missed_90d"] = worse["amount_missed_90d"] + 50.0 * extra
    missed = worse["n_missed_payment_365d"]
    worse["missed_payment_ratio_365d"] = missed / (missed + worse["n_payment_365d"])
    installment = [
        j for j, a in enumerate(policy.catalog.actions) if a.family == "installment_offer"
    ]
    before = _propensities(policy, base)[:, installment]
    after = _propensities(policy, worse)[:, installment]
    assert (after >= before - 1e-12).all()
    assert (after > before + 1e-6).any()  # and it does move


def test_more_complaints_raise_retention_propensity_on_average(world: dict[str, Any]) -> None:
    policy, base = world["policy"], world["inputs"]
    angry = base.copy()
    for w, k in ((7, 1), (30, 2), (90, 3), (365, 3)):
        angry[f"n_complaint_{w}d"] += k
        angry[f"n_interactions_{w}d"] += k
    angry["days_since_complaint"] = 2.0
    angry["sentiment_mean_30d"] = -0.7
    retention = [
        j for j, a in enumerate(policy.catalog.actions) if a.family == "retention_gesture"
    ]
    before = _propensities(policy, base)[:, retention].mean()
    after = _propensities(policy, angry)[:, retention].mean()
    assert after > 1.3 * before


def _rankings(policy: Policy, frame: pd.DataFrame) -> list[list[tuple[str, float]]]:
    return [
        [(r.action_id, r.propensity) for r in d.recommendations]
        for d in policy.decide(contacts_from_frame(frame, policy.catalog))
    ]


def test_irrelevant_fields_do_not_change_the_ranking(
    world: dict[str, Any], tmp_path: Path
) -> None:
    policy, contacts = world["policy"], world["contacts"]
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in world["dir"].glob("*.parquet"):
        table = pq.read_table(f)
        if f.stem == "customers":  # every customer moves to another region
            swap = {"north": "south", "south": "north"}
            regions = [swap.get(r, "capital") for r in table.column("region").to_pylist()]
            table = table.set_column(
                table.schema.get_field_index("region"), "region", pa.array(regions, pa.string())
            )
        pq.write_table(table, moved / f.name)
    ds = load_dataset(moved)
    relabelled = policy_input(ds, contacts.assign(contact_id="X-" + contacts["contact_id"]))
    ds.close()
    assert _rankings(policy, relabelled) == _rankings(policy, world["inputs"])


def test_recommendations_come_with_plain_reasons(world: dict[str, Any]) -> None:
    policy = world["policy"]
    decisions = policy.decide(contacts_from_frame(world["inputs"].head(200), policy.catalog), 3)
    reasons = [r for d in decisions for rec in d.recommendations for r in rec.reasons]
    assert reasons, "no reasons at all"
    assert all(1 <= len(rec.reasons) <= 3 for d in decisions for rec in d.recommendations)
    assert not any("_" in r for r in reasons)  # never a raw feature name


def test_fast_reasons_equal_lightgbm_pred_contrib_and_top_reasons(world: dict[str, Any]) -> None:
    """The batch path (compiled TreeSHAP tables + vectorised reason lists) gives exactly
    the contributions of LightGBM's ``pred_contrib`` and the sentences of ``top_reasons``,
    on rows of mixed families and on rows sorted by family (scored as slices)."""
    model: ResponseModel = world["policy"].model
    x = world["x_test"]
    slow = np.zeros((x.shape[0], x.shape[1] + 1))
    for _code, m, rows in model._family_blocks(x):
        slow[rows] = m.booster.predict(x[rows], num_iteration=m.rounds, pred_contrib=True)
    # Rows a family's linear model answers (too few decisions for trees) take its own
    # exact contributions, tested in test_small_families.
    _, linear = model._sources(x[:, ACTION_COLUMN].astype(int))
    for code, lm in model.linear_.items():
        mine = linear & (x[:, FAMILY_COLUMN] == code)
        slow[mine] = lm.contributions(x[mine])
    assert np.count_nonzero(slow[:, :-1]) > x.shape[0]  # the test sees real contributions
    order = np.argsort(x[:, FAMILY_COLUMN], kind="stable")
    for rows in (np.arange(x.shape[0]), order):
        fast = model.contributions(x[rows])
        np.testing.assert_allclose(fast, slow[rows], rtol=0, atol=1e-9)
        # Into reused memory (batch scoring): prior rows must not keep the old contents.
        buffer = np.full_like(fast, 7.0)
        assert model.contributions(x[rows], out=buffer) is buffer
        np.testing.assert_array_equal(buffer, fast)
        lists = reason_lists(fast, x[rows], k=3)
        for r in range(0, len(rows), 7):
            row = x[rows[r]]
            expected = top_reasons(fast[r].tolist(), row.tolist(), _reason_of(row), 3)
            assert lists.row(r) == expected
        # A few rows at a time (an API answer) take the one-by-one path: same sentences.
        for start in range(0, min(len(rows), 400), 4):
            few = reason_lists(fast[start : start + 4], x[rows[start : start + 4]], k=3)
            assert [few.row(i) for i in range(len(few.offsets) - 1)] == [
                lists.row(r) for r in range(start, min(start + 4, len(rows)))
            ]


def test_reasons_never_cite_an_unspoken_attribute(world: dict[str, Any]) -> None:
    """Age drives some predictions, but an agent is never told "aged 73" as a reason (the
    default catalog's ``unspoken_reasons``); every other reason is unchanged in order."""
    model: ResponseModel = world["policy"].model
    x = world["x_test"]
    contrib = model.contributions(x)
    unspoken = load_catalog().unspoken_reasons
    assert unspoken == frozenset({"age_years"})
    said = reason_lists(contrib, x, k=3)
    kept = reason_lists(contrib, x, k=3, unspoken=unspoken)
    rows = range(len(said.offsets) - 1)
    assert sum(any(t.startswith("aged ") for t in said.row(r)) for r in rows) > 0
    assert not any(t.startswith("aged ") for r in rows for t in kept.row(r))
    for r in range(0, x.shape[0], 5):
        expected = top_reasons(contrib[r].tolist(), x[r].tolist(), _reason_of(x[r]), 3, unspoken)
        assert kept.row(r) == expected
        assert [t for t in said.row(r) if not t.startswith("aged ")] == kept.row(r)[
            : len([t for t in said.row(r) if not t.startswith("aged ")])
        ]


def test_an_installment_offer_s_reasons_never_contradict_its_payment_trouble(
    world: dict[str, Any],
) -> None:
    """Payment trouble sits in the installment family's own columns; the shared columns
    are empty there and must never speak ("missed 0% of payments" beside "missed 71%")."""
    from nba.policy.explain import sentence

    assert sentence("missed_payment_ratio_365d", None) is None
    assert sentence("n_missed_payment_90d", float("nan")) is None
    assert sentence("n_missed_payment_90d", 0.0) == "no missed payments in the last 3 months"
    assert sentence("missed_payment_ratio_365d", 0.71) == "missed 71% of payments in the last year"
    model: ResponseModel = world["policy"].model
    x = world["x_test"]
    installment = x[:, FAMILY_COLUMN] == FAMILIES.index("installment_offer")
    assert installment.sum() > 20
    rows = x[installment]
    lists = reason_lists(model.contributions(rows), rows, k=3)
    for r in range(rows.shape[0]):
        said = lists.row(r)
        shares = [t for t in said if "% of payments" in t]
        assert len(shares) <= 1, said
        counts = [t for t in said if "missed payment" in t]
        assert not (any(t.startswith("no missed") for t in counts) and len(counts) > 1), said
