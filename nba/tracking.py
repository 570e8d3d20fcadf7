"""MLflow set-up: a SQLite tracking store and artifacts under ``NBA_HOME``, and the registry.

Serving and batch scoring load ``models:/nba-policy@champion`` only; aliases (never the
deprecated stages, never run ids) say which version is live.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nba.config import Settings, get_settings
from nba.exceptions import NBAError

if TYPE_CHECKING:
    from nba.policy.policy import Policy

MODEL_NAME = "nba-policy"
EXPERIMENT = "nba-policy"
CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT_TAGS = {
    # MLflow's UI opens an experiment without this tag in its GenAI mode (traces, prompts).
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": (
        "Every run of the Next-Best-Action engine on this workspace: **train** and "
        "**retrain** (a new policy version), **evaluate** (a challenger against the "
        "champion), **score** (what a scored base is recommended), **impact** (the NBA "
        "against the control group) and **simulate-loop**. Each run's Overview starts "
        "with its summary in plain words; the live version is `nba-policy@champion` "
        "under Models."
    ),
}
MODEL_DESCRIPTION = (
    "The Next-Best-Action policy. `@champion` is the version the API serves and batch "
    "scoring uses; `@challenger` is a candidate collecting evidence. Each version's tags "
    "say its status (champion, challenger, rejected, retired), the run that decided it "
    "and its headline value."
)


def tracking_uri(settings: Settings | None = None) -> str:
    s = settings or get_settings()
    return f"sqlite:///{s.home_dir / 'mlflow.db'}"


def configure(settings: Settings | None = None) -> str:
    """Point MLflow at the workspace's store; create the experiment. Returns its id."""
    import mlflow

    s = settings or get_settings()
    s.home_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri(s))
    mlflow.set_registry_uri(tracking_uri(s))
    artifacts = (s.home_dir.resolve() / "mlartifacts").as_uri()
    found = mlflow.get_experiment_by_name(EXPERIMENT)
    if found is None:
        return str(
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts, tags=EXPERIMENT_TAGS)
        )
    if found.artifact_location != artifacts:
        _relocate(s, found.artifact_location, artifacts)
    missing = {k: v for k, v in EXPERIMENT_TAGS.items() if k not in found.tags}
    for key, value in missing.items():  # workspaces made before the tags existed
        mlflow.MlflowClient().set_experiment_tag(found.experiment_id, key, value)
    return str(found.experiment_id)


def _relocate(settings: Settings, old: str, new: str) -> None:
    """The workspace was copied or moved: point every stored artifact location that lies
    under the old workspace's artifact folder at this one's. MLflow keeps them as absolute
    URIs, so a copy would read (or lose) the original's files. Idempotent, one
    transaction."""
    import sqlite3

    columns = {
        "experiments": ("artifact_location",),
        "runs": ("artifact_uri",),
        "model_versions": ("source", "storage_location"),
        "logged_models": ("artifact_location",),
    }
    con = sqlite3.connect(settings.home_dir / "mlflow.db")
    try:
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        with con:
            for table, cols in columns.items():
                if table not in present:
                    continue
                have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                for col in cols:
                    if col in have:
                        con.execute(
                            f"UPDATE {table} SET {col} = ? || substr({col}, ?) "
                            f"WHERE substr({col}, 1, ?) = ?",
                            (new, len(old) + 1, len(old), old),
                        )
    finally:
        con.close()


@dataclass(frozen=True)
class ModelRef:
    uri: str
    version: str
    alias: str | None

    @property
    def pinned_uri(self) -> str:
        """The URI of this very version: loading by it is not affected by the alias moving
        between :func:`resolve` and the load."""
        return f"models:/{MODEL_NAME}/{self.version}"


def resolve(alias: str = CHAMPION, settings: Settings | None = None) -> ModelRef:
    """The registered version behind ``alias``; a clear error if there is none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure(settings)
    try:
        mv = MlflowClient().get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException:
        raise NBAError(
            f"no model '{MODEL_NAME}@{alias}' in {tracking_uri(settings)}: "
            "run `nba train --data DIR` first"
        ) from None
    return ModelRef(f"models:/{MODEL_NAME}@{alias}", str(mv.version), alias)


def load_policy(ref: ModelRef) -> Policy:
    """The policy object of the registered version ``ref`` names (pinned to that version,
    even if its alias moves meanwhile): what the API and ``nba score`` run."""
    import mlflow

    model = mlflow.pyfunc.load_model(ref.pinned_uri)
    policy: Policy = model.unwrap_python_model().policy
    return policy


def set_alias(alias: str, version: str, settings: Settings | None = None) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure(settings)
    try:
        MlflowClient().set_registered_model_alias(MODEL_NAME, alias, version)
    except MlflowException as exc:
        raise NBAError(
            f"cannot point {MODEL_NAME}@{alias} at version {version}: {str(exc).splitlines()[0]}"
        ) from None


def has_alias(alias: str, settings: Settings | None = None) -> bool:
    try:
        resolve(alias, settings)
    except NBAError:
        return False
    return True


@contextmanager
def registry_quiet(settings: Settings | None = None) -> Iterator[None]:
    """MLflow prints its registry steps ("Successfully registered model ...") straight to
    stderr, past the logging levels; the engine says what it registered itself. Shown with
    ``NBA_LOG_LEVEL=debug``. MLflow's own switch for its event lines, which nests with the
    uses inside ``log_model`` (a plain flag would be switched back on by them)."""
    from mlflow.utils.autologging_utils.logging_and_warnings import (
        MlflowEventsAndWarningsBehaviorGlobally,
    )

    s = settings or get_settings()
    if s.log_level == "debug":
        yield
        return
    with MlflowEventsAndWarningsBehaviorGlobally(
        disable_event_logs=True, disable_warnings=False, reroute_warnings=False
    ):
        yield
