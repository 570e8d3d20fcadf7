"""Stage: champion against challenger on logged data, and the promotion gate.

Both registered policies are replayed on the same logged decisions (with their logging
propensities): those after ``since`` (give the moment the challenger was trained, so it
is judged on decisions it never saw), or else the newest ``share`` of them (``nba train``
with its default time split holds out its newest 9% as the test period). Each policy's
value is estimated with DR and SNIPW (:mod:`nba.ope`), and the challenger's gain over the
champion with a paired bootstrap interval. The reward of a logged decision is its realised
value (0 unless accepted).

``promote_if_better`` moves ``@champion`` only when the gain's lower confidence bound,
under the gate's estimator, is above ``min_gain``. Every comparison is an MLflow run
(``evaluate``), with the decision as a tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from nba.config import Settings, get_settings
from nba.contract import load_dataset
from nba.exceptions import NBAError
from nba.ope import DEFAULT_BOOTSTRAP, BanditFeedback, Bootstrap, Estimate, compare, estimate
from nba.outcomes import long_term_outcomes
from nba.policy.evaluation import choices
from nba.tracking import CHALLENGER, CHAMPION, ModelRef, configure, load_policy, resolve, set_alias
from pipelines.train import logged_feedback, logged_scores, training_frame

GATE_ESTIMATORS = ("dr", "snipw")
DEFAULT_SHARE = 0.09


@dataclass
class Comparison:
    champion: ModelRef
    challenger: ModelRef
    n_rounds: int
    window: tuple[str, str]
    values: dict[str, dict[str, Estimate]]
    """``champion``/``challenger`` -> estimator -> estimated value per decision."""
    gain: dict[str, Estimate]
    """Estimator -> challenger minus champion, per decision."""
    run_id: str = ""
    promoted: bool | None = None
    """None: no gate applied (``nba evaluate``)."""
    gate: str = ""


def _one_hot(choice: np.ndarray, k: int) -> np.ndarray:
    """Deterministic choices (-1: nothing) as distributions over the ``k`` actions and
    nothing (column ``k``)."""
    dist = np.zeros((len(choice), k + 1))
    dist[np.arange(len(choice)), np.where(choice >= 0, choice, k)] = 1.0
    return dist


def compare_policies(
    data_dir: Path,
    settings: Settings | None = None,
    *,
    share: float = DEFAULT_SHARE,
    since: datetime | None = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> Comparison:
    """Estimate champion, challenger and the gain on the logged decisions after ``since``
    (default: the newest ``share`` of them). Profiles come from Feast: run
    ``nba features build`` on ``data_dir`` first."""
    s = settings or get_settings()
    if not 0 < share <= 1:
        raise NBAError(f"--share must be in (0, 1], got {share}")
    champion_ref, challenger_ref = resolve(CHAMPION, s), resolve(CHALLENGER, s)
    dataset = load_dataset(data_dir, settings=s)
    try:
        frame = training_frame(dataset, s)
        frame = frame[frame["propensity"].notna()].sort_values("timestamp", kind="stable")
        if since is not None:
            cut = pd.Timestamp(since).tz_localize(None) if since.tzinfo else pd.Timestamp(since)
            rounds = frame[pd.to_datetime(frame["timestamp"]) > cut].reset_index(drop=True)
        else:
            rounds = frame.iloc[int(len(frame) * (1 - share)) :].reset_index(drop=True)
        if len(rounds) < 100:
            raise NBAError(
                f"only {len(rounds)} logged decisions with a propensity to evaluate on "
                f"(need 100): log more, or raise --share"
            )
        champion, challenger = load_policy(champion_ref), load_policy(challenger_ref)
        k = len(champion.catalog.actions)
        if champion.catalog.ids != challenger.catalog.ids:
            raise NBAError("champion and challenger have different action catalogs")
        old = logged_scores(champion, dataset, rounds)
        new = logged_scores(challenger, dataset, rounds)
        if champion.uplift is not None or challenger.uplift is not None:
            # Judge the objective the policies rank by: immediate value plus the revenue
            # kept over the horizon (censoring-weighted: the newest decisions have not
            # lived it yet).
            outcomes = long_term_outcomes(dataset, champion.catalog.horizon_days)
            at = np.searchsorted(outcomes.decision_id, rounds["decision_id"].to_numpy(object))
            rounds["long_term_revenue"] = outcomes.revenue_estimate()[at]
    finally:
        dataset.close()
    logged, pscore, reward = logged_feedback(rounds, champion.catalog)
    feedback = BanditFeedback(np.where(logged >= 0, logged, k), reward, pscore)
    # The reward model for DM/DR: the challenger's expected value of each action and of
    # nothing. With the long-term objective, nothing's is the log's mean revenue kept and
    # an action's adds its Δ: DR corrects each row's error with its logged reward.
    expected = new.propensity * new.net_value
    base = np.zeros((len(rounds), 1))
    if new.change is not None and "long_term_revenue" in rounds:
        base += float(rounds["long_term_revenue"].mean())
        expected = expected + new.change + base
    q = np.hstack([np.nan_to_num(expected, nan=0.0), base])
    dists = {
        "champion": _one_hot(choices(old, champion.catalog)["nba"], k),
        "challenger": _one_hot(choices(new, challenger.catalog)["nba"], k),
    }
    values = {who: estimate(feedback, d, q, bootstrap) for who, d in dists.items()}
    gain = compare(feedback, dists["challenger"], dists["champion"], q, bootstrap)
    times = pd.to_datetime(rounds["timestamp"])
    window = (str(times.min()), str(times.max()))
    return Comparison(champion_ref, challenger_ref, len(rounds), window, values, gain)


def log_comparison(comparison: Comparison, settings: Settings | None = None) -> str:
    """One MLflow run per comparison: versions, window, every estimate and the decision."""
    import mlflow

    s = settings or get_settings()
    experiment_id = configure(s)
    with mlflow.start_run(experiment_id=experiment_id, run_name="evaluate") as run:
        mlflow.log_params(
            {
                "champion_version": comparison.champion.version,
                "challenger_version": comparison.challenger.version,
                "n_rounds": comparison.n_rounds,
                "window_start": comparison.window[0],
                "window_end": comparison.window[1],
                "gate": comparison.gate or "none",
            }
        )
        metrics = {}
        for who, by_estimator in comparison.values.items():
            for name, e in by_estimator.items():
                metrics[f"{who}_{name}"] = e.value
        for name, e in comparison.gain.items():
            metrics.update({f"gain_{name}": e.value, f"gain_{name}_low": e.low,
                            f"gain_{name}_high": e.high})  # fmt: skip
        mlflow.log_metrics(metrics)
        if comparison.promoted is not None:
            mlflow.set_tag("promoted", str(comparison.promoted).lower())
        return str(run.info.run_id)


def promote_if_better(
    data_dir: Path,
    settings: Settings | None = None,
    *,
    estimator: str = "dr",
    min_gain: float = 0.0,
    share: float = DEFAULT_SHARE,
    since: datetime | None = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> Comparison:
    """Compare, and move ``@champion`` to the challenger only if the gain's lower bound
    under ``estimator`` exceeds ``min_gain``. Logged to MLflow either way."""
    if estimator not in GATE_ESTIMATORS:
        raise NBAError(f"--estimator must be one of {GATE_ESTIMATORS}, not {estimator!r}")
    s = settings or get_settings()
    comparison = compare_policies(data_dir, s, share=share, since=since, bootstrap=bootstrap)
    low = comparison.gain[estimator].low
    comparison.gate = f"{estimator} lower bound > {min_gain:g}" + (
        f" at {bootstrap.level:.0%}" if bootstrap.level != DEFAULT_BOOTSTRAP.level else ""
    )
    comparison.promoted = bool(low > min_gain) and (
        comparison.challenger.version != comparison.champion.version
    )
    comparison.run_id = log_comparison(comparison, s)
    if comparison.promoted:
        set_alias(CHAMPION, comparison.challenger.version, s)
    return comparison
