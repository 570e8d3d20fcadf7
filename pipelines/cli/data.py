"""Commands that bring data in: simulate a world, validate a dataset, build profiles."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from nba.simulate import SimulationConfig
from pipelines.cli.app import (
    app,
    console,
    fail,
    features_app,
    print_notes,
    progress_bar,
)
from pipelines.features import FeatureBuildReport, build_features
from pipelines.simulate import run_simulation
from pipelines.validate import ValidationReport, validate


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory to write the dataset to.")],
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 25_000,
    months: Annotated[int, typer.Option(min=2, help="Months of history.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 42,
    holdout_weeks: Annotated[
        int, typer.Option(help="Final weeks written as held-out contacts (no decisions).")
    ] = 4,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Write a synthetic customer world in the data contract's format."""
    if fmt not in ("parquet", "csv"):
        fail(f"--format must be 'parquet' or 'csv', got '{fmt}'")
    config = SimulationConfig(
        customers=customers, months=months, seed=seed, holdout_weeks=holdout_weeks
    )
    with progress_bar("simulating", "weeks") as progress:
        started = time.perf_counter()
        summary = run_simulation(config, out, fmt=_format(fmt), progress=progress)
    print_counts(f"Simulated world in {out} ({time.perf_counter() - started:.1f} s)", summary)


def _format(fmt: str) -> Literal["parquet", "csv"]:
    return "csv" if fmt == "csv" else "parquet"


@app.command("validate")
def validate_cmd(
    data: Annotated[Path, typer.Argument(help="Dataset directory (see the data contract).")],
) -> None:
    """Check a dataset directory against the data contract; exit 2 if it breaks it."""
    report = validate(data)
    print_validation(report)


@features_app.command("build")
def features_build(
    data: Annotated[Path, typer.Option(help="Dataset directory.")],
    register: Annotated[
        bool, typer.Option(help="Also run feast apply and load the online store.")
    ] = True,
    changed_only: Annotated[
        bool,
        typer.Option(
            "--changed-only/--all",
            help="Load only the customers whose profile changed since the last load (when "
            "there was one), or everyone.",
        ),
    ] = True,
) -> None:
    """Compute point-in-time profiles, write the offline store, apply and load online."""
    report = build_with_status(data, register, changed_only)
    print_features(report)


def build_with_status(data: Path, register: bool, changed_only: bool = True) -> FeatureBuildReport:
    with progress_bar("building features", "customers") as update:
        return build_features(
            data,
            step=lambda name: update(0, None, name),
            register=register,
            changed_only=changed_only,
            progress=lambda done, total: update(done, total),
        )


def print_counts(title: str, counts: dict[str, int | float]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in counts.items():
        table.add_row(k.replace("_", " "), f"{v:,.2f}" if isinstance(v, float) else f"{v:,}")
    console.print(table)


def print_validation(report: ValidationReport) -> None:
    table = Table(title=f"{report.data_dir}: valid", title_justify="left")
    table.add_column("table")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, (file, rows) in report.tables.items():
        table.add_row(name, file, f"{rows:,}")
    console.print(table)
    console.print(f"catalog: {report.catalog_source} ({report.n_actions} actions)")
    print_notes(report.notes, report.warnings)


def print_features(r: FeatureBuildReport) -> None:
    table = Table(title="customer profiles", title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("customers", f"{r.n_customers:,}")
    table.add_row("profile rows (customer x as-of time)", f"{r.n_profile_rows:,}")
    table.add_row("features per profile", str(r.n_features))
    table.add_row("online profiles as of", r.as_of_latest.isoformat())
    table.add_row("offline store", str(r.offline_path))
    table.add_row("online store", r.online_store)
    if r.online_load is not None:
        load = r.online_load
        written = f"{load.written:,} customers"
        if load.changed_only:
            written += f" (changed; {load.unchanged:,} unchanged kept)"
        elif load.why_full:
            written += f" (all: {load.why_full})"
        table.add_row("online store load", written)
    for step, secs in r.seconds.items():
        table.add_row(f"time: {step.replace('_', ' ')}", f"{secs:.1f} s")
    console.print(table)
    print_notes(r.notes, r.warnings)
