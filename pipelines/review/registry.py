"""The verdict on each registered version, where the analyst looks: tags (status, the run
that decided it, its headline value) and a description in words on the version itself."""

from __future__ import annotations

from typing import Literal

from nba.tracking import MODEL_DESCRIPTION, MODEL_NAME

Status = Literal["champion", "challenger", "candidate", "rejected", "retired"]
STATUS_TAG = "status"
DECIDED_BY_TAG = "decided_by_run"
HEADLINE_TAG = "headline"


def mark_version(
    version: str,
    status: Status,
    run_id: str,
    why: str,
    headline: str | None = None,
) -> None:
    """Tag registered version ``version`` with its status and the run that decided it, and
    write ``why`` (a sentence or two) as its description."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_model_version_tag(MODEL_NAME, version, STATUS_TAG, status)
    client.set_model_version_tag(MODEL_NAME, version, DECIDED_BY_TAG, run_id)
    if headline:
        client.set_model_version_tag(MODEL_NAME, version, HEADLINE_TAG, headline)
    client.update_model_version(MODEL_NAME, version, description=why)
    model = client.get_registered_model(MODEL_NAME)
    if not model.description:
        client.update_registered_model(MODEL_NAME, description=MODEL_DESCRIPTION)
