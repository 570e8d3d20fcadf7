"""Stage: score contacts with the registered champion and write ``recommendations``.

Profiles are taken as of each contact (never later). Without a contacts file, the whole
base is scored: one contact per active customer (holding an active contract), as of the
newest timestamp in the data, on channel ``phone``, as the data contract says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nba.config import Settings, get_settings
from nba.contract import Dataset, load_contacts_file, load_dataset
from nba.inputs import policy_input
from nba.policy.frames import INPUT_COLUMNS, RECOMMENDATION_COLUMNS
from nba.tracking import CHAMPION, resolve
from pipelines.features import latest_as_of

RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        ("contact_id", pa.string()),
        ("customer_id", pa.string()),
        ("rank", pa.int64()),
        ("action_id", pa.string()),
        ("family", pa.string()),
        ("propensity", pa.float64()),
        ("value", pa.float64()),
        ("priority", pa.float64()),
        ("reasons", pa.list_(pa.string())),
        ("model_version", pa.string()),
    ]
)


@dataclass
class ScoreReport:
    n_contacts: int
    n_rows: int
    n_without_action: int
    model_version: str
    out: Path
    seconds: float
    recommendations: pd.DataFrame


def base_contacts(dataset: Dataset) -> pd.DataFrame:
    """One contact per active customer as of the newest data, on the phone."""
    now = latest_as_of(dataset).replace(tzinfo=None).isoformat(sep=" ")
    return dataset.con.sql(f"""
        SELECT 'base-' || customer_id AS contact_id, customer_id,
               TIMESTAMP '{now}' AS timestamp, 'phone' AS channel, NULL::VARCHAR AS reason
        FROM customers
        WHERE customer_id IN (SELECT customer_id FROM contracts
                              WHERE start_date < TIMESTAMP '{now}'
                                AND (end_date IS NULL OR end_date >= TIMESTAMP '{now}'))
        ORDER BY customer_id""").df()


def score(
    data_dir: Path,
    out: Path,
    contacts_file: Path | None = None,
    *,
    top_k: int = 3,
    alias: str = CHAMPION,
    settings: Settings | None = None,
) -> ScoreReport:
    """Score contacts and write the contract's ``recommendations`` Parquet to ``out``."""
    import mlflow

    s = settings or get_settings()
    started = time.perf_counter()
    ref = resolve(alias, s)
    dataset = load_dataset(data_dir, settings=s)
    try:
        if contacts_file is not None:
            load_contacts_file(dataset, contacts_file)
            contacts = dataset.con.sql("SELECT * FROM contacts ORDER BY contact_id").df()
        else:
            contacts = base_contacts(dataset)
        model = mlflow.pyfunc.load_model(ref.uri)
        frame = policy_input(dataset, contacts)[list(INPUT_COLUMNS)]
        recs = model.predict(
            frame, params={"limit": top_k, "model_version": ref.version, "with_suppressed": False}
        )
    finally:
        dataset.close()
    table = pa.Table.from_pandas(
        recs[list(RECOMMENDATION_COLUMNS)], schema=RECOMMENDATIONS_SCHEMA, preserve_index=False
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)
    n_with = recs["contact_id"].nunique() if len(recs) else 0
    return ScoreReport(
        len(contacts),
        len(recs),
        len(contacts) - n_with,
        ref.version,
        out,
        round(time.perf_counter() - started, 2),
        recs,
    )
