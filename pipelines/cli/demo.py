"""``nba demo``: the main job end to end on the embedded default."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from nba.config import get_settings
from nba.simulate import SimulationConfig
from pipelines.cli.app import app, console, progress_bar
from pipelines.cli.data import (
    build_with_status,
    print_counts,
    print_features,
    print_validation,
)
from pipelines.cli.model import print_training, train_with_status
from pipelines.cli.scoring import print_examples, print_score
from pipelines.score import score
from pipelines.simulate import run_simulation
from pipelines.validate import validate


@app.command()
def demo(
    out: Annotated[
        Path | None,
        typer.Option(help="Where the demo dataset goes [default: NBA_HOME/demo-data]."),
    ] = None,
    customers: Annotated[int, typer.Option(min=1)] = 25_000,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """The main job end to end on the embedded default: simulate, validate, build
    features, train and register the policy, score the held-out contacts."""
    settings = get_settings()
    out = out or settings.home_dir / "demo-data"
    console.rule("[bold]NBA engine demo")
    console.print(f"workspace (NBA_HOME): {settings.home_dir}")
    started = time.perf_counter()
    console.print(f"\n[bold]1. simulate[/] {customers} customers x 12 months, seed {seed}")
    with progress_bar("simulating", "weeks") as progress:
        summary = run_simulation(
            SimulationConfig(customers=customers, seed=seed), out, progress=progress
        )
    print_counts(f"dataset written to {out}", summary)
    console.print("\n[bold]2. validate[/] against the data contract")
    print_validation(validate(out))
    console.print("\n[bold]3. features[/] point-in-time profiles into Feast")
    print_features(build_with_status(out, register=True))
    console.print("\n[bold]4. train[/] response model, evaluation, MLflow registry")
    print_training(train_with_status(out, seed))
    console.print("\n[bold]5. score[/] the held-out contacts with nba-policy@champion")
    with progress_bar("scoring", "contacts") as progress:
        report = score(
            out,
            settings.home_dir / "recommendations.parquet",
            out / "contacts.parquet",
            progress=progress,
            audit_contact_policy=True,
        )
    print_score(report)
    print_examples(report, 3)
    console.print("\n[bold]6. batch score[/] the whole active base (nba score)")
    with progress_bar("scoring the base", "contacts") as progress:
        base = score(
            out,
            settings.home_dir / "base-recommendations.parquet",
            progress=progress,
            audit_contact_policy=True,
        )
    print_score(base)
    console.rule(f"demo finished in {time.perf_counter() - started:.0f} s")
    console.print(
        "next: try it as an agent would (see README, 'The agent desk'):\n"
        "  .venv/bin/nba keys create --scopes recommend,outcomes   # copy the key it prints\n"
        "  .venv/bin/nba serve --port 8000\n"
        "  then open http://127.0.0.1:8000/desk/ in a browser and paste the key\n"
        "  (the API's reference: http://127.0.0.1:8000/docs)\n"
        "review it as marketing would: .venv/bin/nba ui  (walk-through: docs/mlflow_review.md)"
    )
