"""One yardstick to compare versions: a fixed, versioned set of held-out decisions (and, on
simulated data, contacts with the simulator's truth), frozen by the first training and
measured by every later one.

Each training run also measures on its own test part, but that part differs from run to
run (a later time period, or another random draw): side by side, those numbers compare
different things. The yardstick is the same rows for every version, kept with their
profiles and prior history as they were when frozen (``NBA_HOME/yardstick/yN``), and left
out of every later training so that no version has seen them. A yardstick whose decisions
are not in the data, or are there with other actions or outcomes (another source), is not
used: that training freezes the next version.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from nba.catalog import Catalog
from nba.config import Settings
from nba.policy.evaluation import evaluate_against_truth
from nba.policy.frames import contacts_from_frame
from nba.policy.policy import Policy
from pipelines.logged import logged_policy_values

FOLDER = "yardstick"
DECISION_COLUMNS = (
    "decision_id", "action_id", "outcome", "propensity", "value", "long_term_revenue",
)  # fmt: skip


def rows_in(yardstick: Yardstick, frame: pd.DataFrame) -> pd.Series | None:
    """Which rows of ``frame`` (training-frame rows) are the yardstick's decisions, or None
    when the yardstick does not describe this data: one of its decisions is missing, or
    carries another action or outcome (another source that reuses the ids)."""
    inside = frame["decision_id"].astype(str).isin(yardstick.decision_ids)
    if int(inside.sum()) != len(yardstick.decisions):
        return None
    kept = [c for c in ("action_id", "outcome") if c in yardstick.decisions and c in frame]
    mine = yardstick.decisions.set_index(yardstick.decisions["decision_id"].astype(str))[kept]
    here = frame[inside]
    theirs = here.set_index(here["decision_id"].astype(str))[kept]
    same = mine.sort_index().astype(str).to_numpy() == theirs.sort_index().astype(str).to_numpy()
    return inside if bool(same.all()) else None


@dataclass
class Yardstick:
    name: str
    folder: Path
    decisions: pd.DataFrame
    """The logged decisions: id, action, propensity, value (and long-term revenue)."""
    inputs: pd.DataFrame
    """Their policy inputs as frozen (profile, contact, prior history)."""
    contacts: pd.DataFrame | None
    """Simulated data: contacts' policy inputs, for the truth."""
    truth: pd.DataFrame | None
    manifest: dict[str, object]

    @cached_property
    def decision_ids(self) -> set[str]:
        return set(self.decisions["decision_id"].astype(str))

    def describe(self) -> str:
        m = self.manifest
        text = (
            f"yardstick {self.name}: {len(self.decisions):,} logged decisions from "
            f"{str(m['window_start'])[:10]} to {str(m['window_end'])[:10]}, frozen when "
            f"version {m['frozen_by_version']} was trained"
        )
        if self.contacts is not None:
            text += f", and {len(self.contacts):,} contacts with the simulator's truth"
        return text


def root(settings: Settings) -> Path:
    return settings.home_dir / FOLDER


def current(settings: Settings) -> Yardstick | None:
    """The newest yardstick of the workspace, or None."""
    folders = sorted(
        (p for p in root(settings).glob("y*") if (p / "manifest.json").is_file()),
        key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else -1,
    )
    return load(folders[-1]) if folders else None


def load(folder: Path) -> Yardstick:
    manifest = json.loads((folder / "manifest.json").read_text())
    contacts = folder / "contacts.parquet"
    return Yardstick(
        folder.name,
        folder,
        pd.read_parquet(folder / "decisions.parquet"),
        pd.read_parquet(folder / "inputs.parquet"),
        pd.read_parquet(contacts) if contacts.is_file() else None,
        pd.read_parquet(folder / "truth.parquet") if contacts.is_file() else None,
        manifest,
    )


def freeze(
    settings: Settings,
    decisions: pd.DataFrame,
    inputs: pd.DataFrame,
    contacts: pd.DataFrame | None,
    truth: pd.DataFrame | None,
) -> Yardstick:
    """Write the next yardstick version (``y1``, ``y2``, ...) atomically; returns it. The
    version that froze it is set by :func:`stamp` once registered."""
    base = root(settings)
    base.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[1:]) for p in base.glob("y*") if p.name[1:].isdigit()]
    name = f"y{max(taken, default=0) + 1}"
    tmp = base / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    kept = [c for c in DECISION_COLUMNS if c in decisions]
    decisions[kept].reset_index(drop=True).to_parquet(tmp / "decisions.parquet")
    inputs.reset_index(drop=True).to_parquet(tmp / "inputs.parquet")
    if contacts is not None and truth is not None:
        contacts.reset_index(drop=True).to_parquet(tmp / "contacts.parquet")
        ids = set(contacts["contact_id"].astype(str))
        truth[truth["contact_id"].astype(str).isin(ids)].to_parquet(tmp / "truth.parquet")
    times = pd.to_datetime(inputs["timestamp"])
    manifest = {
        "name": name,
        "frozen_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "frozen_by_version": None,
        "decisions": len(decisions),
        "window_start": str(times.min()),
        "window_end": str(times.max()),
        "contacts": 0 if contacts is None else len(contacts),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    tmp.rename(base / name)
    return load(base / name)


def stamp(yardstick: Yardstick, version: str) -> None:
    """Record the registered version whose training froze the yardstick."""
    yardstick.manifest["frozen_by_version"] = version
    path = yardstick.folder / "manifest.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(yardstick.manifest, indent=2))
    tmp.replace(path)


def measure(yardstick: Yardstick, policy: Policy) -> tuple[dict[str, float], str | None]:
    """The policy's value on the yardstick: the NBA's and what was done, estimated from the
    logged decisions (SNIPW) and, with the truth, normalised against the oracle. Returns
    the metrics and a note when part of it cannot be measured for this policy."""
    catalog: Catalog = policy.catalog
    known = set(catalog.ids) | {"no_action"}
    if not set(yardstick.decisions["action_id"]) <= known:
        return {}, (
            f"yardstick {yardstick.name} holds actions this version's catalog does not: "
            "not measured (train with --new-yardstick to freeze one for this catalog)"
        )
    values = logged_policy_values(policy, None, yardstick.decisions, catalog, yardstick.inputs)
    out = {
        "yardstick_value_nba": values["logged_value_nba_snipw"],
        "yardstick_value_logging_policy": values["logged_value_logging_policy"],
    }
    note = None
    if yardstick.contacts is not None and yardstick.truth is not None:
        batch = contacts_from_frame(yardstick.contacts, catalog)
        scores = policy.score(batch)
        try:
            truth = evaluate_against_truth(
                scores, catalog, yardstick.contacts["contact_id"].astype(str).tolist(),
                yardstick.truth, batch.profile_x,
            )  # fmt: skip
        except ValueError:
            note = (
                f"yardstick {yardstick.name}'s truth does not cover this version's catalog: "
                "its true value is not measured there"
            )
        else:
            out["yardstick_normalised_value_nba"] = truth.normalised["nba"]
            out["yardstick_true_value_per_contact"] = truth.values["nba"]
    return {k: float(v) for k, v in out.items() if np.isfinite(v)}, note
