"""Batch scoring on Apache Spark: the same pyfunc model, run by Spark executors.

The driver prepares each unfinished chunk's model input exactly as the local runner does
(profiles as of each contact, past decisions) and stages it as Parquet under
``OUT.parts/spark-input/``. Spark reads the staged chunks and scores them with
``mapInPandas`` over the registered pyfunc model (downloaded once, loaded once per Python
worker): the profile reads are cheap, the model and its explanations are where the time
goes, and that is what Spark spreads over the cluster. The driver then writes each chunk's
result as a part, as the local runner does, so resume, joining and the output are shared.

On a cluster, ``OUT`` (and so its ``.parts`` staging folder) and ``NBA_HOME`` must be on
storage every executor mounts at the same path (NFS, or a mounted bucket): executors read
the staged inputs and the model's artifacts from there.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nba.policy.arbitration import History
from nba.policy.frames import CONTEXT_INPUT, INPUT_COLUMNS, RECOMMENDATIONS_SCHEMA
from pipelines.score import (
    Parts,
    Progress,
    ScoringError,
    ScoringJob,
    chunk_bounds,
    chunk_history,
    chunk_keys,
    chunk_profiles,
)

POSITION = "_position"  # a contact's row within its chunk: restores the local row order
CHUNK = "_chunk"


def model_input(job: ScoringJob, chunk: pd.DataFrame) -> pd.DataFrame:
    """The pyfunc model's input for a chunk (``nba.policy.frames``), history as JSON."""
    keys = chunk_keys(chunk)
    profiles = chunk_profiles(job, chunk, keys).reset_index(drop=True)
    frame = profiles.copy()
    for col in ("contact_id", "customer_id", "channel", "reason"):
        frame[col] = chunk[col].reset_index(drop=True)
    frame["history"] = _history_json(chunk_history(job, keys), len(chunk), job)
    frame = frame[list(INPUT_COLUMNS)]
    frame[POSITION] = np.arange(len(chunk), dtype=np.int64)
    return frame


def _history_json(history: History, n: int, job: ScoringJob) -> list[str]:
    ids = job.policy.catalog.ids
    rows: list[list[list[object]]] = [[] for _ in range(n)]
    for i, a, age, declined, accepted in zip(
        history.contact.tolist(),
        history.action.tolist(),
        history.age_days.tolist(),
        history.declined.tolist(),
        history.accepted.tolist(),
        strict=True,
    ):
        # The contact policy reads declines and acceptances; other outcomes count as offers.
        outcome = "declined" if declined else "accepted" if accepted else "offered"
        rows[i].append([ids[a] if a >= 0 else "", age, outcome])
    return [json.dumps(r) for r in rows]


def _score_partitions(
    model_path: str, top_k: int, version: str
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function Spark runs on each partition (one chunk per group of batches)."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import mlflow

        model = mlflow.pyfunc.load_model(model_path)
        params = {"limit": top_k, "model_version": version, "with_suppressed": False}
        for batch in batches:
            for _chunk, frame in batch.groupby(CHUNK, sort=False):
                recs = model.predict(frame.drop(columns=[CHUNK, POSITION]), params=params)
                position = dict(zip(frame["contact_id"], frame[POSITION], strict=True))
                recs = recs[list(RECOMMENDATIONS_SCHEMA.names)].copy()
                recs[POSITION] = recs["contact_id"].map(position).astype("int64")
                recs[CHUNK] = np.int64(frame[CHUNK].iloc[0])
                yield recs

    return score


def run_spark(
    job: ScoringJob,
    parts: Parts,
    top_k: int,
    chunk_size: int,
    master: str | None,
    progress: Progress | None,
) -> tuple[int, int]:
    """Score every unfinished chunk on Spark; returns (chunks, chunks found done)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ScoringError(
            "--engine spark needs pyspark: pip install 'nba-engine[spark]' (and Java 17+)"
        ) from None
    bounds = chunk_bounds(len(job.contacts), chunk_size)
    todo = [i for i in range(len(bounds)) if not parts.done(i)]
    resumed = len(bounds) - len(todo)
    if not todo:
        return len(bounds), resumed
    staging = parts.dir / "spark-input"
    shutil.rmtree(staging, ignore_errors=True)  # inputs of an interrupted attempt
    staging.mkdir()
    for i in todo:
        a, b = bounds[i]
        frame = model_input(job, job.contacts.iloc[a:b])
        frame[CHUNK] = np.int64(i)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for col in CONTEXT_INPUT:  # an all-null column (reason) must still be text
            idx = table.schema.get_field_index(col)
            table = table.set_column(idx, col, table.column(col).cast(pa.string()))
        pq.write_table(table, staging / f"{i:05d}.parquet")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder
    if master or not os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Under spark-submit (which starts the gateway) its --master applies unless one
        # is given here; run directly, the default is local[2].
        builder = builder.master(master or "local[2]")
    spark = (
        builder.appName("nba-score")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        staged = spark.read.parquet(str(staging)).repartition(len(todo), CHUNK)
        schema = (
            ", ".join(f"{f.name} {_spark_type(f.type)}" for f in RECOMMENDATIONS_SCHEMA)
            + f", {POSITION} bigint, {CHUNK} bigint"
        )
        scored = staged.mapInPandas(
            _score_partitions(job.model_path, top_k, job.ref.version), schema=schema
        )
        result = staging.with_name("spark-output")
        scored.write.mode("overwrite").partitionBy(CHUNK).parquet(str(result))
    finally:
        spark.stop()
    done_rows = sum(b - a for i, (a, b) in enumerate(bounds) if i not in todo)
    for i in todo:
        folder = result / f"{CHUNK}={i}"
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        table = (
            pa.concat_tables([pq.read_table(f) for f in files])
            if files
            else pa.schema([*RECOMMENDATIONS_SCHEMA, pa.field(POSITION, pa.int64())]).empty_table()
        )
        table = table.sort_by([(POSITION, "ascending"), ("rank", "ascending")])
        parts.write(i, table.select(RECOMMENDATIONS_SCHEMA.names).cast(RECOMMENDATIONS_SCHEMA))
        a, b = bounds[i]
        done_rows += b - a
        if progress:
            progress(done_rows, len(job.contacts))
    return len(bounds), resumed


def _spark_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return f"array<{_spark_type(t.value_type)}>"
    return {pa.string(): "string", pa.int64(): "bigint", pa.float64(): "double"}[t]
