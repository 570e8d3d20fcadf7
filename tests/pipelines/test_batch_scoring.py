"""`nba score` on a trained model: resume after an interruption, Spark against the local
runner, allocation under limits, and the command's errors.

One simulated world and one registered model serve the module (training takes a while);
each test scores into its own folder.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from nba.catalog import load_catalog
from nba.simulate import SimulationConfig
from pipelines.cli import app
from pipelines.score import score

pytestmark = pytest.mark.slow
CONFIG = SimulationConfig(customers=1500, months=6, seed=5, holdout_weeks=3, history_months=3)


def sorted_recs(path: Path) -> pd.DataFrame:
    recs = pd.read_parquet(path)
    return recs.sort_values(["contact_id", "rank"], kind="stable").reset_index(drop=True)


class Interrupt(Exception):
    pass


def test_an_interrupted_run_resumes_without_duplicates_or_lost_contacts(
    world: Path, home: Path, tmp_path: Path
) -> None:
    contacts = world / "contacts.parquet"
    reference = score(world, tmp_path / "ref.parquet", contacts, chunk_size=40)
    assert reference.chunks >= 5

    calls = []

    def stop_after_two_chunks(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise Interrupt  # like Ctrl-C between chunks

    out = tmp_path / "recs.parquet"
    with pytest.raises(Interrupt):
        score(world, out, contacts, chunk_size=40, progress=stop_after_two_chunks)
    parts = out.with_name("recs.parquet.parts")
    assert not out.exists()
    assert len(list(parts.glob("part-*.parquet"))) == 2
    # A kill during a write leaves a half-written temporary file behind.
    (parts / "part-00002.tmp").write_bytes(b"PAR1 half a file")

    resumed = score(world, out, contacts, chunk_size=40)
    assert resumed.resumed_chunks == 2
    assert resumed.chunks == reference.chunks
    assert not parts.exists()
    got, want = sorted_recs(out), sorted_recs(tmp_path / "ref.parquet")
    assert not got.duplicated(["contact_id", "rank"]).any()
    assert set(got["contact_id"]) == set(want["contact_id"])
    assert resumed.n_contacts == reference.n_contacts == len(pd.read_parquet(contacts))
    pd.testing.assert_frame_equal(got, want)


def test_parts_of_a_run_with_other_options_are_not_reused(
    world: Path, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "recs.parquet"

    def stop(done: int, total: int) -> None:
        raise Interrupt

    with pytest.raises(Interrupt):
        score(world, out, world / "contacts.parquet", chunk_size=40, progress=stop)
    report = score(world, out, world / "contacts.parquet", chunk_size=40, top_k=1)
    assert report.resumed_chunks == 0
    assert any("discarded unfinished parts" in n for n in report.notes)
    assert (pd.read_parquet(out)["rank"] == 1).all()


def test_spark_local_mode_writes_the_same_table_as_the_local_runner(
    world: Path, home: Path, tmp_path: Path
) -> None:
    contacts = world / "contacts.parquet"
    local = score(world, tmp_path / "local.parquet", contacts, chunk_size=300)
    spark = score(world, tmp_path / "spark.parquet", contacts, chunk_size=300, engine="spark")
    assert spark.engine == "spark" and spark.chunks == local.chunks > 1
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "spark.parquet"),
        pd.read_parquet(tmp_path / "local.parquet"),
        check_exact=True,
    )


def test_allocation_respects_the_limits_and_is_not_below_greedy(
    world: Path, home: Path, tmp_path: Path
) -> None:
    unlimited = score(world, tmp_path / "top.parquet", top_k=1)
    top = unlimited.mix.set_index("action_id")["contacts"]
    busiest = str(top.index[0])
    cap = int(top.iloc[0]) // 3
    out = tmp_path / "alloc.parquet"
    report = score(world, out, capacity=[f"{busiest}={cap}"], budget=["retention_gesture=50"])
    allocation = report.allocation
    assert allocation is not None
    recs = pd.read_parquet(out)
    assert not recs["contact_id"].duplicated().any() and (recs["rank"] == 1).all()
    assert (recs["action_id"] == busiest).sum() <= cap
    # The budget counts each recommendation's real cost (an expression of the fees for
    # the discounts), as the table reports it.
    upgrade = recs[recs["action_id"] == "retention_free_upgrade"]
    assert (upgrade["cost"] == load_catalog().by_id("retention_free_upgrade").cost).all()
    retention = recs[recs["family"] == "retention_gesture"]
    spent = (retention["propensity"] * retention["cost"]).sum()
    assert spent <= 50 * (1 + 1e-9)
    assert allocation.usage[f"capacity {busiest}"][0] <= cap
    assert allocation.value == pytest.approx(recs["priority"].sum())
    assert allocation.greedy_value <= allocation.value <= allocation.lp_bound
    assert allocation.value < allocation.top1_value  # the limits bind
    assert report.n_contacts == unlimited.n_contacts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--capacity", "no_such_action=5"], "unknown action 'no_such_action'"),
        (["--capacity", "installment_plan_6m=lots"], "'lots' is not a whole number"),
        (["--budget", "retention_gesture"], "expected NAME=NUMBER"),
        (["--chunk-size", "0"], "--chunk-size"),
        (["--engine", "dask"], "--engine must be 'local' or 'spark'"),
    ],
)
def test_bad_options_fail_with_a_clear_message(
    world: Path, home: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(app, ["score", "--data", str(world), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("rows", "message", "where"),
    [
        (
            ["k1,{c},2025-06-01T10:00:00Z,phone,", "k2,NOBODY,2025-06-01T10:00:00Z,chat,"],
            "customer_id not found in customers",
            "line 3",
        ),
        (
            ["k1,{c},2025-06-01T10:00:00Z,phone,", "k1,{c},2025-06-02T10:00:00Z,phone,"],
            "duplicate key",
            "lines 2, 3",
        ),
        (
            ["k1,{c},2025-06-01T10:00:00Z,phone,", "k2,,2025-06-01T10:00:00Z,phone,"],
            "column 'customer_id'",
            "line 3",
        ),
    ],
)
def test_a_contacts_file_with_bad_rows_is_rejected_naming_the_rows(
    world: Path, home: Path, tmp_path: Path, rows: list[str], message: str, where: str
) -> None:
    customer = pd.read_parquet(world / "customers.parquet")["customer_id"].iloc[0]
    bad = tmp_path / "planned.csv"
    lines = ["contact_id,customer_id,timestamp,channel,reason", *rows]
    bad.write_text("\n".join(line.format(c=customer) for line in lines) + "\n")
    out = tmp_path / "r.parquet"
    result = CliRunner().invoke(
        app, ["score", "--data", str(world), "--contacts", str(bad), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "planned.csv" in result.stderr and message in result.stderr
    assert where in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_an_empty_contacts_file_gives_an_empty_table(
    world: Path, home: Path, tmp_path: Path, engine: str
) -> None:
    planned = tmp_path / "planned.csv"
    planned.write_text("contact_id,customer_id,timestamp,channel,reason\n")
    out = tmp_path / "r.parquet"
    report = score(world, out, planned, engine="local" if engine == "local" else "spark")
    assert (report.n_contacts, report.n_rows, report.chunks) == (0, 0, 0)
    recs = pd.read_parquet(out)
    assert recs.empty and "reasons" in recs.columns
    # Its MLflow run says so, rather than failing on an empty chart.
    import mlflow

    run = mlflow.get_run(report.run_id)
    assert (
        run.data.tags["verdict_in_words"] == "Nothing was scored: planned.csv holds no contacts."
    )


def test_batch_scoring_keeps_the_company_contact_policy(
    world: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No first recommendation breaks a family limit, the limit across all actions or the
    pause after an accepted action, counted again from the files; the same model without
    the company policy would break them."""
    import pipelines.score as scoring
    from nba.contact_policy import CompanyPolicy
    from nba.contract import load_dataset
    from pipelines.policy_audit import audit

    contacts = world / "contacts.parquet"
    kept = score(world, tmp_path / "kept.parquet", contacts, audit_contact_policy=True)
    assert kept.policy_audit is not None
    assert kept.policy_audit.checked == kept.n_contacts - kept.n_without_action
    assert kept.policy_audit.after_history > 0
    assert kept.policy_audit.breaches == 0

    opened = scoring._open_model
    catalog = load_catalog()

    def without_company_policy(*args: object, **kwargs: object) -> object:
        ref, path, policy = opened(*args, **kwargs)  # type: ignore[arg-type]
        policy.catalog = replace(policy.catalog, company_policy=CompanyPolicy(decline_rest_days=0))
        return ref, path, policy

    monkeypatch.setattr(scoring, "_open_model", without_company_policy)
    free = score(world, tmp_path / "free.parquet", contacts)
    dataset = load_dataset(world)
    try:
        found = audit(dataset, pd.read_parquet(contacts), tmp_path / "free.parquet", catalog)
    finally:
        dataset.close()
    assert found.breaches > 0
    assert free.n_contacts == kept.n_contacts
