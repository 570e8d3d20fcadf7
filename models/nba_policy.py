"""The NBA policy as one MLflow pyfunc model ("model from code": nothing is pickled).

Artifacts: the catalog (``actions.yaml``), the calibrated response model
(``response_model.json``: LightGBM text model, Platt parameters, evidence per action), the
uplift model (``uplift_model.json``, when the policy ranks by what actions change) and
the typical profile (``default_profile.json``) the API falls back on when a live profile
cannot be read.
Input: the policy input frame of ``nba.policy.frames`` (one row per contact). Output: the
``recommendations`` table of the data contract plus ``name``, ``script`` and, with the
parameter ``with_suppressed=True``, the suppressed actions (``rank`` 0) with their ``rule``.
Parameters: ``limit`` (0 = all), ``with_suppressed``, ``model_version`` (stamped on rows).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from nba.catalog import load_catalog
from nba.policy.design import profile_vector
from nba.policy.frames import contacts_from_frame, decisions_to_frame, ranking_table
from nba.policy.policy import Policy
from nba.policy.response import ResponseModel
from nba.policy.uplift import UpliftModel


class NBAPolicyModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        catalog = load_catalog(Path(context.artifacts["catalog"]))
        model = ResponseModel.from_json(
            Path(context.artifacts["response_model"]).read_text(encoding="utf-8")
        )
        uplift_file = context.artifacts.get("uplift_model")
        uplift = (
            UpliftModel.from_json(Path(uplift_file).read_text(encoding="utf-8"))
            if uplift_file
            else None
        )
        self.policy = Policy(catalog, model, uplift=uplift)
        self.default_profile = _default_profile(context.artifacts.get("default_profile"))
        objective_file = context.artifacts.get("objective")
        self.objective: dict[str, Any] = (
            json.loads(Path(objective_file).read_text(encoding="utf-8")) if objective_file else {}
        )

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        params = params or {}
        limit = int(params.get("limit", 0)) or None
        contacts = contacts_from_frame(model_input, self.policy.catalog)
        version = str(params.get("model_version", ""))
        if bool(params.get("with_suppressed", False)):
            return decisions_to_frame(self.policy.decide(contacts, limit), version, True)
        ranking, _ = self.policy.rank(contacts, limit)
        table = ranking_table(
            ranking, contacts.contact_id, contacts.customer_id, self.policy, version
        )
        out = table.to_pandas()
        actions = {a.id: a for a in self.policy.catalog.actions}
        out["name"] = out["action_id"].map(lambda a: actions[a].name)
        out["script"] = out["action_id"].map(lambda a: actions[a].script)
        out["rule"] = None
        return out


def _default_profile(path: str | None) -> np.ndarray:
    """Typical profile as a row of ``design.profile_matrix``; missing values (or a model
    logged before this artifact existed) are NaN, which the model reads as unknown."""
    values: dict[str, Any] = {}
    if path and Path(path).is_file():
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    return profile_vector(values)


mlflow.models.set_model(NBAPolicyModel())
