"""The ``nba`` command line: thin typer commands over the pipeline stages.

Every command exits 0 on success and 2 on bad input (with a message naming the file,
column and rule), so scripts can tell "your data is wrong" from a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from nba.config import get_settings
from nba.exceptions import NBAError
from nba.simulate import SimulationConfig
from pipelines.features import FeatureBuildReport, build_features
from pipelines.simulate import run_simulation
from pipelines.validate import ValidationReport, validate

app = typer.Typer(
    name="nba",
    help="Next-Best-Action engine: simulate data, validate it, build customer profiles.",
    no_args_is_help=True,
    add_completion=False,
)
features_app = typer.Typer(
    help="Customer profiles in the Feast feature store.", no_args_is_help=True
)
app.add_typer(features_app, name="features")

console = Console()
err = Console(stderr=True)


def _fail(exc: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except NBAError as exc:
        _fail(exc)


@contextmanager
def _week_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} weeks"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


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
        _fail(ValueError(f"--format must be 'parquet' or 'csv', got '{fmt}'"))
    config = SimulationConfig(
        customers=customers, months=months, seed=seed, holdout_weeks=holdout_weeks
    )
    with _errors(), _week_progress("simulating") as progress:
        started = time.perf_counter()
        summary = run_simulation(config, out, fmt=_format(fmt), progress=progress)
    _print_counts(f"Simulated world in {out} ({time.perf_counter() - started:.1f} s)", summary)


def _format(fmt: str) -> Literal["parquet", "csv"]:
    return "csv" if fmt == "csv" else "parquet"


@app.command("validate")
def validate_cmd(
    data: Annotated[Path, typer.Argument(help="Dataset directory (see the data contract).")],
) -> None:
    """Check a dataset directory against the data contract; exit 2 if it breaks it."""
    with _errors():
        report = validate(data)
    _print_validation(report)


@features_app.command("build")
def features_build(
    data: Annotated[Path, typer.Option(help="Dataset directory.")],
    register: Annotated[
        bool, typer.Option(help="Also run feast apply and load the online store.")
    ] = True,
) -> None:
    """Compute point-in-time profiles, write the offline store, apply and load online."""
    with _errors():
        report = _build_with_status(data, register)
    _print_features(report)


def _build_with_status(data: Path, register: bool) -> FeatureBuildReport:
    with err.status("building features") as status:
        return build_features(data, step=lambda s: status.update(s), register=register)


@app.command()
def demo(
    out: Annotated[
        Path | None,
        typer.Option(help="Where the demo dataset goes [default: NBA_HOME/demo-data]."),
    ] = None,
    customers: Annotated[int, typer.Option(min=1)] = 25_000,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """The main job end to end on the embedded default: simulate, validate, build features."""
    settings = get_settings()
    out = out or settings.home_dir / "demo-data"
    console.rule("[bold]NBA engine demo")
    console.print(f"workspace (NBA_HOME): {settings.home_dir}")
    started = time.perf_counter()
    with _errors():
        console.print(f"\n[bold]1. simulate[/] {customers} customers x 12 months, seed {seed}")
        with _week_progress("simulating") as progress:
            summary = run_simulation(
                SimulationConfig(customers=customers, seed=seed), out, progress=progress
            )
        _print_counts(f"dataset written to {out}", summary)
        console.print("\n[bold]2. validate[/] against the data contract")
        _print_validation(validate(out))
        console.print("\n[bold]3. features[/] point-in-time profiles into Feast")
        _print_features(_build_with_status(out, register=True))
    console.rule(f"demo finished in {time.perf_counter() - started:.0f} s")


def _print_counts(title: str, counts: dict[str, int | float]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in counts.items():
        table.add_row(k.replace("_", " "), f"{v:,}")
    console.print(table)


def _print_validation(report: ValidationReport) -> None:
    table = Table(title=f"{report.data_dir}: valid", title_justify="left")
    table.add_column("table")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, (file, rows) in report.tables.items():
        table.add_row(name, file, f"{rows:,}")
    console.print(table)
    console.print(f"catalog: {report.catalog_source} ({report.n_actions} actions)")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")


def _print_features(r: FeatureBuildReport) -> None:
    table = Table(title="customer profiles", title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("customers", f"{r.n_customers:,}")
    table.add_row("profile rows (customer x as-of time)", f"{r.n_profile_rows:,}")
    table.add_row("features per profile", str(r.n_features))
    table.add_row("online profiles as of", r.as_of_latest.isoformat())
    table.add_row("offline store", str(r.offline_path))
    table.add_row("online store", r.online_store)
    for step, secs in r.seconds.items():
        table.add_row(f"time: {step.replace('_', ' ')}", f"{secs:.1f} s")
    console.print(table)


if __name__ == "__main__":
    app()
