"""Stage: score contacts with the registered champion and write ``recommendations``.

Profiles are taken as of each contact (never later). Without a contacts file, the whole
base is scored: one contact per active customer (holding an active contract), as of the
newest timestamp in the data, on channel ``phone``, as the data contract says.

Where the profiles come from: when the Feast offline store was built from this very
dataset (its build manifest's fingerprint matches) and the contacts are the whole base or
the dataset's own ``contacts`` table, their profiles are already in it, at exactly the
contacts' moments; scoring reads them. Otherwise (a contacts file from elsewhere, or data
changed since ``nba features build``), profiles are computed from the dataset, chunk by
chunk, with the same code.

The work is split into chunks of contacts (sorted by customer, time, contact id). Each
finished chunk is written atomically to ``OUT.parts/``; a run that fails or is interrupted
resumes there (same model version, data, contacts and settings), rescoring nothing that is
done. The parts are then joined into ``OUT`` and removed.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nba.allocation import Allocation, Limits, allocate, parse_limits
from nba.config import Settings, get_settings
from nba.contract import Dataset, dataset_fingerprint, load_contacts_file, load_dataset
from nba.exceptions import NBAError
from nba.feature_store import read_build_manifest
from nba.policy.arbitration import History
from nba.policy.design import profile_matrix
from nba.policy.frames import RECOMMENDATIONS_SCHEMA, ranking_table
from nba.policy.policy import Contacts, Policy
from nba.profiles import NUMERIC_FEATURE_NAMES, RECENCY_HORIZON_DAYS, compute_profiles
from nba.tracking import CHAMPION, ModelRef, resolve
from pipelines.features import latest_as_of
from pipelines.policy_audit import PolicyAudit, audit
from pipelines.review.mix import log_score_run

DEFAULT_CHUNK = 50_000
Engine = Literal["local", "spark"]
Progress = Callable[[int, int], None]
"""progress(contacts done, contacts in total)."""


class ScoringError(NBAError):
    """Batch scoring cannot run as asked (the message says why and what to do)."""


@dataclass
class ScoreReport:
    n_contacts: int
    n_rows: int
    n_without_action: int
    model_version: str
    out: Path
    seconds: float
    engine: str
    profile_source: str
    chunks: int
    resumed_chunks: int
    mix: pd.DataFrame
    """Rank-1 actions: ``action_id``, ``family``, ``contacts``, ``share`` (of all contacts)."""
    examples: pd.DataFrame
    """The recommendations of the first few contacts, with the actions' names."""
    allocation: Allocation | None = None
    policy_audit: PolicyAudit | None = None
    run_id: str = ""
    """The MLflow run with the action mix by segment, tenure and channel ("" untracked)."""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- the contacts to score ------------------------------------------------------------------


def base_contacts(dataset: Dataset, now: datetime | None = None) -> pd.DataFrame:
    """One contact per active customer as of the newest data, on the phone."""
    moment = now or latest_as_of(dataset)
    ts = moment.replace(tzinfo=None).isoformat(sep=" ")
    return dataset.con.sql(f"""
        SELECT 'base-' || customer_id AS contact_id, customer_id,
               TIMESTAMP '{ts}' AS timestamp, 'phone' AS channel, NULL::VARCHAR AS reason
        FROM customers
        WHERE customer_id IN (SELECT customer_id FROM contracts
                              WHERE start_date < TIMESTAMP '{ts}'
                                AND (end_date IS NULL OR end_date >= TIMESTAMP '{ts}'))
        ORDER BY customer_id""").df()


@dataclass
class ScoringJob:
    """Everything one run needs, opened once: data, contacts, model, profile source."""

    dataset: Dataset
    contacts: pd.DataFrame  # sorted: customer_id, timestamp, contact_id
    policy: Policy
    ref: ModelRef
    model_path: str
    offline_profiles: Path | None  # None: compute profiles from the dataset
    identity: dict[str, object]

    @property
    def profile_source(self) -> str:
        if self.offline_profiles is not None:
            return f"Feast offline store ({self.offline_profiles})"
        return "computed from the dataset"

    def close(self) -> None:
        self.dataset.close()


