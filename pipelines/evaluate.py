"""Stage: champion against challenger on logged data, and the promotion gate.

Both registered policies are replayed on the same logged decisions (with their logging
propensities): those after ``since`` (give the moment the challenger was trained, so it
is judged on decisions it never saw), or else the newest ``share`` of them (``nba train``
with its default time split holds out its newest 9% as the test period). Each policy's
value is estimated with DR and SNIPW (:mod:`nba.ope`), and the challenger's gain over the
champion with a paired bootstrap interval. The reward of a logged decision is its realised
value (0 unless accepted).

``promote_if_better`` is the sequential gate (:class:`Gate`): the gain's bounds are an
anytime-valid confidence sequence (:mod:`nba.sequential`), so the gate may look after
every round and the chance of ever promoting a challenger that is not better stays at
most ``alpha``. It promotes when the lower bound is above ``min_gain``, retires the
challenger when the upper bound is below it or after ``max_looks`` looks, and otherwise
keeps collecting. Two kinds of evidence are bounded and reported: DR over all logged
decisions (per-decision DR gain of challenger over champion) and, where the decision log
has challenger traffic, the arms: each arm's own policy by DR on its own decisions, less
a baseline common to both (this one decides wherever it exists, see :class:`Gate`).
Every comparison is an MLflow run (``evaluate``), with the decision as a tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from nba.config import Settings, get_settings
from nba.contract import load_dataset
from nba.exceptions import NBAError
from nba.ope import (
    DEFAULT_BOOTSTRAP,
    BanditFeedback,
    Bootstrap,
    Estimate,
    compare,
    dm_terms,
    dr_terms,
    estimate,
)
from nba.outcomes import long_term_outcomes
from nba.policy.evaluation import choices, widen_scores
from nba.sequential import (
    ConfidenceSequence,
    Verdict,
    confidence_sequence,
    difference_sequence,
    verdict,
)
from nba.tracking import CHALLENGER, CHAMPION, ModelRef, configure, load_policy, resolve, set_alias
from pipelines.logged import logged_contacts, logged_feedback, logged_scores
from pipelines.review.gating import comparison_summary, mark_comparison
from pipelines.review.summary import KIND_TAG, log_summary
from pipelines.train import training_frame

EVIDENCE = ("auto", "arms", "dr")
DEFAULT_SHARE = 0.09


@dataclass(frozen=True)
class Gate:
    """The sequential promotion gate's settings (README, "The promotion gate")."""

    alpha: float = 0.05
    """Chance, over all looks, of ever promoting a challenger that is not better."""
    min_gain: float = 0.0
    """Least gain per decision worth promoting for."""
    max_looks: int | None = 8
    """Retire an undecided challenger after this many looks (None: never)."""
    evidence: str = "auto"
    """What decides: ``arms`` (the challenger's traffic against the champion's, by DR on
    each arm's own decisions), ``dr`` (all logged decisions) or ``auto`` (arms where the
    log has challenger traffic, else dr)."""
    planned_n: int = 10_000
    """Decisions at which the bounds are tightest (they stay valid at any number)."""
    min_decisions: int = 1_000
    """No verdict on fewer decisions: the bounds' coverage is asymptotic."""

    def __post_init__(self) -> None:
        if self.evidence not in EVIDENCE:
            raise NBAError(f"--evidence must be one of {EVIDENCE}, not {self.evidence!r}")
        if not 0 < self.alpha < 0.5:
            raise NBAError(f"--alpha must be between 0 and 0.5, got {self.alpha}")
        if self.max_looks is not None and self.max_looks < 1:
            raise NBAError(f"--max-looks must be at least 1, got {self.max_looks}")

    def decisive(self, sequences: dict[str, ConfidenceSequence]) -> str:
        """The evidence that decides, given what the log holds."""
        if self.evidence != "auto":
            return self.evidence
        return "arms" if "arms" in sequences else "dr"

    def describe(self, evidence: str | None = None) -> str:
        return (
            f"{evidence or self.evidence} confidence sequence at alpha {self.alpha:g}: promote "
            f"if lower bound > {self.min_gain:g}"
        )


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
    gain_terms: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    """Per decision: challenger's DR term minus champion's."""
    arm_terms: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    """Per decision: its arm's own policy's DR term less the common baseline (the arms
    evidence compares their means between the challenger's and the champion's arms)."""
    arm: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object), repr=False)
    """Per decision: the arm that served it (None where the decision log does not know)."""
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, "datetime64[ns]"), repr=False)
    """Per decision: its moment (decisions are in time order)."""
    choice: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """``champion``/``challenger`` -> the action index each chooses per decision (-1:
    nothing)."""
    sequences: dict[str, ConfidenceSequence] = field(default_factory=dict)
    """Evidence (``dr``, ``arms``) -> the gain's confidence sequence at this look."""
    verdict: Verdict | None = None
    evidence: str = ""
    """The evidence that decided (``arms`` or ``dr``; "" without a gate)."""
    looks: int = 0
    """The gate's look number (0: no gate)."""
    max_looks: int | None = None
    min_gain: float = 0.0


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
    long_term: Mapping[str, float] | None = None,
) -> Comparison:
    """Estimate champion, challenger and the gain on the logged decisions after ``since``
    (default: the newest ``share`` of them). Profiles come from Feast: run
    ``nba features build`` on ``data_dir`` first. ``long_term`` (decision id -> revenue
    of the horizon) replaces the estimate from the contracts where given: the simulated
    loop knows each served decision's expected consequence, which its contracts, drawn
    before the loop, do not show."""
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
        catalog = challenger.catalog
        k = len(catalog.actions)
        launched = champion.catalog.ids != catalog.ids
        if launched and not set(champion.catalog.ids) <= set(catalog.ids):
            raise NBAError(
                "champion and challenger have different action catalogs (the challenger's "
                "must hold every action of the champion's, plus any launched since)"
            )
        old = logged_scores(champion, dataset, rounds)
        if launched:  # the champion never chooses an action launched after it
            old = widen_scores(old, champion.catalog, catalog)
        logged_as = logged_contacts(challenger, dataset, rounds)
        new = challenger.score(logged_as)
        kept = challenger.kept_if_nothing(logged_as)
        if champion.uplift is not None or challenger.uplift is not None:
            # Judge the objective the policies rank by: immediate value plus the revenue
            # kept over the horizon (censoring-weighted: the newest decisions have not
            # lived it yet).
            outcomes = long_term_outcomes(dataset, champion.catalog.horizon_days)
            at = np.searchsorted(outcomes.decision_id, rounds["decision_id"].to_numpy(object))
            rounds["long_term_revenue"] = outcomes.revenue_estimate()[at]
            if long_term is not None:  # known otherwise (a simulation's ground truth)
                known = rounds["decision_id"].map(long_term)
                rounds["long_term_revenue"] = known.fillna(rounds["long_term_revenue"])
    finally:
        dataset.close()
    logged, pscore, reward = logged_feedback(rounds, catalog)
    feedback = BanditFeedback(np.where(logged >= 0, logged, k), reward, pscore)
    # The reward model for DM/DR: the challenger's expected value of each action and of
    # nothing. With the long-term objective, nothing's is the revenue the customer keeps
    # if nothing is presented and an action's adds its Δ: DR corrects each row's error
    # with its logged reward.
    expected = new.propensity * new.net_value
    base = np.zeros((len(rounds), 1))
    if new.change is not None and "long_term_revenue" in rounds:
        # Each customer's own revenue kept if nothing is presented, as the challenger's
        # uplift model expects it: the revenue at stake differs a lot between customers,
        # and a shared mean would leave all of that in DR's residuals (its variance).
        base += kept[:, None] if kept is not None else float(rounds["long_term_revenue"].mean())
        expected = expected + new.change + base
    q = np.hstack([np.nan_to_num(expected, nan=0.0), base])
    chosen = {"champion": choices(old, catalog)["nba"], "challenger": choices(new, catalog)["nba"]}
    dists = {who: _one_hot(c, k) for who, c in chosen.items()}
    values = {who: estimate(feedback, d, q, bootstrap) for who, d in dists.items()}
    gain = compare(feedback, dists["challenger"], dists["champion"], q, bootstrap)
    new_dr, old_dr = (
        dr_terms(feedback, dists["challenger"], q),
        dr_terms(feedback, dists["champion"], q),
    )
    # On-policy evidence: each arm's own policy by DR on the decisions it served (its own
    # choice was shown with a known, large probability there), less a baseline that is the
    # same function of the contact in both arms. The customers' arms are random, so the
    # baseline changes neither arm's expectation, and it takes out most of the
    # differences between customers (the revenue at stake), which dominate raw rewards.
    baseline = (dm_terms(dists["challenger"], q) + dm_terms(dists["champion"], q)) / 2
    arm = _arms(rounds["decision_id"], s)
    own = np.where(arm == "challenger", new_dr, old_dr) - baseline
    times = pd.to_datetime(rounds["timestamp"])
    window = (str(times.min()), str(times.max()))
    return Comparison(
        champion_ref, challenger_ref, len(rounds), window, values, gain,
        gain_terms=new_dr - old_dr, arm_terms=own, arm=arm, choice=chosen,
        times=times.dt.tz_localize(None).to_numpy() if times.dt.tz else times.to_numpy(),
    )  # fmt: skip


