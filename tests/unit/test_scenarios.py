"""The worlds that change: a drift makes a family's offers worthless on one channel,
and a launch takes an action out of the catalog and the log, then puts it back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nba.catalog import CATALOG_FILE, catalog_for_dataset, load_catalog
from nba.exceptions import NBAError
from pipelines.scenarios import Scenario, drifted, hide_action, launch


def _truth() -> pd.DataFrame:
    rows = []
    for contact in ("c1", "c2"):
        for action, family, p, total in (
            ("installment_plan_3m", "installment_offer", 0.4, 130.0),
            ("offer_broadband", "product_offer", 0.1, 115.0),
            ("no_action", "nothing", 0.0, 100.0),
        ):
            rows.append({"contact_id": contact, "action_id": action, "family": family,
                         "p_accept": p, "expected_total": total, "expected_revenue": total - 5,
                         "expected_net_value": 5.0})  # fmt: skip
    return pd.DataFrame(rows).set_index(["contact_id", "action_id"])


def test_a_drift_makes_the_family_worth_nothing_for_the_hit_contacts_only() -> None:
    truth = _truth()
    out = drifted(truth, {"c1"}, "installment_offer")
    hit = out.loc[("c1", "installment_plan_3m")]
    assert hit["p_accept"] == 0 and hit["expected_total"] == 100.0
    assert hit["expected_revenue"] == 95.0 and hit["expected_net_value"] == 0
    # Other families, other contacts and nothing itself are untouched.
    pd.testing.assert_series_equal(out.loc[("c1", "offer_broadband")],
                                   truth.loc[("c1", "offer_broadband")])  # fmt: skip
    pd.testing.assert_frame_equal(out.loc[["c2"]], truth.loc[["c2"]])
    assert truth.loc[("c1", "installment_plan_3m"), "p_accept"] == 0.4  # a copy


def test_a_launch_hides_the_action_then_brings_it_back(tmp_path: Path) -> None:
    pd.DataFrame(
        {"decision_id": ["d1", "d2", "d3"],
         "action_id": ["offer_tv_stream", "offer_broadband", "no_action"]}
    ).to_parquet(tmp_path / "decisions.parquet")  # fmt: skip
    assert hide_action(tmp_path, "offer_tv_stream") == 1
    left = pd.read_parquet(tmp_path / "decisions.parquet")
    assert left["decision_id"].tolist() == ["d2", "d3"]
    hidden = catalog_for_dataset(tmp_path)
    assert "offer_tv_stream" not in hidden.ids
    assert len(hidden.ids) == len(load_catalog().ids) - 1
    launch(tmp_path)
    assert catalog_for_dataset(tmp_path).ids == load_catalog().ids
    assert (tmp_path / CATALOG_FILE).is_file()


def test_bad_scenarios_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NBAError, match="--scenario must be one of none, launch, drift"):
        Scenario("storm")
    with pytest.raises(NBAError, match="--drift-round must be at least 1"):
        Scenario("drift", drift_round=0)
    pd.DataFrame({"action_id": ["x"]}).to_parquet(tmp_path / "decisions.parquet")
    with pytest.raises(NBAError, match="--new-action 'offer_unicorn' is not in the catalog"):
        hide_action(tmp_path, "offer_unicorn")