def open_job(
    data_dir: Path,
    contacts_file: Path | None,
    *,
    top_k: int,
    chunk_size: int,
    alias: str,
    settings: Settings,
) -> ScoringJob:
    """Validate what the run reads, pick the profile source, load the model."""
    manifest = read_build_manifest(settings)
    fingerprint = dataset_fingerprint(data_dir) if Path(data_dir).is_dir() else ""
    built_from_this = manifest is not None and manifest.fingerprint == fingerprint
    # The build computed profiles at the moments of the dataset's own contacts table.
    own_contacts = contacts_file is not None and _same_file(
        contacts_file, Path(data_dir) / "contacts.parquet", Path(data_dir) / "contacts.csv"
    )
    read_offline = built_from_this and (contacts_file is None or own_contacts)
    # The model loads (mostly Python: imports, MLflow) while DuckDB reads the data.
    with ThreadPoolExecutor(max_workers=1) as pool:
        model = pool.submit(_open_model, alias, settings)
        if read_offline:
            # The interactions were validated when the profiles were built from them.
            only = ("customers", "contracts", "decisions", "contacts")
            dataset = load_dataset(data_dir, settings=settings, only=only)
            # Every chunk reads the same file: parse its footer (large: 127 columns) once.
            dataset.con.execute("SET parquet_metadata_cache = true")
        else:
            dataset = load_dataset(data_dir, settings=settings)
        try:
            if contacts_file is not None:
                if not own_contacts:
                    load_contacts_file(dataset, contacts_file)
                contacts = dataset.con.sql(
                    "SELECT * FROM contacts ORDER BY customer_id, timestamp, contact_id"
                ).df()
                source = f"file {Path(contacts_file).resolve()}"
            else:
                now = manifest.as_of_latest if built_from_this and manifest else None
                contacts = base_contacts(dataset, now)  # sorted by customer
                source = "whole base"
            _sorted_decisions(dataset)
            ref, model_path, policy = model.result()
        except BaseException:
            dataset.close()
            raise
    offline = settings.profiles_path if read_offline else None
    identity: dict[str, object] = {
        "model_version": ref.version,
        "data": fingerprint,
        "contacts": source + _file_stamp(contacts_file),
        "n_contacts": len(contacts),
        "top_k": top_k,
        "chunk_size": chunk_size,
        "profiles": "offline" if offline else "computed",
    }
    return ScoringJob(dataset, contacts, policy, ref, model_path, offline, identity)


def _open_model(alias: str, settings: Settings) -> tuple[ModelRef, str, Policy]:
    """The registered version behind ``alias``: its reference, local copy and policy."""
    import mlflow

    ref = resolve(alias, settings)
    path = mlflow.artifacts.download_artifacts(ref.pinned_uri)
    policy: Policy = mlflow.pyfunc.load_model(path).unwrap_python_model().policy
    policy.model.prepare()
    if policy.uplift is not None:
        policy.uplift.forest()
    return ref, path, policy


def _same_file(path: Path, *candidates: Path) -> bool:
    return any(c.is_file() and Path(path).resolve() == c.resolve() for c in candidates)


def _file_stamp(path: Path | None) -> str:
    if path is None:
        return ""
    st = Path(path).stat()
    return f" ({st.st_size} bytes, mtime {st.st_mtime_ns})"


def _sorted_decisions(dataset: Dataset) -> None:
    """The decisions by customer and time, so each chunk's history query reads one range."""
    dataset.con.execute(
        "CREATE OR REPLACE TABLE decisions_by_customer AS "
        "SELECT customer_id, timestamp, action_id, outcome FROM decisions "
        "ORDER BY customer_id, timestamp"
    )


# --- one chunk ------------------------------------------------------------------------------


def chunk_keys(chunk: pd.DataFrame) -> pa.Table:
    """The chunk's (row, customer, moment) as an Arrow table for DuckDB joins."""
    moment = pd.to_datetime(chunk["timestamp"])
    if moment.dt.tz is not None:
        moment = moment.dt.tz_convert(None)  # naive UTC, as the contract stores it
    return pa.table(
        {
            "i": pa.array(np.arange(len(chunk)), pa.int64()),
            "customer_id": pa.array(chunk["customer_id"].astype(str).to_numpy(), pa.string()),
            "ts": pa.array(moment.to_numpy().astype("datetime64[us]"), pa.timestamp("us")),
        }
    )


