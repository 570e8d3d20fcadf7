"""Stage: train the response model, evaluate the policy, log to MLflow, register it.

Training rows are the logged decisions, joined point-in-time with profiles through Feast's
``get_historical_features`` on the ``nba_v1`` feature service. The split is by time: the
oldest 72% train, the next 10% stop the boosting early, the next 9% calibrate, and the
newest 9% are the test period for every metric reported; on a small log each later slice
keeps at least 200 decisions (:func:`split_points`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from nba.catalog import NO_ACTION, Catalog
from nba.config import Settings, get_settings
from nba.contract import Dataset, load_dataset
from nba.exceptions import FeatureStoreError, NBAError
from nba.feature_store import open_store
from nba.inputs import decisions_with_reason, policy_input
from nba.outcomes import LongTermOutcomes, long_term_outcomes
from nba.policy.design import (
    NOTHING_FAMILY,
    branch_code,
    branch_rows,
    candidate_rows,
    channel_codes,
    profile_matrix,
    reason_codes,
)
from nba.policy.evaluation import (
    TruthEvaluation,
    choices,
    evaluate_against_truth,
)
from nba.policy.frames import INPUT_COLUMNS, contacts_from_frame
from nba.policy.linear import MIN_EACH, MIN_ROWS
from nba.policy.policy import Policy
from nba.policy.response import ResponseModel
from nba.policy.uplift import UpliftModel
from nba.profiles import FEATURE_SERVICE, NUMERIC_FEATURE_NAMES
from nba.tracking import (
    CHAMPION,
    MODEL_NAME,
    configure,
    has_alias,
    registry_quiet,
    resolve,
    set_alias,
)
from nba.vocabulary import FAMILIES
from pipelines import yardstick
from pipelines.logged import action_metrics, ece, logged_inputs, logged_policy_values
from pipelines.review.registry import Status, mark_version
from pipelines.review.summary import log_summary
from pipelines.review.training import (
    Split,
    headline,
    training_charts,
    training_summary,
    training_verdict,
    yardstick_section,
)
from pipelines.timing import Laps

SPLITS = (0.72, 0.82, 0.91)
"""Where the time-ordered decisions are cut: train | stop early | calibrate | test."""
MIN_SLICE_DECISIONS = 200
"""Decisions each later slice keeps on a small log (while training keeps at least half):
fewer stop the boosting, calibrate and test on noise."""


def split_points(n: int) -> tuple[int, int, int]:
    """The three cuts of ``n`` time-ordered decisions: by :data:`SPLITS`, except that on
    a small log each later slice keeps :data:`MIN_SLICE_DECISIONS` decisions, or a sixth
    of the log when that would leave training less than half."""
    floor = min(MIN_SLICE_DECISIONS, n // 6)
    sizes = [
        max(floor, int(n * hi) - int(n * lo))
        for lo, hi in zip(SPLITS, (*SPLITS[1:], 1.0), strict=True)
    ]
    c = n - sizes[2]
    b = c - sizes[1]
    a = b - sizes[0]
    return a, b, c


MIN_NOTHING_DECISIONS = 200
"""Decisions that presented nothing needed to learn what doing nothing is worth."""
MIN_FULL_HORIZON_SHARE = 0.1
MIN_FULL_HORIZON_DECISIONS = 500
"""Decisions (and share of them) that must have lived the whole horizon to learn what
actions change over it."""
HISTORICAL_CHUNK_ROWS = 2_000_000
"""Entity rows per get_historical_features call: bounds the offline store's memory on very
large logs (DuckDB store: 1M rows in one call peaked near 10 GB with the dataset loaded)."""
MODEL_CODE = Path(__file__).resolve().parent.parent / "models" / "nba_policy.py"


@dataclass
class TrainReport:
    run_id: str
    version: str
    champion: bool
    n_decisions: int
    window: tuple[str, str]
    metrics: dict[str, float]
    per_action: pd.DataFrame
    truth: TruthEvaluation | None
    seconds: dict[str, float] = field(default_factory=dict)
    objective: str = "acceptance"
    """What the policy ranks by: ``incremental`` (with the learned Δ) or ``acceptance``."""
    objective_note: str | None = None
    """Why the policy fell back to the acceptance ranking, in plain words (or a caveat)."""
    priors: list[str] = field(default_factory=list)
    """Each action answered by a prior rate instead of a learnt model, and why."""
    small: list[str] = field(default_factory=list)
    """Families (some or all of whose actions are) answered by a linear model: too few
    decisions for boosted trees."""
    split: Split | None = None
    """How the decisions were cut (sizes, order, yardstick left out)."""
    yardstick: str = ""
    """The fixed yardstick measured on, in words."""


def training_frame(dataset: Dataset, settings: Settings) -> pd.DataFrame:
    """Decisions with their reason and the profile as of each decision, from Feast."""
    dec = decisions_with_reason(dataset)
    if dec.empty:
        raise NBAError("training needs a decisions table with logged decisions and outcomes")
    store = open_store(settings)
    entity = pd.DataFrame(
        {
            "customer_id": dec["customer_id"],
            "event_timestamp": pd.to_datetime(dec["timestamp"]).dt.tz_localize("UTC"),
        }
    ).drop_duplicates()
    # Customer-disjoint chunks bound the point-in-time join's memory on very large logs;
    # the union of the chunks is the same result.
    n_chunks = max(1, -(-len(entity) // HISTORICAL_CHUNK_ROWS))
    bucket = (pd.util.hash_pandas_object(entity["customer_id"], index=False) % n_chunks).to_numpy()
    parts = []
    try:
        service = store.get_feature_service(FEATURE_SERVICE)
        for k in range(n_chunks):
            chunk = entity[bucket == k]
            parts.append(store.get_historical_features(entity_df=chunk, features=service).to_df())
    except Exception as exc:  # Feast raises many types for a missing registry or source
        raise FeatureStoreError(
            f"cannot read profiles from Feast ({exc}); run `nba features build --data DIR` first"
        ) from exc
    hist = pd.concat(parts, ignore_index=True)
    hist["timestamp"] = hist.pop("event_timestamp").dt.tz_convert(None)
    frame = dec.merge(hist, on=["customer_id", "timestamp"], how="left")
    missing = int(frame["tenure_days"].isna().sum())
    if missing:
        raise FeatureStoreError(
            f"{missing} of {len(frame)} decisions have no profile in the offline store: "
            "run `nba features build --data DIR` on this dataset first"
        )
    return frame


def design(frame: pd.DataFrame, catalog: Catalog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(response model rows, accepted 0/1, presented) per logged decision. A ``no_action``
    decision presented nothing (``presented`` False): its row is not the response model's
    (it holds the first action) and must not be learnt from."""
    px = profile_matrix({c: frame[c].to_numpy() for c in NUMERIC_FEATURE_NAMES}, len(frame))
    k = len(catalog.actions)
    index = {a: j for j, a in enumerate(catalog.ids)} | {NO_ACTION: k}
    actions = np.array([index[a] for a in frame["action_id"]], dtype=np.int64)
    x = candidate_rows(
        px,
        channel_codes(frame["channel"].tolist()),
        reason_codes(frame["reason"].tolist()),
        catalog,
        np.where(actions < k, actions, 0),
    )
    return x, (frame["outcome"] == "accepted").to_numpy(dtype=float), actions < k


