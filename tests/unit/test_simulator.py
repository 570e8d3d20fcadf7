"""The simulator: valid output, determinism, and a world in which families really differ."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba.catalog import load_catalog
from nba.contract import load_dataset
from nba.exceptions import NBAError
from nba.simulate import SimulationConfig, simulate_world, write_world

SMALL = SimulationConfig(customers=1500, months=6, seed=7, holdout_weeks=3)


def _write(out: Path, config: SimulationConfig = SMALL, fmt: str = "parquet") -> Path:
    catalog = load_catalog()
    write_world(
        simulate_world(config, catalog),
        out,
        config,
        catalog.source,
        fmt="csv" if fmt == "csv" else "parquet",
    )
    return out


def _digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_output_passes_validation(tmp_path: Path, fmt: str) -> None:
    ds = load_dataset(_write(tmp_path / "sim", fmt=fmt))
    assert ds.count("customers") == 1500
    assert ds.count("decisions") > 1000
    assert ds.count("contacts") > 100
    assert ds.notes == []  # only contract vocabulary is emitted


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b = _write(tmp_path / "a"), _write(tmp_path / "b")
    c = _write(tmp_path / "c", SimulationConfig(customers=1500, months=6, seed=8, holdout_weeks=3))
    assert _digest(a) == _digest(b)
    assert _digest(a)["interactions.parquet"] != _digest(c)["interactions.parquet"]


def test_no_decisions_in_the_holdout_and_truth_covers_every_contact(tmp_path: Path) -> None:
    out = _write(tmp_path / "sim")
    decisions = pd.read_parquet(out / "decisions.parquet")
    contacts = pd.read_parquet(out / "contacts.parquet")
    truth = pd.read_parquet(out / "truth" / "expected_value.parquet")
    assert decisions.timestamp.max() < contacts.timestamp.min()
    n_actions = len(load_catalog().actions)
    assert len(truth) == len(contacts) * (n_actions + 1)  # every action, and nothing
    assert set(truth.contact_id) == set(contacts.contact_id)
    nothing = truth[truth.action_id == "no_action"]
    assert nothing.eligible.all() and (nothing.expected_net_value == 0).all()
    assert (nothing.mc_se == 0).all() and (truth.mc_se >= 0).all()
    # Latent traits never reach the contract's tables.
    for name in ("customers", "interactions", "contracts"):
        cols = set(pd.read_parquet(out / f"{name}.parquet").columns)
        assert not cols & {"base_stress", "base_dissatisfaction", "digital_affinity"}


def test_logged_propensities_match_the_logging_policy(tmp_path: Path) -> None:
    out = _write(tmp_path / "sim")
    d = pd.read_parquet(out / "decisions.parquet")
    eps, nothing = SMALL.exploration, SMALL.nothing_share
    shown = d[d.action_id != "no_action"]
    n = np.arange(1, len(load_catalog().actions) + 1)
    possible = (1 - nothing) * np.concatenate([eps / n, eps / n + (1 - eps), 1 / n])
    assert np.isin(shown.propensity.round(6), np.round(possible, 6)).all()
    # eps/n + (1 - eps) for n >= 2 is only ever logged for the legacy rule's product offer.
    legacy_p = np.round((1 - nothing) * (eps / n[1:] + (1 - eps)), 6)
    legacy = shown[shown.propensity.round(6).isin(legacy_p)]
    assert len(legacy) > 0
    assert legacy.action_id.str.startswith("offer_").all()
    # Nothing is presented at the configured share of contacts, and logged as such.
    skipped = d[d.action_id == "no_action"]
    assert (skipped.propensity == nothing).all()
    assert (skipped.outcome == "no_response").all() and skipped.value.isna().all()
    assert abs(len(skipped) / len(d) - nothing) < 0.03


def test_each_family_works_for_different_customers(tmp_path: Path) -> None:
    out = _write(
        tmp_path / "sim", SimulationConfig(customers=4000, months=6, seed=3, holdout_weeks=3)
    )
    truth = pd.read_parquet(out / "truth" / "expected_value.parquet")
    latent = pd.read_parquet(out / "truth" / "latent.parquet")
    contacts = pd.read_parquet(out / "contacts.parquet").merge(latent, on="customer_id")
    p = truth.pivot_table(
        index="contact_id", columns="family", values="p_accept", aggfunc="mean"
    ).join(contacts.set_index("contact_id"))
    stressed = p.base_stress > p.base_stress.quantile(0.8)
    unhappy = p.base_dissatisfaction > p.base_dissatisfaction.quantile(0.8)
    assert (
        p.loc[stressed, "installment_offer"].mean()
        > 1.5 * p.loc[~stressed, "installment_offer"].mean()
    )
    assert (
        p.loc[unhappy, "retention_gesture"].mean()
        > 1.5 * p.loc[~unhappy, "retention_gesture"].mean()
    )
    assert p.loc[unhappy, "product_offer"].mean() < 0.7 * p.loc[~unhappy, "product_offer"].mean()
    # The oracle picks every family somewhere, nothing included: no single answer fits all.
    best = truth[truth.eligible].sort_values("expected_total").groupby("contact_id").tail(1)
    shares = best.family.value_counts(normalize=True)
    assert {"retention_gesture", "installment_offer", "product_offer", "nothing"} <= set(
        shares.index
    )
    assert shares.max() < 0.7


def test_missed_payments_reveal_stress(tmp_path: Path) -> None:
    out = _write(tmp_path / "sim")
    inter = pd.read_parquet(out / "interactions.parquet")
    latent = pd.read_parquet(out / "truth" / "latent.parquet").set_index("customer_id")
    missed = inter[inter.type == "missed_payment"].groupby("customer_id").size()
    latent["missed"] = missed.reindex(latent.index).fillna(0)
    assert np.corrcoef(latent.base_stress, latent.missed)[0, 1] > 0.3


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SimulationConfig(customers=0), "--customers must be at least 1"),
        (SimulationConfig(months=1), "--months must be at least 2"),
        (SimulationConfig(months=2, holdout_weeks=8), "--holdout-weeks must be between 1 and"),
    ],
)
def test_bad_configuration_is_refused(config: SimulationConfig, message: str) -> None:
    with pytest.raises(NBAError, match=message):
        simulate_world(config)


def _gain(truth: pd.DataFrame) -> pd.DataFrame:
    """Each eligible action's true long-term change in revenue against nothing."""
    nothing = truth[truth.action_id == "no_action"].set_index("contact_id").expected_revenue
    out = truth[truth.eligible & (truth.action_id != "no_action")].copy()
    out["change"] = out.expected_revenue - out.contact_id.map(nothing)
    return out