def _arms(decision_ids: pd.Series, s: Settings) -> np.ndarray:
    """The arm that served each logged decision, where the decision log knows (decisions
    of a dataset that did not come from this engine's log have none)."""
    from nba.decision_log import DecisionLog

    served = decision_ids.astype(str).str.split(":", n=1).str[0]
    if s.decision_log.startswith("sqlite:///") and not Path(s.decision_log[10:]).exists():
        return np.full(len(served), None, dtype=object)
    log = DecisionLog(s.decision_log)
    try:
        arm = dict(log.query("SELECT decision_id, arm FROM served"))
    finally:
        log.close()
    return served.map(arm).to_numpy(dtype=object)


def gate_sequences(
    c: Comparison, gate: Gate, until: np.datetime64 | None = None
) -> dict[str, ConfidenceSequence]:
    """The gain's confidence sequence under each kind of evidence available, on the
    decisions up to ``until`` (default: all): the look the gate had at that moment."""
    upto = slice(None) if until is None else slice(int(np.searchsorted(c.times, until, "right")))
    out = {"dr": confidence_sequence(c.gain_terms[upto], gate.alpha, gate.planned_n)}
    arm, own = c.arm[upto], c.arm_terms[upto]
    if (arm == "challenger").any() and (arm == "nba").any():
        out["arms"] = difference_sequence(
            own[arm == "challenger"], own[arm == "nba"], gate.alpha, gate.planned_n
        )
    return out