def chunk_profiles(job: ScoringJob, chunk: pd.DataFrame, keys: pa.Table) -> pd.DataFrame:
    """Each contact's profile as of the contact, in the chunk's row order."""
    con = job.dataset.con
    if job.offline_profiles is None:
        queries = keys.select(["customer_id", "ts"]).rename_columns(["customer_id", "as_of"])
        con.register("chunk_profiles", compute_profiles(con, queries))
        source = "chunk_profiles"
        moment = "p.event_timestamp"
    else:
        path = str(job.offline_profiles).replace("'", "''")
        lo, hi = (
            str(v).replace("'", "''") for v in (keys["customer_id"][0], keys["customer_id"][-1])
        )
        # Constant bounds on both keys let the Parquet reader skip row groups (the file is
        # sorted by customer; a whole base is scored at one moment).
        # (nba.feature_store.write_offline stores the moments as UTC TIMESTAMPTZ.)
        first, last = pc.min_max(keys["ts"]).values()
        source = f"""(SELECT * FROM read_parquet('{path}')
            WHERE customer_id BETWEEN '{lo}' AND '{hi}'
              AND event_timestamp BETWEEN '{first}+00'::TIMESTAMPTZ
                                      AND '{last}+00'::TIMESTAMPTZ)"""
        moment = "CAST(p.event_timestamp AS TIMESTAMP)"
    con.register("chunk_keys", keys)
    try:
        table = con.sql(f"""
            SELECT k.i, p.* EXCLUDE (customer_id, event_timestamp), p.customer_id AS found
            FROM chunk_keys k LEFT JOIN {source} p
              ON p.customer_id = k.customer_id AND {moment} = k.ts
            ORDER BY k.i""").to_arrow_table()
    finally:
        con.unregister("chunk_keys")
        if job.offline_profiles is None:
            con.unregister("chunk_profiles")
    if table.num_rows != len(chunk) or table.column("found").null_count:
        missing = chunk["contact_id"].to_numpy()[table.column("found").is_null().to_numpy(False)]
        raise ScoringError(
            f"no profile for {len(missing)} contact(s), e.g. {list(missing[:3])}: the offline "
            "store does not match the dataset; run `nba features build --data DIR` again"
        )
    return table.drop_columns(["i", "found"]).to_pandas()


def chunk_history(job: ScoringJob, keys: pa.Table) -> History:
    """The past decisions (last 365 days, strictly before each contact) as the contact
    policy counts them; ages exactly as ``nba.inputs.history_for`` computes them."""
    con = job.dataset.con
    lo, hi = (str(v).replace("'", "''") for v in (keys["customer_id"][0], keys["customer_id"][-1]))
    con.register("history_keys", keys)
    try:
        rows = con.sql(f"""
            SELECT k.i, d.action_id,
                   date_diff('microsecond', d.timestamp, k.ts) / 86400000000.0 AS age,
                   d.outcome = 'declined' AS declined,
                   d.outcome = 'accepted' AS accepted
            FROM history_keys k JOIN (SELECT * FROM decisions_by_customer
                                      WHERE customer_id BETWEEN '{lo}' AND '{hi}') d
              ON d.customer_id = k.customer_id AND d.timestamp < k.ts
             AND d.timestamp >= k.ts - INTERVAL {RECENCY_HORIZON_DAYS} DAY""").to_arrow_table()
    finally:
        con.unregister("history_keys")
    index = pd.Index(job.policy.catalog.ids)
    return History(
        rows.column("i").to_numpy(),
        index.get_indexer(rows.column("action_id").to_numpy(zero_copy_only=False)),
        rows.column("age").to_numpy(),
        rows.column("declined").to_numpy(zero_copy_only=False).astype(bool),
        rows.column("accepted").to_numpy(zero_copy_only=False).astype(bool),
    )


def chunk_contacts(chunk: pd.DataFrame, profiles: pd.DataFrame, history: History) -> Contacts:
    n = len(chunk)
    products = profiles["active_products"].tolist()
    return Contacts(
        contact_id=chunk["contact_id"].astype(str).tolist(),
        customer_id=chunk["customer_id"].astype(str).tolist(),
        channel=chunk["channel"].astype(str).tolist(),
        reason=[None if r is None or r != r else str(r) for r in chunk["reason"].tolist()],
        profile_x=profile_matrix({c: profiles[c].to_numpy() for c in NUMERIC_FEATURE_NAMES}, n),
        active_products=["" if p is None or p != p else str(p) for p in products],
        history=history,
    )


def chunk_inputs(job: ScoringJob, chunk: pd.DataFrame) -> Contacts:
    """One chunk's contacts with their profiles and history (DuckDB's work)."""
    keys = chunk_keys(chunk)
    return chunk_contacts(chunk, chunk_profiles(job, chunk, keys), chunk_history(job, keys))


def rank_chunk(job: ScoringJob, contacts: Contacts, top_k: int) -> pa.Table:
    """Recommendations of one chunk of contacts (the model's work)."""
    ranking, _ = job.policy.rank(contacts, top_k)
    return ranking_table(
        ranking, contacts.contact_id, contacts.customer_id, job.policy, job.ref.version
    )


# --- parts, resume, output ------------------------------------------------------------------