def branch_design(frame: pd.DataFrame, catalog: Catalog) -> np.ndarray:
    """The uplift model's rows per logged decision: what followed (the family's action
    accepted or not, or nothing) with the profile and contact."""
    px = profile_matrix({c: frame[c].to_numpy() for c in NUMERIC_FEATURE_NAMES}, len(frame))
    family = frame["action_id"].map(
        {a.id: FAMILIES.index(a.family) for a in catalog.actions} | {NO_ACTION: NOTHING_FAMILY}
    )
    return branch_rows(
        px,
        channel_codes(frame["channel"].tolist()),
        reason_codes(frame["reason"].tolist()),
        branch_code(family.to_numpy(dtype=np.int64), (frame["outcome"] == "accepted").to_numpy()),
    )


def value_objective(
    catalog: Catalog, frame: pd.DataFrame, outcomes: LongTermOutcomes
) -> tuple[bool, str | None]:
    """Whether the data can teach what actions change over the catalog's horizon; if not,
    why, in plain words (the policy then ranks by acceptance)."""
    if catalog.objective != "incremental":
        return False, (
            catalog.notes[0] if catalog.notes else "the catalog asks for the acceptance ranking"
        )
    nothing = int((frame["action_id"] == NO_ACTION).sum())
    if nothing < MIN_NOTHING_DECISIONS:
        return False, (
            f"only {nothing:,} logged decisions presented nothing (at least "
            f"{MIN_NOTHING_DECISIONS} are needed to learn what doing nothing is worth): "
            f"log the contacts where agents present nothing as '{NO_ACTION}'; ranking by "
            "chance of a yes x value meanwhile"
        )
    full = float(outcomes.full_horizon.mean()) if outcomes.full_horizon.size else 0.0
    n_full = int(outcomes.full_horizon.sum())
    if full < MIN_FULL_HORIZON_SHARE or n_full < MIN_FULL_HORIZON_DECISIONS:
        return False, (
            f"only {n_full:,} of the logged decisions ({full:.0%}) are older than the "
            f"catalog's horizon of {catalog.horizon_days} days (at least "
            f"{MIN_FULL_HORIZON_DECISIONS:,} and {MIN_FULL_HORIZON_SHARE:.0%} are needed to "
            "learn what actions change over it): lower horizon_days or bring a longer "
            "history; ranking by chance of a yes x value meanwhile"
        )
    if not (outcomes.fees > 0).any():
        return False, (
            "no decision's customer held a contract with a monthly fee, so there is no "
            "revenue to keep or lose: ranking by chance of a yes x value"
        )
    if outcomes.contracts_without_fee:
        return True, (
            f"{outcomes.contracts_without_fee:,} contracts have no monthly fee; they count "
            "0 in the revenue an action can keep"
        )
    return True, None


