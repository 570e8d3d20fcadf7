"""Parity: for the same customer, moment and model version, batch scoring (``nba score``)
and ``POST /v1/recommendations`` give the same ranking, propensities (to 1e-9) and reasons.

The API reads the live profile from the Feast online store and the customer's reported
outcomes from its decision log; batch computes the profile from the dataset as of the
contact and reads the outcomes from the dataset's ``decisions`` table. To compare like
with like, the dataset's past decisions of the chosen customers are written into the
API's decision log (as answers with reported outcomes), and the API's clock is frozen at
the moment of the online profiles, which is the moment of the batch contacts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from nba.contract import load_dataset
from nba.decision_log import OutcomeRecord, ServedRecord
from pipelines.score import score
from tests.serving.conftest import Api, ApiFactory, Workspace

pytestmark = pytest.mark.slow

CONTACT_KINDS = [
    ("phone", "complaint"),
    ("phone", None),
    ("chat", "billing_question"),
    ("email", "cancellation_request"),
    ("branch", "inquiry"),
]


def _seed_history(api: Api, data: Path, customers: list[str], moment: datetime) -> int:
    """The customers' past decisions, as the API would have logged them."""
    dataset = load_dataset(data, only=("customers", "decisions"))
    try:
        rows = dataset.con.sql(
            "SELECT decision_id, customer_id, timestamp, channel, action_id, outcome "
            "FROM decisions WHERE customer_id IN (SELECT unnest(?)) ORDER BY timestamp",
            params=[customers],
        ).fetchall()
    finally:
        dataset.close()
    assert rows, "the chosen customers have no past decisions: the parity would be weak"
    api.log.start()
    try:
        _write_history(api, rows, moment)
    finally:
        api.log.close()
    return len(rows)


def _write_history(api: Api, rows: list[tuple[Any, ...]], moment: datetime) -> None:
    for decision_id, customer_id, ts, channel, action_id, outcome in rows:
        assert outcome is not None  # the API's history holds reported outcomes only
        presented = ts.replace(tzinfo=UTC)
        assert presented < moment
        api.log.write(
            ServedRecord(
                decision_id=f"seed-{decision_id}",
                customer_id=customer_id,
                timestamp=presented,
                channel=channel,
                reason=None,
                agent_id=None,
                model_version="0",
                features_timestamp=None,
                known_customer=True,
                degraded=False,
                degraded_reason=None,
                ranking=[{"action_id": action_id, "shown_probability": 1.0}],
            )
        )
        api.log.write(OutcomeRecord(f"seed-{decision_id}", action_id, outcome, None))


def test_batch_and_api_give_the_same_answer(
    api_factory: ApiFactory,
    sqlite_workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = api_factory(sqlite_workspace)
    customers = sqlite_workspace.customers[::25][:60]
    first = api.recommend(customers[0])
    moment = datetime.fromisoformat(str(first["features_timestamp"]))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    seeded = _seed_history(api, sqlite_workspace.data, customers, moment)
    monkeypatch.setattr("serving.engine.now_utc", lambda: moment)

    contacts = pd.DataFrame(
        {
            "contact_id": [f"k{i}" for i in range(len(customers))],
            "customer_id": customers,
            "timestamp": [moment.replace(tzinfo=None)] * len(customers),
            "channel": [CONTACT_KINDS[i % len(CONTACT_KINDS)][0] for i in range(len(customers))],
            "reason": [CONTACT_KINDS[i % len(CONTACT_KINDS)][1] for i in range(len(customers))],
        }
    )
    contacts_file = tmp_path / "contacts.parquet"
    contacts.to_parquet(contacts_file)
    out = tmp_path / "recs.parquet"
    report = score(
        sqlite_workspace.data, out, contacts_file, top_k=5, settings=api.settings, chunk_size=17
    )
    batch = pd.read_parquet(out)
    assert report.model_version == str(first["model_version"])

    compared = suppressed_by_history = 0
    for contact in contacts.itertuples():
        answer: dict[str, Any] = api.recommend(
            contact.customer_id, channel=contact.channel, reason=contact.reason, limit=5
        )
        assert answer["known_customer"] and not answer["degraded"]
        assert answer["features_timestamp"] == first["features_timestamp"]
        rows = batch[batch["contact_id"] == contact.contact_id].sort_values("rank")
        recs = answer["recommendations"]
        assert [r["action_id"] for r in recs] == rows["action_id"].tolist(), contact
        for r, (_, b) in zip(recs, rows.iterrows(), strict=True):
            assert r["propensity"] == pytest.approx(b["propensity"], abs=1e-9, rel=0)
            assert r["value"] == pytest.approx(b["value"], abs=1e-9, rel=0)
            assert r["priority"] == pytest.approx(b["priority"], abs=1e-9, rel=0)
            assert r["reasons"] == list(b["reasons"])
            assert b["model_version"] == answer["model_version"]
        compared += len(recs)
        suppressed_by_history += sum(
            s["rule"].startswith("contact policy:") for s in answer["suppressed"]
        )
    assert compared >= len(customers)  # most contacts get several actions
    assert seeded > 0
    # The history mattered: some actions were held back by the contact policy on both sides.
    assert suppressed_by_history > 0
