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
    new_yardstick: Annotated[
        bool,
        typer.Option(
            help="Freeze a new fixed yardstick from this run's test part (the next version, "
            "e.g. y2) instead of measuring on the workspace's current one."
        ),
    ] = False,
) -> None:
    """Train the response model, evaluate the policy, log to MLflow, register nba-policy.

    Every version is also measured on the workspace's fixed yardstick (frozen by the first
    training, left out of every later one): compare versions on its numbers."""
    report = train_with_status(data, seed, new_yardstick)
    print_training(report)


def train_with_status(data: Path, seed: int, new_yardstick: bool = False) -> TrainReport:
    with err.status("training") as status:
        return train(data, step=lambda s: status.update(s), seed=seed, new_yardstick=new_yardstick)


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
    cut = r.split
    parts = (
        f": {cut.a:,} fit the model, {cut.b - cut.a:,} stop it early, {cut.c - cut.b:,} "
        f"calibrate, {cut.n_test:,} test ({'the newest' if cut.order == 'time' else 'at random'})"
        if cut
        else ""
    )
    console.print(
        f"{r.n_decisions:,} logged decisions ({r.window[0][:10]} .. {r.window[1][:10]}){parts}; "
        f"test AUC {m['auc']:.3f}, calibration error {m['ece']:.3f}"
    )
    if r.yardstick:
        measured = f"measured on the {r.yardstick}"
        if "yardstick_value_nba" in m:
            measured += (
                f": {m['yardstick_value_nba']:.2f} per contact (what was done "
                f"{m['yardstick_value_logging_policy']:.2f})"
            )
        if "yardstick_normalised_value_nba" in m:
            measured += f", {m['yardstick_normalised_value_nba']:.3f} of the oracle"
        console.print(measured)
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
        console.print(
            f"every policy chooses within the contact policy, which held back an action at "
            f"{r.truth.held_back_share:.1%} of the contacts; it costs the oracle "
            f"{r.truth.contact_policy_cost:.2f} per contact"
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
    print_baselines(r)


LOGGED_BASELINES = {
    "logged_value_logging_policy": "what was done (the logging policy)",
    "logged_value_product_first_snipw": "always a product offer when possible",
    "logged_value_propensity_only_snipw": "the most likely to be accepted",
    "logged_value_acceptance_only_snipw": "chance of a yes x value",
    "logged_value_nothing_snipw": "always nothing",
}


def print_baselines(r: TrainReport) -> None:
    """The NBA beside every baseline on the test period's log, and a plain warning when a
    baseline does better, naming the actions that fell back to a prior."""
    m = r.metrics
    nba = m["logged_value_nba_snipw"]
    t = Table(
        title="value per contact on the test period, estimated from the log",
        title_justify="left",
    )
    t.add_column("policy")
    t.add_column("value per contact", justify="right")
    t.add_row("the NBA", f"{nba:.2f}")
    beaten = []
    for key, label in LOGGED_BASELINES.items():
        if key in m:
            t.add_row(label, f"{m[key]:.2f}")
            if m[key] > nba:
                beaten.append(f"{label} ({m[key]:.2f})")
    console.print(t)
    by_log = bool(beaten)
    if r.truth is not None:
        truth_nba = r.truth.normalised["nba"]
        beaten += [
            f"{LABELS[name]} ({value:.3f} of the oracle against the simulator's truth)"
            for name, value in r.truth.normalised.items()
            if name not in ("nba", "oracle", "true_acceptance") and value > truth_nba
        ]
    if beaten:
        console.print(
            f"[bold yellow]warning:[/] on the test period the NBA ({nba:.2f}) does worse than "
            + ", ".join(beaten)
            + ": check the data and the catalog's values before using this model",
            highlight=False,
        )
        if r.objective == "incremental" and by_log:
            console.print(
                "  (the test period holds the newest decisions, whose outcomes over the "
                "horizon are mostly not known yet, so the estimate from the log favours "
                "short-term value; this model ranks by what each action changes over the "
                "horizon)",
                highlight=False,
            )
    if r.small:
        plural = [f.replace("_", " ") + "s" for f in r.small]
        names = " and ".join([", ".join(plural[:-1]), plural[-1]] if len(plural) > 1 else plural)
        console.print(
            f"note: {names} had too few decisions for a tree model (or some of their "
            "actions did); a simpler model learns from all of the family's decisions, each "
            "action's own rate drawn toward the family's until its evidence grows",
            highlight=False,
        )
    if r.priors:
        console.print(
            "[yellow]note:[/] these actions use a prior acceptance rate, not a learnt model:",
            highlight=False,
        )
        for line in r.priors:
            console.print(f"  - {line}", highlight=False)