def gate_verdict(
    c: Comparison, gate: Gate, sequences: dict[str, ConfidenceSequence], looks: int
) -> Verdict:
    """The gate's verdict at look number ``looks`` on ``sequences``."""
    decisive = sequences.get(gate.decisive(sequences))
    if decisive is None:
        raise NBAError(
            "--evidence arms needs challenger traffic in the decision log "
            "(set NBA_CHALLENGER_SHARE above 0 while the challenger collects evidence)"
        )
    if c.challenger.version == c.champion.version:
        return "retire"
    if decisive.n < gate.min_decisions:  # too few to trust the bounds: only the look limit
        decisive = replace(decisive, low=-np.inf, high=np.inf)
    return verdict(decisive, gate.min_gain, looks, gate.max_looks)


def log_comparison(comparison: Comparison, settings: Settings | None = None) -> str:
    """One MLflow run per comparison: versions, window, every estimate and the decision."""
    import mlflow

    s = settings or get_settings()
    experiment_id = configure(s)
    summary = comparison_summary(comparison, s.currency)
    with mlflow.start_run(experiment_id=experiment_id, run_name=summary.title) as run:
        mlflow.log_params(
            {
                "champion_version": comparison.champion.version,
                "challenger_version": comparison.challenger.version,
                "n_decisions": comparison.n_rounds,
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
        for name, seq in comparison.sequences.items():
            metrics.update({f"gain_{name}_cs_low": seq.low, f"gain_{name}_cs_high": seq.high,
                            f"gain_{name}_cs_n": float(seq.n)})  # fmt: skip
        mlflow.log_metrics({k: round(v, 4) for k, v in metrics.items() if np.isfinite(v)})
        if comparison.promoted is not None:
            mlflow.set_tag("promoted", str(comparison.promoted).lower())
        if comparison.verdict is not None:
            mlflow.set_tag("verdict", comparison.verdict)
        log_summary(summary, "evaluate")
        run_id = str(run.info.run_id)
    mark_comparison(comparison, run_id, summary.verdict, s.currency)
    return run_id


def previous_looks(challenger: ModelRef, settings: Settings | None = None) -> int:
    """How many times the gate has already judged this challenger version (its MLflow
    ``evaluate`` runs with a verdict)."""
    import mlflow

    runs = mlflow.search_runs(
        [configure(settings)],
        filter_string=(
            f"tags.{KIND_TAG} = 'evaluate' and "
            f"params.challenger_version = '{challenger.version}' and tags.verdict LIKE '%'"
        ),
        output_format="list",
    )
    return len(runs)


def promote_if_better(
    data_dir: Path,
    settings: Settings | None = None,
    *,
    gate: Gate | None = None,
    looks: int = 1,
    share: float = DEFAULT_SHARE,
    since: datetime | None = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    long_term: Mapping[str, float] | None = None,
) -> Comparison:
    """Compare, and apply the sequential gate at look number ``looks``: move
    ``@champion`` to the challenger only on a ``promote`` verdict. Logged to MLflow
    either way. The evidence is every logged decision after ``since``: give the moment
    the challenger was registered to judge it on all its evidence."""
    g = gate or Gate()
    s = settings or get_settings()
    comparison = compare_policies(
        data_dir, s, share=share, since=since, bootstrap=bootstrap, long_term=long_term
    )
    comparison.sequences = gate_sequences(comparison, g)
    comparison.evidence = g.decisive(comparison.sequences)
    comparison.gate = g.describe(comparison.evidence)
    comparison.verdict = gate_verdict(comparison, g, comparison.sequences, looks)
    comparison.looks, comparison.max_looks, comparison.min_gain = looks, g.max_looks, g.min_gain
    comparison.promoted = comparison.verdict == "promote"
    comparison.run_id = log_comparison(comparison, s)
    if comparison.promoted:
        set_alias(CHAMPION, comparison.challenger.version, s)
    return comparison
