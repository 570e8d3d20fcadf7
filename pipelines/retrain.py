"""Stage: retrain from feedback. The outcomes agents reported through the API become
training data; a challenger is trained on them plus the original data and registered as
``nba-policy@challenger`` (``@champion`` does not move: that is ``nba promote``'s job).

The API's decision log already exposes the contract's ``decisions`` table (one row per
presented action with its outcome and the exact probability it was shown with). Retraining
writes a dataset that is the original one with those decisions appended, builds its
point-in-time profiles (offline store; the API's online store is left alone) and trains on
it exactly as ``nba train`` does.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from nba.config import Settings, get_settings
from nba.contract import load_dataset
from nba.decision_log import DecisionLog, from_text
from nba.exceptions import NBAError
from nba.tracking import CHALLENGER, set_alias
from pipelines.features import build_features
from pipelines.train import TrainReport, train

DECISION_COLUMNS = [
    "decision_id",
    "customer_id",
    "timestamp",
    "channel",
    "action_id",
    "outcome",
    "propensity",
    "value",
]


@dataclass
class RetrainReport:
    version: str
    n_feedback: int
    n_original: int
    data_dir: Path
    train: TrainReport


def feedback_decisions(log: DecisionLog) -> pd.DataFrame:
    """The API's reported outcomes as contract ``decisions`` rows.

    The API is not told the realised value of an accepted offer, so ``value`` is the net
    value the policy expected when it offered it (0 for other outcomes), which is what the
    simulator realises and what off-policy evaluation weighs outcomes by."""
    rows = log.query(
        "SELECT o.decision_id, o.action_id, o.customer_id, o.presented_at, o.channel, "
        "o.outcome, o.propensity, s.ranking FROM outcomes o "
        "JOIN served s ON s.decision_id = o.decision_id ORDER BY o.presented_at"
    )
    records = []
    for decision_id, action_id, customer_id, at, channel, outcome, propensity, ranking in rows:
        shown = {r["action_id"]: r for r in json.loads(ranking)}
        net = shown.get(action_id, {}).get("value")
        records.append(
            (
                f"{decision_id}:{action_id}",
                customer_id,
                from_text(at),
                channel,
                action_id,
                outcome,
                propensity,
                float(net) if outcome == "accepted" and net is not None else 0.0,
            )
        )
    frame = pd.DataFrame(records, columns=DECISION_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["propensity"] = pd.to_numeric(frame["propensity"]).astype(float)
    frame["value"] = frame["value"].astype(float)
    return frame


def merged_dataset(data_dir: Path, feedback: pd.DataFrame, out: Path) -> tuple[Path, int]:
    """``out``: the dataset of ``data_dir`` with ``feedback`` appended to its decisions
    (other files linked, not copied). Returns (directory, original decisions)."""
    source = load_dataset(data_dir)
    try:
        original = source.con.sql("SELECT * FROM decisions").df()
    finally:
        source.close()
    clash = set(original["decision_id"]) & set(feedback["decision_id"])
    if clash:
        raise NBAError(
            f"{len(clash)} decision ids of the decision log are already in {data_dir}, "
            f"e.g. {sorted(clash)[:3]}: was this log retrained into the dataset before?"
        )
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for path in Path(data_dir).iterdir():
        if path.name.startswith("decisions.") or not path.is_file():
            continue
        try:
            os.link(path, out / path.name)
        except OSError:  # another file system
            shutil.copy2(path, out / path.name)
    truth = Path(data_dir) / "truth"
    if truth.is_dir():
        (out / "truth").symlink_to(truth.resolve())
    original["timestamp"] = pd.to_datetime(original["timestamp"], utc=True)
    merged = pd.concat([original[DECISION_COLUMNS], feedback[DECISION_COLUMNS]])
    merged.sort_values("timestamp", kind="stable").to_parquet(out / "decisions.parquet")
    return out, len(original)


def refresh(data_dir: Path, settings: Settings | None = None) -> tuple[Path, int, int]:
    """Write the original data plus the API's feedback to ``NBA_HOME/retrain-data`` and
    build its profiles (offline store). Returns (directory, feedback rows, original rows).
    """
    s = settings or get_settings()
    log = DecisionLog(s.decision_log)
    try:
        feedback = feedback_decisions(log)
    finally:
        log.close()
    if feedback.empty:
        raise NBAError(
            f"the decision log ({log.url}) holds no reported outcomes yet: nothing to learn "
            "from (agents report them with POST /v1/outcomes)"
        )
    merged, n_original = merged_dataset(Path(data_dir), feedback, s.home_dir / "retrain-data")
    build_features(merged, s, online=False)
    return merged, len(feedback), n_original


def retrain(
    data_dir: Path,
    settings: Settings | None = None,
    *,
    seed: int = 0,
    split: Literal["time", "shuffled"] = "shuffled",
) -> RetrainReport:
    """Train a challenger on the original data plus the API's feedback; alias it.

    The split is shuffled by default so that the newest feedback is learnt from (a time
    split would keep it for calibration and testing only); judge the challenger with
    ``nba promote --if-better --since`` on decisions logged after it was trained."""
    s = settings or get_settings()
    merged, n_feedback, n_original = refresh(data_dir, s)
    report = train(merged, s, seed=seed, split=split, purpose="retrain")
    set_alias(CHALLENGER, report.version, s)
    return RetrainReport(report.version, n_feedback, n_original, merged, report)