UPLIFT_VALID_SHARE = 0.15


def fit_uplift(
    x: np.ndarray, frame: pd.DataFrame, outcomes: LongTermOutcomes, seed: int
) -> UpliftModel:
    """The uplift model on the decisions that have lived their whole horizon (censored
    ones are excluded: measured against censoring weights in the README), whose customer
    held fees; the newest ``UPLIFT_VALID_SHARE`` of them stop the boosting early."""
    row = np.searchsorted(outcomes.decision_id, frame["decision_id"].to_numpy(dtype=object))
    usable = np.flatnonzero(outcomes.full_horizon[row] & (outcomes.fees[row] > 0))
    label = outcomes.kept_share()[row]
    cut = int(usable.size * (1 - UPLIFT_VALID_SHARE))
    train_rows, valid_rows = usable[:cut], usable[cut:]
    return UpliftModel(seed=seed).fit(
        x[train_rows], label[train_rows], x[valid_rows], label[valid_rows], outcomes.horizon_months
    )


def train(
    data_dir: Path,
    settings: Settings | None = None,
    step: Callable[[str], None] | None = None,
    *,
    seed: int = 0,
    split: Literal["time", "shuffled"] = "time",
    purpose: Literal["train", "retrain"] = "train",
    new_yardstick: bool = False,
) -> TrainReport:
    """Train, evaluate, log to MLflow and register a new ``nba-policy`` version.

    The first version gets the ``@champion`` alias; later ones are registered without an
    alias (move aliases with ``nba promote``). ``split="time"`` fits on the oldest
    decisions and tests on the newest; ``"shuffled"`` draws the parts at random (seeded),
    so that the newest decisions (fresh feedback) are learnt from too; the out-of-time
    check is then the promotion gate on decisions logged after training.

    Every version is also measured on the workspace's fixed yardstick (:mod:`pipelines.
    yardstick`), whose decisions are left out of training; the first training (or
    ``new_yardstick``) freezes it from its test part.
    """
    import mlflow
    from mlflow.models import infer_signature

    s = settings or get_settings()
    say = step or (lambda _m: None)
    laps = Laps()
    lap = laps.lap

    say("loading the dataset")
    dataset = load_dataset(data_dir, settings=s)
    catalog = dataset.catalog
    say("building the training set from Feast (point-in-time)")
    frame = training_frame(dataset, s)
    frame, yard, left_out, yard_note = _without_yardstick(frame, s, new_yardstick)
    if split == "shuffled":
        order = np.random.default_rng(seed).permutation(len(frame))
        frame = frame.iloc[order].reset_index(drop=True)
    frame["family"] = frame["action_id"].map(catalog.family_of)
    outcomes = long_term_outcomes(dataset, catalog.horizon_days)
    incremental, objective_note = value_objective(catalog, frame, outcomes)
    if incremental:
        at = np.searchsorted(outcomes.decision_id, frame["decision_id"].to_numpy(dtype=object))
        frame["long_term_revenue"] = outcomes.revenue_estimate()[at]
    lap("training_set")
    x, y, shown = design(frame, catalog)
    n = len(frame)
    a, b, c = split_points(n)
    sa, sb, sc = (np.flatnonzero(shown[lo:hi]) + lo for lo, hi in ((0, a), (a, b), (b, c)))
    say(f"training LightGBM on {sa.size:,} presented actions")
    model = ResponseModel(seed=seed).fit(
        x[sa], y[sa], x[sb], y[sb], x[sc], y[sc], [act.family for act in catalog.actions]
    )
    uplift = None
    if incremental:
        say(f"learning what actions change over {catalog.horizon_days} days")
        uplift = fit_uplift(branch_design(frame, catalog), frame, outcomes, seed)
    elif objective_note:
        say(f"note: {objective_note}")
    lap("fit")
    say("evaluating")
    test = frame.iloc[c:].reset_index(drop=True)
    test_shown = np.flatnonzero(shown[c:]) + c
    p_test = model.predict_proba(x[test_shown])
    per_action = action_metrics(frame.iloc[test_shown], y[test_shown], p_test)
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    metrics: dict[str, float] = {
        "horizon_days": float(catalog.horizon_days),
        "auc": float(roc_auc_score(y[test_shown], p_test)),
        "log_loss": float(log_loss(y[test_shown], p_test)),
        "brier": float(brier_score_loss(y[test_shown], p_test)),
        "ece": ece(y[test_shown], p_test),
        "best_iteration": float(sum(model.rounds_.values())),
        **{f"rounds_{fam}": float(r) for fam, r in model.rounds_.items()},
        "linear_families": float(len(model.linear_)),
        "actions_on_prior": float(sum(e.uses_prior for e in model.evidence_)),
    }
    if uplift is not None:
        metrics["uplift_rounds"] = float(uplift.fit_.rounds)
        metrics["uplift_valid_rmse"] = uplift.fit_.valid_rmse
        metrics["uplift_valid_rmse_constant"] = uplift.fit_.valid_rmse_constant
    policy = Policy(catalog, model, uplift=uplift)
    metrics.update(logged_policy_values(policy, dataset, test, catalog))
    truth, mix, truth_inputs, truth_rows = _truth_evaluation(policy, dataset, Path(data_dir))
    frozen = yard is None
    if yard is None:
        say("freezing the yardstick every later version is measured on")
        yard = yardstick.freeze(s, test, logged_inputs(dataset, test), truth_inputs, truth_rows)
    on_yardstick, measure_note = yardstick.measure(yard, policy)
    metrics.update(on_yardstick)
    yard_note = yard_note or measure_note
    if truth is not None:
        metrics.update({f"normalised_value_{k}": v for k, v in truth.normalised.items()})
        metrics.update({f"value_per_contact_{k}": v for k, v in truth.values.items()})
        for fam, row in truth.by_family.iterrows():
            metrics[f"normalised_value_nba_{fam}"] = float(row["nba"])
        metrics["contact_policy_held_back_share"] = truth.held_back_share
        metrics["contact_policy_cost_per_contact"] = truth.contact_policy_cost
    lap("evaluate")
    window = (str(frame["timestamp"].min()), str(frame["timestamp"].max()))
    test_window = (str(test["timestamp"].min()), str(test["timestamp"].max()))
    split_used = Split(n, a, b, c, split, window, test_window, left_out, yard.name)
    say("logging to MLflow and registering the model")
    experiment_id = configure(s)  # the workspace's experiment: artifacts under NBA_HOME
    champion = not has_alias(CHAMPION, s)
    with (
        mlflow.start_run(experiment_id=experiment_id, run_name=purpose) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        out = Path(tmp)
        mlflow.log_params(
            {
                **{f"lgbm_{k}": v for k, v in model.params().items()},
                "n_estimators_max": model.n_estimators,
                "min_evidence": model.min_evidence,
                "split": str(SPLITS),
                "split_order": split,
                "data_dir": str(Path(data_dir).resolve()),
                "window_start": window[0],
                "window_end": window[1],
                "n_train": a,
                "n_valid": b - a,
                "n_calib": c - b,
                "n_test": n - c,
                "catalog": catalog.source,
                "yardstick": yard.name,
                "yardstick_decisions": len(yard.decisions),
                "yardstick_left_out_of_training": left_out,
            }
        )
        mlflow.log_metrics({k: round(v, 4) for k, v in metrics.items() if np.isfinite(v)})
        for action, row in per_action.iterrows():
            mlflow.log_metrics(
                {
                    f"{m}_{action}": round(float(row[m]), 4)
                    for m in ("auc", "log_loss", "brier", "ece")
                    if np.isfinite(row[m])
                }
            )
        mlflow.set_tags(
            {"objective": "incremental" if uplift else "acceptance"}
            | ({"objective_note": objective_note} if objective_note else {})
        )
        charts = training_charts(out, frame.iloc[test_shown], y[test_shown], p_test,
                                 model.feature_importance(), mix)  # fmt: skip
        per_action.to_csv(out / "per_action_metrics.csv")
        mlflow.log_artifact(str(out / "per_action_metrics.csv"))
        (out / "response_model.json").write_text(model.to_json())
        (out / "objective.json").write_text(
            json.dumps(
                {
                    "objective": "incremental" if uplift else "acceptance",
                    "requested": catalog.objective,
                    "horizon_days": catalog.horizon_days,
                    "note": objective_note,
                }
            )
        )
        artifacts = {
            "catalog": catalog.source,
            "response_model": str(out / "response_model.json"),
            "default_profile": str(out / "default_profile.json"),
            "objective": str(out / "objective.json"),
        }
        if uplift is not None:
            (out / "uplift_model.json").write_text(uplift.to_json())
            artifacts["uplift_model"] = str(out / "uplift_model.json")
        (out / "default_profile.json").write_text(json.dumps(default_profile(frame.iloc[:a])))
        example = policy_input(dataset, _example_contacts(frame))
        example = example[list(INPUT_COLUMNS)]
        params = {"limit": 3, "with_suppressed": False, "model_version": ""}
        from nba.policy.frames import decisions_to_frame

        sample_out = decisions_to_frame(
            policy.decide(contacts_from_frame(example, catalog), 3), ""
        )
        with registry_quiet(s):  # MLflow prints "Registered model ..." itself
            info = mlflow.pyfunc.log_model(
                name="policy",
                python_model=str(MODEL_CODE),
                artifacts=artifacts,
                signature=infer_signature(example, sample_out, params=params),
                input_example=(example.head(2), params),
                registered_model_name=MODEL_NAME,
                pip_requirements=model_requirements(),
            )
        version = str(info.registered_model_version)
        mlflow.set_tags({"registered_version": version, "mlflow.runName": f"{purpose} v{version}"})
        if frozen:
            yardstick.stamp(yard, version)
        (out / "evidence.json").write_text(json.dumps([e.__dict__ for e in model.evidence_]))
        mlflow.log_artifact(str(out / "evidence.json"))
        run_id = run.info.run_id
        status: Status = (
            "champion" if champion else "challenger" if purpose == "retrain" else "candidate"
        )
        current = None if champion else resolve(CHAMPION, s).version
        told = headline(metrics, truth, s.currency)
        verdict = training_verdict(version, status, current, told)
        summary = training_summary(
            f"{purpose} v{version}", verdict, split_used, metrics, per_action, truth,
            catalog, charts, s.currency, objective_note,
        )  # fmt: skip
        yardstick_section(summary, yard.describe(), metrics, s.currency, yard_note)
        log_summary(summary, purpose)
    if champion:
        set_alias(CHAMPION, version, s)
    mark_version(version, status, run_id, verdict, told)
    lap("mlflow")
    dataset.close()
    return TrainReport(
        run_id,
        version,
        champion,
        n,
        window,
        metrics,
        per_action,
        truth,
        laps.seconds,
        "incremental" if uplift else "acceptance",
        objective_note,
        prior_reasons(model, catalog),
        model.linear_families(),
        split_used,
        yard.describe(),
    )


MODEL_PACKAGES = (
    "nba-engine", "mlflow", "lightgbm", "numba", "numpy", "pandas", "pyarrow", "scikit-learn",
    "scipy", "pyyaml",
)  # fmt: skip
"""What loading the registered policy imports. Named, not inferred: MLflow's inference
loads the model in a subprocess (5 s of every training run) and missed lightgbm and numba."""


def model_requirements() -> list[str]:
    """The registered model's pip requirements, pinned to the versions it was trained with."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for name in MODEL_PACKAGES:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # e.g. the engine run from a source tree
            pinned.append(name)
    return pinned


def prior_reasons(model: ResponseModel, catalog: Catalog) -> list[str]:
    """Plain words for every action whose acceptance is a prior rate, not a model's."""
    out = []
    for action, e in zip(catalog.actions, model.evidence_, strict=True):
        if not e.uses_prior:
            continue
        if FAMILIES.index(action.family) not in model.models_:
            why = (
                f"too few decisions in its family to learn from (fewer than {MIN_ROWS}, or "
                f"fewer than {MIN_EACH} accepted or not accepted)"
            )
        else:
            why = f"fewer than {model.min_evidence} decisions"
        out.append(f"{action.name} ({e.n:,} decisions): {why}")
    return out


def default_profile(frame: pd.DataFrame) -> dict[str, float | None]:
    """The typical profile (median of each feature over the training contacts): what the
    API ranks with when a customer's live profile cannot be read in time."""
    out: dict[str, float | None] = {}
    for name in NUMERIC_FEATURE_NAMES:
        median = pd.to_numeric(frame[name], errors="coerce").median()
        out[name] = None if pd.isna(median) else float(median)
    return out


def _example_contacts(frame: pd.DataFrame) -> pd.DataFrame:
    last = frame.tail(3)
    return pd.DataFrame(
        {
            "contact_id": last["decision_id"],
            "customer_id": last["customer_id"],
            "timestamp": last["timestamp"],
            "channel": last["channel"],
            "reason": last["reason"],
        }
    ).reset_index(drop=True)


def _truth_evaluation(
    policy: Policy, dataset: Dataset, data_dir: Path
) -> tuple[TruthEvaluation | None, pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    """Evaluate on the held-out contacts when the dataset carries the simulator's truth.
    Returns the evaluation, the action mix by segment, the contacts' policy inputs and the
    truth read (None each without truth)."""
    truth_file = data_dir / "truth" / "expected_value.parquet"
    if not truth_file.is_file() or not dataset.count("contacts"):
        return None, None, None, None
    contacts = dataset.con.sql(
        "SELECT c.*, u.segment FROM contacts c JOIN customers u "
        "USING (customer_id) ORDER BY contact_id"
    ).df()
    frame = policy_input(dataset, contacts)
    batch = contacts_from_frame(frame, policy.catalog)
    scores = policy.score(batch)
    truth = pd.read_parquet(truth_file)
    result = evaluate_against_truth(
        scores,
        policy.catalog,
        frame["contact_id"].tolist(),
        truth,
        batch.profile_x,
    )
    picked = choices(scores, policy.catalog)["nba"]
    named = [policy.catalog.actions[j].name if j >= 0 else "nothing" for j in picked]
    mix = pd.crosstab(
        contacts["segment"].fillna("unknown"), pd.Series(named, name="action"), normalize="index"
    )
    return result, mix, frame.drop(columns="segment", errors="ignore"), truth


def _without_yardstick(
    frame: pd.DataFrame, s: Settings, new: bool
) -> tuple[pd.DataFrame, yardstick.Yardstick | None, int, str | None]:
    """The training frame without the yardstick's decisions (no version may see them).
    Returns the frame, the yardstick to measure on (None: freeze one), the decisions left
    out and a note when the workspace's yardstick does not fit this data."""
    yard = None if new else yardstick.current(s)
    if yard is None:
        return frame, None, 0, None
    inside = yardstick.rows_in(yard, frame)
    if inside is None:
        note = (
            f"the workspace's yardstick {yard.name} does not describe this data (its "
            "decisions are missing here, or carry other actions or outcomes: another "
            "source): a new one is frozen from this run's test part"
        )
        return frame, None, 0, note
    return frame[~inside].reset_index(drop=True), yard, int(inside.sum()), None
