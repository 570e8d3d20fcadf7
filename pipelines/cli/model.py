"""Commands that train models: train, retrain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nba.exceptions import NBAError
from nba.policy.evaluation import LABELS, POLICIES
from pipelines.cli.app import app, console, err
from pipelines.train import TrainReport, train


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option(help="Dataset directory with a decisions table.")],
    seed: Annotated[int, typer.Option(help="Seed of the model fit.")] = 0,
) -> None:
    """Train the response model, evaluate the policy, log to MLflow, register nba-policy."""
    report = train_with_status(data, seed)
    print_training(report)


def train_with_status(data: Path, seed: int) -> TrainReport:
    with err.status("training") as status:
        return train(data, step=lambda s: status.update(s), seed=seed)


@app.command("retrain")
def retrain_cmd(
    data: Annotated[Path, typer.Option(help="The original dataset the champion learnt from.")],
    seed: Annotated[int, typer.Option(help="Seed of the model fit.")] = 0,
    split: Annotated[
        str,
        typer.Option(
            help="shuffled (learn from the newest feedback too) or time (fit on the oldest, "
            "test on the newest)."
        ),
    ] = "shuffled",
) -> None:
    """Train a challenger on the original data plus the outcomes reported to the API, and
    register it as nba-policy@challenger (@champion stays)."""
    from pipelines.retrain import retrain

    with err.status("retraining") as status:
        status.update("reading the decision log's feedback")
        if split not in ("time", "shuffled"):
            raise NBAError(f"--split must be 'time' or 'shuffled', not {split!r}")
        report = retrain(data, seed=seed, split="time" if split == "time" else "shuffled")
    console.print(
        f"learnt from {report.n_feedback:,} reported outcomes and {report.n_original:,} "
        f"original decisions (dataset {report.data_dir})"
    )
    print_training(report.train)
    console.print(f"nba-policy@challenger -> version {report.version}")


def print_training(r: TrainReport) -> None:
    m = r.metrics
    status = "and made @champion" if r.champion else "(no alias; use nba promote)"
    console.print(f"registered nba-policy version {r.version} {status}; MLflow run {r.run_id}")
    console.print(
        f"trained on {r.n_decisions:,} decisions ({r.window[0]} .. {r.window[1]}); "
        f"test period AUC {m['auc']:.3f}, calibration error {m['ece']:.3f}"
    )
    ranking = (
        f"ranks by what each action changes over {r.metrics.get('horizon_days', 180):.0f} days"
        if r.objective == "incremental"
        else "ranks by chance of a yes x value (acceptance)"
    )
    console.print(f"the policy {ranking}")
    if r.objective_note:
        console.print(f"[yellow]note:[/] {r.objective_note}")
    if r.truth is not None:
        t = Table(
            title="policy value on the held-out contacts (vs the simulator's oracle)",
            title_justify="left",
        )
        t.add_column("policy")
        t.add_column("value per contact", justify="right")
        t.add_column("normalised", justify="right")
        t.add_column("answered with nothing", justify="right")
        for name in POLICIES:
            share = r.truth.nothing_share.get(name)
            t.add_row(
                LABELS[name],
                f"{r.truth.values[name]:.2f}",
                f"{r.truth.normalised[name]:.3f}",
                "" if share is None else f"{share:.1%}",
            )
        console.print(t)
        console.print(
            f"{r.truth.n_contacts:,} held-out contacts; Monte Carlo error of the NBA's "
            f"normalised value +-{r.truth.mc_error:.3f}; retention spend per customer kept: "
            f"NBA {r.truth.gesture_spend_per_kept.get('nba', float('nan')):.0f}, oracle "
            f"{r.truth.gesture_spend_per_kept.get('oracle', float('nan')):.0f}"
        )
        fam = Table(title="normalised value by what the oracle would choose", title_justify="left")
        for col in ("oracle's choice", "contacts", "NBA", "acceptance-only", "product-first"):
            fam.add_column(col, justify="left" if col == "oracle's choice" else "right")
        for family, row in r.truth.by_family.iterrows():
            fam.add_row(
                str(family).replace("_", " "),
                f"{int(row['contacts']):,}",
                f"{row['nba']:.3f}",
                f"{row['acceptance_only']:.3f}",
                f"{row['product_first']:.3f}",
            )
        console.print(fam)
    else:
        console.print(
            f"logged-data value per contact (SNIPW): NBA "
            f"{m['logged_value_nba_snipw']:.2f} vs logging policy "
            f"{m['logged_value_logging_policy']:.2f}"
        )
