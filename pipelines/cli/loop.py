"""Commands of the closed loop: the simulated loop and the impact report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from nba.config import get_settings
from pipelines.cli.app import app, console, err
from pipelines.impact import ImpactReport, format_lift, format_relative, format_value
from pipelines.review.words import family_label

if TYPE_CHECKING:
    from pipelines.loop import LoopReport


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
    challenger_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Share of customers served by the challenger being judged."
        ),
    ] = 0.2,
    scenario: Annotated[
        str,
        typer.Option(
            help="none: the world stays as simulated; launch: a new action joins the catalog "
            "at round 1 with no history; drift: from --drift-round one family's offers stop "
            "working on one channel."
        ),
    ] = "none",
    new_action: Annotated[
        str, typer.Option(help="The action launched at round 1 (--scenario launch).")
    ] = "offer_tv_stream",
    drift_round: Annotated[
        int, typer.Option(min=1, help="First round of the drift (--scenario drift).")
    ] = 2,
    min_gain: Annotated[
        float, typer.Option(help="The gate's least gain per decision to promote.")
    ] = 0.0,
    max_looks: Annotated[
        int, typer.Option(min=1, help="Rounds a challenger may collect before it is retired.")
    ] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the world and the loop.")] = 42,
) -> None:
    """The closed loop in simulation: serve -> outcomes -> retrain -> evaluate -> promote,
    with the champion's true value per round (use a fresh NBA_HOME: it registers models
    and writes the decision log)."""
    from pipelines.evaluate import Gate
    from pipelines.loop import simulate_loop
    from pipelines.scenarios import Scenario

    target = out or get_settings().home_dir / "loop-data"
    world = Scenario(scenario, new_action=new_action, drift_round=drift_round)
    gate = Gate(min_gain=min_gain, max_looks=max_looks)
    with err.status("simulating the loop") as status:
        report = simulate_loop(
            rounds,
            target,
            customers=customers,
            months=months,
            weeks_per_round=weeks_per_round,
            epsilon=epsilon,
            control_share=control_share,
            challenger_share=challenger_share,
            gate=gate,
            scenario=world,
            seed=seed,
            step=lambda m: status.update(m),
        )
    print_loop(report)
    console.print(f"MLflow run {report.run_id} (simulate-loop); world in {report.data_dir}")
    if report.impact is not None:
        print_impact(report.impact)


VERDICTS = {"promote": "promoted", "retire": "retired", "continue": "collecting"}


def print_loop(report: LoopReport) -> None:
    title = "the learning loop (true values from the simulator)"
    if report.scenario != "none":
        title += f", scenario: {report.scenario}"
    table = Table(title=title, title_justify="left")
    launch = report.scenario == "launch"
    columns = ["round", "champion", "champion's true value", "value/contact", "logged",
               "judged", "look", "DR gain [bounds]", "arms' gain [bounds]", "verdict",
               "new challenger (true value)", "DR error on champion"]  # fmt: skip
    if launch:
        columns.insert(3, "new action where oracle picks it")
    for col in columns:
        table.add_column(col, justify="right")

    def bounds(mean: float | None, low: float | None, high: float | None) -> str:
        if mean is None or low is None or high is None:
            return ""
        return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"

    for r in report.rounds:
        row = [
            str(r.round),
            f"v{r.champion}",
            f"{r.normalised_value:.3f}",
            f"{r.value_per_contact:.2f}",
            f"{r.logged:,}",
            f"v{r.judged}" if r.judged else "",
            str(r.looks) if r.looks else "",
            bounds(r.gain_dr, r.gain_dr_low, r.gain_dr_high),
            bounds(r.gain_arms, r.gain_arms_low, r.gain_arms_high),
            VERDICTS.get(r.verdict or "", ""),
            f"v{r.challenger} ({r.challenger_normalised_value:.3f})"
            if r.challenger_normalised_value is not None and r.challenger
            else "",
            "" if r.dr_relative_error is None else f"{r.dr_relative_error:.1%}",
        ]
        if launch:
            agree = r.new_action_agreement
            row.insert(3, "" if agree is None else f"{agree:.0%}")
        table.add_row(*row)
    console.print(table)
    promoted = [r for r in report.rounds if r.verdict == "promote"]
    if promoted:
        first = promoted[0]
        console.print(
            f"first promotion: round {first.round} (v{first.champion}, after {first.looks} "
            f"look{'s' if first.looks != 1 else ''}); champion's true value "
            f"{report.rounds[0].normalised_value:.3f} at round 0, "
            f"{report.rounds[-1].normalised_value:.3f} at round {report.rounds[-1].round}"
        )
    else:
        console.print("no challenger was promoted")
    if report.drift_round is not None and report.value_at_drift is not None:
        before, last = report.rounds[report.drift_round - 1], report.rounds[-1]
        console.print(
            f"drift from round {report.drift_round}: the champion's true value fell from "
            f"{before.normalised_value:.3f} to {report.value_at_drift:.3f}; "
            f"{last.normalised_value:.3f} at round {last.round}"
        )
    if launch and report.new_action:
        first, last = report.rounds[0], report.rounds[-1]
        console.print(
            f"new action {report.new_action}, where the oracle would choose it, chosen by the "
            f"champion: {first.new_action_agreement or 0:.0%} at round 0, "
            f"{last.new_action_agreement or 0:.0%} at round {last.round}"
        )


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
    decision log (95% intervals); written as Markdown/HTML with a chart and
    logged to MLflow."""
    from pipelines.impact import impact_report

    report = impact_report(since=since, out=out)
    print_impact(report)


def print_impact(report: ImpactReport) -> None:
    table = Table(title="impact: NBA against the control group", title_justify="left")
    for col in (
        "NBA's choice",
        "NBA",
        "control",
        "value NBA",
        "value control",
        "lift [95%]",
        "relative [95%]",
    ):
        table.add_column(col, justify="left" if col == "NBA's choice" else "right")  # fmt: skip
    for _, r in report.table.iterrows():
        table.add_row(
            "all" if r["segment"] == "overall" else family_label(str(r["segment"])),
            f"{r['n_nba']:,}", f"{r['n_control']:,}",
            format_value(r["value_nba"]), format_value(r["value_control"]),
            format_lift(r), format_relative(r),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"{report.n_decisions:,} decisions with an outcome ({report.n_unreported:,} without); "
        f"report: {report.files[1]} (MLflow run {report.run_id})"
    )
