"""Commands that judge models on logged data: evaluate, promote."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.app import app, console, err, fail
from pipelines.evaluate import DEFAULT_SHARE, Comparison

ShareOption = Annotated[
    float, typer.Option(help="Newest share of the logged decisions to evaluate on.")
]


SinceOption = Annotated[
    datetime | None,
    typer.Option(help="Evaluate on decisions after this moment (UTC) instead of --share."),
]


@app.command()
def promote(
    version: Annotated[
        str | None, typer.Option(help="Registered version of nba-policy to point the alias at.")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias to point at it.")] = "champion",
    if_better: Annotated[
        bool,
        typer.Option(
            "--if-better",
            help="Move @champion to @challenger only if the sequential gate says the "
            "challenger is better by more than --min-gain (needs --data).",
        ),
    ] = False,
    data: Annotated[Path | None, typer.Option(help="Dataset with the logged decisions.")] = None,
    evidence: Annotated[
        str,
        typer.Option(
            help="What decides: arms (the challenger's own traffic against the champion's), "
            "dr (all logged decisions) or auto (arms where the log has challenger traffic, "
            "else dr)."
        ),
    ] = "auto",
    min_gain: Annotated[float, typer.Option(help="Least gain per decision to promote.")] = 0.0,
    level: Annotated[
        float,
        typer.Option(
            min=0.5,
            max=0.999,
            help="Confidence of the gate: 1 minus the chance of ever promoting a "
            "challenger that is not better, over all looks.",
        ),
    ] = 0.95,
    max_looks: Annotated[
        int,
        typer.Option(
            min=1, help="Retire a challenger the gate has looked at this often without deciding."
        ),
    ] = 8,
    planned_decisions: Annotated[
        int,
        typer.Option(
            min=100,
            help="Decisions a challenger is expected to collect: the gate's bounds are "
            "tightest there (and valid at any number). Set it before the first look.",
        ),
    ] = 10_000,
    share: ShareOption = DEFAULT_SHARE,
    since: SinceOption = None,
) -> None:
    """Point an alias (default @champion) at a version, or promote @challenger
    --if-better."""
    from nba.tracking import MODEL_NAME, set_alias

    if if_better:
        if data is None or version is not None:
            fail("--if-better needs --data DIR (and no --version)")
        assert data is not None
        from nba.tracking import CHALLENGER, resolve
        from pipelines.evaluate import Gate, previous_looks, promote_if_better

        gate = Gate(alpha=round(1 - level, 6), min_gain=min_gain, max_looks=max_looks,
                    evidence=evidence, planned_n=planned_decisions)  # fmt: skip
        with err.status("evaluating champion and challenger on logged data"):
            looks = previous_looks(resolve(CHALLENGER)) + 1
            c = promote_if_better(data, gate=gate, looks=looks, share=share, since=since)
        print_comparison(c)
        print_gate(c, looks)
        verdict = "promoted" if c.promoted else "not promoted"
        console.print(
            f"gate ({c.gate}): challenger version {c.challenger.version} {verdict}; "
            f"{MODEL_NAME}@champion -> version "
            f"{c.challenger.version if c.promoted else c.champion.version} (MLflow run {c.run_id})"
        )
        return
    if version is None:
        fail("give --version V, or --if-better --data DIR")
    assert version is not None
    set_alias(alias, version)
    console.print(f"{MODEL_NAME}@{alias} -> version {version}")


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Option(help="Dataset with the logged decisions.")],
    share: ShareOption = DEFAULT_SHARE,
    since: SinceOption = None,
) -> None:
    """Estimate @champion's and @challenger's value on logged data (DR, SNIPW, IPW, DM with
    bootstrap intervals) and the challenger's gain; logged to MLflow."""
    from pipelines.evaluate import compare_policies, log_comparison

    with err.status("evaluating champion and challenger on logged data"):
        c = compare_policies(data, share=share, since=since)
        c.run_id = log_comparison(c)
    print_comparison(c)
    console.print(f"MLflow run {c.run_id}")


VERDICT_WORDS = {
    "promote": "better: promoted",
    "retire": "not better, or not shown better in time: retire it and train a new one",
    "continue": "not decided yet: keep it collecting decisions and ask again",
}


def print_gate(c: Comparison, looks: int) -> None:
    table = Table(
        title=f"gain per decision, look {looks} (confidence sequence: valid at every look)",
        title_justify="left",
    )
    for col in ("evidence", "decisions", "gain", "bounds"):
        table.add_column(col, justify="left" if col == "evidence" else "right")
    names = {"dr": "DR, all logged decisions", "arms": "challenger's traffic vs champion's"}
    for name, seq in c.sequences.items():
        table.add_row(names[name], f"{seq.n:,}", f"{seq.mean:+.2f}",
                      f"[{seq.low:+.2f}, {seq.high:+.2f}]")  # fmt: skip
    console.print(table)
    if c.verdict is not None:
        console.print(f"verdict: {VERDICT_WORDS[c.verdict]}")


def print_comparison(c: Comparison) -> None:
    console.print(
        f"{c.n_rounds:,} logged decisions from {c.window[0]} to {c.window[1]}: "
        f"champion version {c.champion.version}, challenger version {c.challenger.version}"
    )
    level = next(iter(c.gain.values())).level
    table = Table(
        title=f"estimated value per decision ({level:.0%} interval)", title_justify="left"
    )
    for col in ("estimator", "champion", "challenger", "gain"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    for name, gain in c.gain.items():
        old, new = c.values["champion"][name], c.values["challenger"][name]
        table.add_row(
            name.upper(),
            f"{old.value:.2f} [{old.low:.2f}, {old.high:.2f}]",
            f"{new.value:.2f} [{new.low:.2f}, {new.high:.2f}]",
            f"{gain.value:+.2f} [{gain.low:+.2f}, {gain.high:+.2f}]",
        )
    console.print(table)
