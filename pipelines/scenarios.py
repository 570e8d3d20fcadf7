"""Worlds that change while the simulated loop runs (``nba simulate-loop --scenario``).

- ``launch``: a new action joins the catalog at round 1 with no history. Before round 0
  the action is taken out of the world's catalog and its logged decisions are taken out
  of the log (the logging policy never had it); at round 1 the full catalog is back. The
  loop must explore the action, learn its response and adopt it where it pays. The
  ground truth always knows it, so values are measured against the full oracle.
- ``drift``: from round ``drift_round`` one family's offers stop working on one channel
  (by default installment offers on the busiest channel): customers there no longer
  accept them, so offering one changes nothing. The truth of those contacts changes from
  that round on, for the outcomes served and for the values measured.
- ``none``: the world stays as simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from nba.catalog import CATALOG_FILE, NO_ACTION, default_catalog_path
from nba.exceptions import NBAError

SCENARIOS = ("none", "launch", "drift")
LAUNCH_ACTION = "offer_tv_stream"
"""The default launch: the offer the oracle chooses most among products."""


@dataclass(frozen=True)
class Scenario:
    name: str = "none"
    new_action: str = LAUNCH_ACTION
    drift_round: int = 2
    drift_family: str = "installment_offer"
    drift_channel: str | None = None
    """None: the channel with the most contacts."""

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise NBAError(f"--scenario must be one of {', '.join(SCENARIOS)}, not {self.name!r}")
        if self.drift_round < 1:
            raise NBAError(f"--drift-round must be at least 1, got {self.drift_round}")


def _default_raw() -> dict[str, object]:
    raw: dict[str, object] = yaml.safe_load(default_catalog_path().read_text(encoding="utf-8"))
    return raw


def hide_action(data_dir: Path, action_id: str) -> int:
    """Take ``action_id`` out of the world's catalog and log (before round 0 of a
    launch). Returns how many logged decisions were taken out."""
    raw = _default_raw()
    actions = raw["actions"]
    assert isinstance(actions, list)
    ids = [a["id"] for a in actions]
    if action_id not in ids:
        raise NBAError(f"--new-action {action_id!r} is not in the catalog; one of {ids}")
    raw["actions"] = [a for a in actions if a["id"] != action_id]
    (data_dir / CATALOG_FILE).write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    path = data_dir / "decisions.parquet"
    decisions = pd.read_parquet(path)
    keep = decisions["action_id"] != action_id
    decisions[keep].reset_index(drop=True).to_parquet(path)
    return int((~keep).sum())


def launch(data_dir: Path) -> None:
    """Round 1 of a launch: the full catalog is back (a new file, so links made of the
    old one by earlier rounds keep the old)."""
    target = data_dir / CATALOG_FILE
    target.unlink(missing_ok=True)
    target.write_text(default_catalog_path().read_text(encoding="utf-8"), encoding="utf-8")


def drift_channel(contacts: pd.DataFrame, scenario: Scenario) -> str:
    if scenario.drift_channel is not None:
        return scenario.drift_channel
    return str(contacts["channel"].value_counts().idxmax())


def drifted(truth: pd.DataFrame, contact_ids: set[str], family: str) -> pd.DataFrame:
    """``truth`` (indexed by contact and action) where, for ``contact_ids``, offers of
    ``family`` are no longer accepted: each is worth what presenting nothing is worth."""
    out = truth.copy()
    contact = out.index.get_level_values("contact_id")
    hit = contact.isin(contact_ids) & (out["family"] == family).to_numpy()
    nothing = out.xs(NO_ACTION, level="action_id")
    base = nothing.reindex(contact[hit])
    out.loc[hit, "p_accept"] = 0.0
    for column in ("expected_total", "expected_revenue"):
        out.loc[hit, column] = base[column].to_numpy()
    out.loc[hit, "expected_net_value"] = 0.0
    return out