def test_churn_reacts_to_what_agents_do(tmp_path: Path) -> None:
    """The world's ground truth: a gesture keeps customers who asked to cancel and does
    little for the others; a product pushed at an unhappy customer costs revenue; an
    accepted installment plan keeps stressed customers."""
    config = SimulationConfig(customers=4000, months=6, seed=5, holdout_weeks=3)
    out = _write(tmp_path / "sim", config)
    truth = _gain(pd.read_parquet(out / "truth" / "expected_value.parquet"))
    contacts = pd.read_parquet(out / "contacts.parquet")
    latent = pd.read_parquet(out / "truth" / "latent.parquet")
    ctx = contacts.merge(latent, on="customer_id").set_index("contact_id")
    truth = truth.join(ctx, on="contact_id")
    gesture = truth[truth.family == "retention_gesture"]
    leaving = gesture.reason == "cancellation_request"
    assert gesture[leaving].change.mean() > 10 * max(gesture[~leaving].change.mean(), 0.5)
    product = truth[truth.family == "product_offer"]
    unhappy = product.base_dissatisfaction > product.base_dissatisfaction.quantile(0.8)
    assert product[unhappy].change.mean() < 2 * product[~unhappy].change.mean() < 0
    installment = truth[truth.family == "installment_offer"]
    stressed = installment.base_stress > installment.base_stress.quantile(0.8)
    assert installment[stressed].change.mean() > 3 * max(installment[~stressed].change.mean(), 0.1)
    # Common random numbers: the Monte Carlo error of a change is small against the change.
    assert gesture[leaving].mc_se.mean() < 0.2 * gesture[leaving].change.mean()