class Parts:
    """``OUT.parts/``: one Parquet file per finished chunk, plus the run's identity."""

    def __init__(self, out: Path, identity: dict[str, object], fresh: bool) -> None:
        self.dir = out.with_name(out.name + ".parts")
        self.note = ""
        manifest = self.dir / "run.json"
        if self.dir.exists():
            same = False
            if manifest.is_file() and not fresh:
                try:
                    same = json.loads(manifest.read_text(encoding="utf-8")) == identity
                except ValueError:
                    same = False
            if not same:
                if not fresh:
                    self.note = f"discarded unfinished parts of a different run in {self.dir}"
                shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(identity, indent=2), encoding="utf-8")

    def path(self, i: int) -> Path:
        return self.dir / f"part-{i:05d}.parquet"

    def done(self, i: int) -> bool:
        return self.path(i).is_file()

    def write(self, i: int, table: pa.Table) -> None:
        tmp = self.path(i).with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.replace(self.path(i))

    def tables(self, count: int) -> Iterator[pa.Table]:
        for i in range(count):
            yield pq.read_table(self.path(i), schema=RECOMMENDATIONS_SCHEMA)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]


def run_local(
    job: ScoringJob, parts: Parts, top_k: int, chunk_size: int, progress: Progress | None
) -> tuple[int, int]:
    """Score every unfinished chunk; returns (chunks, chunks found done)."""
    bounds = chunk_bounds(len(job.contacts), chunk_size)
    todo = [i for i in range(len(bounds)) if not parts.done(i)]
    done_rows = len(job.contacts) - sum(bounds[i][1] - bounds[i][0] for i in todo)

    def inputs(i: int) -> Contacts:
        a, b = bounds[i]
        return chunk_inputs(job, job.contacts.iloc[a:b])

    # The next chunk's inputs are read while this one is ranked: DuckDB and the compiled
    # model code release the GIL, so reading no longer waits for ranking, nor the reverse.
    # Only the reader thread touches the DuckDB connection.
    if progress and done_rows:
        progress(done_rows, len(job.contacts))  # chunks found done by an earlier run
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = reader.submit(inputs, todo[0]) if todo else None
        for n, i in enumerate(todo):
            assert ahead is not None
            contacts = ahead.result()
            ahead = reader.submit(inputs, todo[n + 1]) if n + 1 < len(todo) else None
            parts.write(i, rank_chunk(job, contacts, top_k))
            done_rows += bounds[i][1] - bounds[i][0]
            if progress:
                progress(done_rows, len(job.contacts))
    return len(bounds), len(bounds) - len(todo)


