"""Commands of the closed loop: the simulated loop and the impact report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nba.config import get_settings
from pipelines.cli.app import app, console, err
from pipelines.impact import ImpactReport, format_lift, format_relative, format_value


@app.command("simulate-loop")
def simulate_loop_cmd(
    rounds: Annotated[int, typer.Option(min=1, help="Loop rounds after round 0.")] = 3,
    out: Annotated[
        Path | None,
        typer.Option(help="Where the simulated world goes [default: NBA_HOME/loop-data]."),
    ] = None,
    customers: Annotated[int, typer.Option(min=100, help="Simulated customers.")] = 25_000,
    months: Annotated[
        int, typer.Option(min=2, help="Months of random-policy history round 0 learns from.")
    ] = 12,
    weeks_per_round: Annotated[
        int, typer.Option(min=1, help="Held-out weeks of contacts served per round.")
    ] = 4,
    epsilon: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Exploration while serving.")
    ] = 0.3,
    control_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of customers in the control group.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the world and the loop.")] = 42,
) -> None:
    """The closed loop in simulation: serve -> outcomes -> retrain -> evaluate -> promote,
    with the champion's true value per round (use a fresh NBA_HOME: it registers models
    and writes the decision log)."""
    from pipelines.loop import simulate_loop

    target = out or get_settings().home_dir / "loop-data"
    with err.status("simulating the loop") as status:
        report = simulate_loop(
            rounds,
            target,
            customers=customers,
            months=months,
            weeks_per_round=weeks_per_round,
            epsilon=epsilon,
            control_share=control_share,
            seed=seed,
            step=lambda m: status.update(m),
        )
    table = Table(title="the learning loop (true values from the simulator)", title_justify="left")
    for col in (
        "round",
        "champion",
        "challenger",
        "promoted",
        "normalised value",
        "challenger's value",
        "value/contact",
        "logged",
        "DR gain [low]",
        "DR error on champion",
    ):
        table.add_column(col, justify="right")  # fmt: skip
    for r in report.rounds:
        table.add_row(
            str(r.round),
            r.champion,
            r.challenger or "",
            "" if r.promoted is None else ("yes" if r.promoted else "no"),
            f"{r.normalised_value:.3f}",
            ""
            if r.challenger_normalised_value is None
            else f"{r.challenger_normalised_value:.3f}",
            f"{r.value_per_contact:.2f}",
            f"{r.logged:,}",
            "" if r.gain_dr is None else f"{r.gain_dr:+.2f} [{r.gain_dr_low:+.2f}]",
            "" if r.dr_relative_error is None else f"{r.dr_relative_error:.1%}",
        )
    console.print(table)
    console.print(f"MLflow run {report.run_id} (simulate-loop); world in {report.data_dir}")
    if report.impact is not None:
        print_impact(report.impact)


@app.command("impact")
def impact_cmd(
    since: Annotated[
        datetime | None, typer.Option(help="Only decisions after this moment (UTC).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for impact.md, impact.html and lift.png.")
    ] = None,
) -> None:
    """Lift of the NBA over the control group, per action family and overall, from the
    decision log (95% intervals, delta method); written as Markdown/HTML with a chart and
    logged to MLflow."""
    from pipelines.impact import impact_report

    report = impact_report(since=since, out=out)
    print_impact(report)


def print_impact(report: ImpactReport) -> None:
    table = Table(title="impact: NBA against the control group", title_justify="left")
    for col in (
        "segment",
        "NBA",
        "control",
        "value NBA",
        "value control",
        "lift [95%]",
        "relative [95%]",
    ):
        table.add_column(col, justify="left" if col == "segment" else "right")  # fmt: skip
    for _, r in report.table.iterrows():
        table.add_row(
            str(r["segment"]), f"{r['n_nba']:,}", f"{r['n_control']:,}",
            format_value(r["value_nba"]), format_value(r["value_control"]),
            format_lift(r), format_relative(r),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"{report.n_decisions:,} decisions with an outcome ({report.n_unreported:,} without); "
        f"report: {report.files[1]} (MLflow run {report.run_id})"
    )