def join_parts(parts: Parts, count: int, out: Path) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """Write ``out`` from the parts (atomically); returns (rows, rank-1 counts per action,
    the first contacts' rows as examples)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    rows = 0
    counts: dict[tuple[str, str], int] = {}
    examples = None
    with pq.ParquetWriter(tmp, RECOMMENDATIONS_SCHEMA) as writer:
        for table in parts.tables(count):
            writer.write_table(table)
            rows += table.num_rows
            if examples is None and table.num_rows:
                first = table.column("contact_id").unique()[:3]
                examples = table.filter(pc.is_in(table.column("contact_id"), first)).to_pandas()
            top = table.filter(pc.equal(table.column("rank"), 1))
            grouped = top.group_by(["action_id", "family"]).aggregate([("rank", "count")])
            for a, f, c in zip(
                grouped.column("action_id").to_pylist(),
                grouped.column("family").to_pylist(),
                grouped.column("rank_count").to_pylist(),
                strict=True,
            ):
                counts[(a, f)] = counts.get((a, f), 0) + int(c)
    tmp.replace(out)
    mix = pd.DataFrame(
        [(a, f, c) for (a, f), c in counts.items()], columns=["action_id", "family", "contacts"]
    ).sort_values("contacts", ascending=False, kind="stable")
    return rows, mix.reset_index(drop=True), examples if examples is not None else pd.DataFrame()


def score(
    data_dir: Path,
    out: Path,
    contacts_file: Path | None = None,
    *,
    top_k: int = 3,
    alias: str = CHAMPION,
    settings: Settings | None = None,
    engine: Engine = "local",
    chunk_size: int = DEFAULT_CHUNK,
    fresh: bool = False,
    progress: Progress | None = None,
    spark_master: str | None = None,
    capacity: list[str] | None = None,
    budget: list[str] | None = None,
    audit_contact_policy: bool = False,
    track: bool = True,
) -> ScoreReport:
    """Score contacts and write the contract's ``recommendations`` Parquet to ``out``.

    With ``capacity`` (``action_id=N``) or ``budget`` (``family=AMOUNT``) limits, ``out``
    holds one allocated action per contact (:mod:`nba.allocation`) instead of the top-k.
    ``audit_contact_policy`` counts the first recommendations again against the company's
    contact policy from the files alone (:mod:`pipelines.policy_audit`). ``track`` logs
    the run to MLflow with what it recommends to whom (:mod:`pipelines.review.mix`).
    """
    s = settings or get_settings()
    if chunk_size < 1:
        raise ScoringError(f"chunk size must be at least 1, got {chunk_size}")
    started = time.perf_counter()
    job = open_job(
        data_dir, contacts_file, top_k=top_k, chunk_size=chunk_size, alias=alias, settings=s
    )
    try:
        catalog = job.policy.catalog
        limits = parse_limits(
            capacity or [], budget or [], set(catalog.ids), {a.family for a in catalog.actions}
        )
        identity = {**job.identity, "engine": engine}
        parts = Parts(out, identity, fresh)
        if engine == "spark":
            from pipelines.spark_score import run_spark

            chunks, resumed = run_spark(job, parts, top_k, chunk_size, spark_master, progress)
        else:
            chunks, resumed = run_local(job, parts, top_k, chunk_size, progress)
        n_contacts = len(job.contacts)
        source = job.profile_source
        ranked = out.with_name(out.name + ".ranked") if limits else out
        n_rows, mix, examples = join_parts(parts, chunks, ranked)
        parts.remove()
        allocation = None
        if limits:
            allocation, n_rows, mix = allocate_file(ranked, out, limits, job.policy)
            ranked.unlink()
        checked = audit(job.dataset, job.contacts, out, catalog) if audit_contact_policy else None
        run_id = ""
        if track:
            asked = {
                "data_dir": str(Path(data_dir).resolve()),
                "top_k": top_k,
                "contacts_file": str(contacts_file) if contacts_file else "the active base",
                "engine": engine,
                "limits": ", ".join([*(capacity or []), *(budget or [])]) or "none",
            }
            scope = Path(contacts_file).name if contacts_file else "the active base"
            run_id = log_score_run(job.dataset, job.contacts, out, catalog, job.ref.version,
                                   job.profile_source, alias, scope, asked)  # fmt: skip
    finally:
        job.close()
    names = {a.id: a.name for a in job.policy.catalog.actions}
    if len(examples):
        examples["name"] = examples["action_id"].map(names)
    n_with = int(mix["contacts"].sum()) if len(mix) else 0
    mix["share"] = mix["contacts"] / max(n_contacts, 1)  # of all contacts, like "(nothing)"
    return ScoreReport(
        n_contacts=n_contacts,
        n_rows=n_rows,
        n_without_action=n_contacts - n_with,
        model_version=job.ref.version,
        out=out,
        seconds=round(time.perf_counter() - started, 2),
        engine=engine,
        profile_source=source,
        chunks=chunks,
        resumed_chunks=resumed,
        mix=mix,
        examples=examples,
        allocation=allocation,
        policy_audit=checked,
        run_id=run_id,
        notes=[*job.dataset.notes, *([parts.note] if parts.note else [])],
        warnings=list(job.dataset.warnings),
    )


def allocate_file(
    ranked: Path, out: Path, limits: Limits, policy: Policy
) -> tuple[Allocation, int, pd.DataFrame]:
    """Allocate one action per contact from the ranked recommendations in ``ranked``;
    write the chosen rows (rank 1) to ``out``. Returns the allocation, rows, action mix."""
    table = pq.read_table(ranked)
    contact = pc.rank(table.column("contact_id"), sort_keys="ascending", tiebreaker="dense")
    actions = table.column("action_id").to_numpy(zero_copy_only=False)
    propensity = table.column("propensity").to_numpy()
    # Budgets count the real cost of each recommendation (an expression may make it
    # depend on the customer), expected: chance of a yes x cost if accepted.
    spend = propensity * table.column("cost").to_numpy()
    result = allocate(
        contact.to_numpy().astype(np.int64) - 1,
        actions,
        table.column("family").to_numpy(zero_copy_only=False),
        table.column("priority").to_numpy(),
        spend,
        limits,
    )
    rows = np.sort(result.chosen[result.chosen >= 0])
    chosen = table.take(pa.array(rows))
    chosen = chosen.set_column(
        chosen.schema.get_field_index("rank"), "rank", pa.array(np.ones(len(rows), dtype=np.int64))
    )
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(chosen, tmp)
    tmp.replace(out)
    mix = (
        chosen.select(["action_id", "family"])
        .to_pandas()
        .value_counts()
        .rename("contacts")
        .reset_index()
    )
    return result, len(rows), mix
