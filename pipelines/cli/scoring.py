"""Batch scoring: ``nba score``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.cli.app import app, console, fail, print_notes, progress_bar
from pipelines.score import DEFAULT_CHUNK, ScoreReport, score


@app.command("score")
def score_cmd(
    data: Annotated[Path, typer.Option(help="Dataset directory.")],
    out: Annotated[Path, typer.Option(help="Recommendations Parquet file to write.")],
    contacts: Annotated[
        Path | None,
        typer.Option(help="Contacts file (.csv/.parquet); without it, the whole active base."),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Recommendations per contact.")] = 3,
    alias: Annotated[str, typer.Option(help="Model alias to load.")] = "champion",
    engine: Annotated[
        str, typer.Option(help="local (this machine) or spark (see --spark-master).")
    ] = "local",
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Contacts per chunk (memory is bounded by one chunk).")
    ] = DEFAULT_CHUNK,
    fresh: Annotated[
        bool, typer.Option(help="Ignore finished chunks of an interrupted run; start over.")
    ] = False,
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL for --engine spark, e.g. spark://host:7077 "
            "[default: spark-submit's --master, else local[2]]."
        ),
    ] = None,
    capacity: Annotated[
        list[str] | None,
        typer.Option(help="action_id=N: at most N contacts get that action (repeatable)."),
    ] = None,
    budget: Annotated[
        list[str] | None,
        typer.Option(
            help="family=AMOUNT: expected spend (propensity x cost) of the family at most "
            "AMOUNT (repeatable)."
        ),
    ] = None,
) -> None:
    """Score contacts with models:/nba-policy@champion into the recommendations table.

    Works in chunks with a progress bar; an interrupted run resumes where it stopped.
    """
    if engine not in ("local", "spark"):
        fail(f"--engine must be 'local' or 'spark', not {engine!r}")
    with progress_bar("scoring", "contacts") as progress:
        report = score(
            data,
            out,
            contacts,
            top_k=top_k,
            alias=alias,
            engine="spark" if engine == "spark" else "local",
            chunk_size=chunk_size,
            fresh=fresh,
            progress=progress,
            spark_master=spark_master,
            capacity=capacity,
            budget=budget,
        )
    print_score(report)


def print_score(r: ScoreReport) -> None:
    print_notes(r.notes, r.warnings)
    resumed = f", {r.resumed_chunks} of {r.chunks} chunks resumed" if r.resumed_chunks else ""
    console.print(
        f"scored {r.n_contacts:,} contacts with nba-policy version {r.model_version}"
        f" ({r.engine}{resumed}) in {r.seconds:.1f} s: {r.n_rows:,} recommendations, "
        f"{r.n_without_action:,} contacts with nothing worth offering -> {r.out}"
    )
    console.print(f"profiles: {r.profile_source}")
    if r.allocation is not None:
        al = r.allocation
        console.print(
            f"allocation ({al.method}, {al.seconds:.1f} s): total expected value "
            f"{al.value:,.0f} vs greedy top-1 {al.greedy_value:,.0f} "
            f"({al.value - al.greedy_value:+,.0f}); no allocation can beat "
            f"{al.lp_bound:,.0f} (LP bound); without limits {al.top1_value:,.0f}"
        )
        for name, (used, limit) in al.usage.items():
            console.print(f"  {name}: {used:,.1f} of {limit:,.1f}")
    if len(r.mix):
        table = Table(title="action mix (rank 1)", title_justify="left")
        for col in ("action", "family", "contacts", "share"):
            table.add_column(col, justify="right" if col in ("contacts", "share") else "left")
        for row in r.mix.itertuples():
            table.add_row(
                str(row.action_id), str(row.family), f"{row.contacts:,}", f"{row.share:.1%}"
            )
        table.add_row(
            "(nothing)",
            "",
            f"{r.n_without_action:,}",
            f"{r.n_without_action / max(r.n_contacts, 1):.1%}",
        )
        console.print(table)
    if r.run_id:
        console.print(
            "what it recommends to whom (by segment, tenure and channel) is in MLflow: "
            f"run 'score v{r.model_version}: ...' (open it with `nba ui`)"
        )
    if r.policy_audit is not None:
        a = r.policy_audit
        console.print(
            f"contact policy, counted again from the files: {a.breaches:,} of {a.checked:,} "
            f"first recommendations break a family limit, the limit across all actions or "
            f"the pause after an accepted action ({a.after_history:,} of these customers had "
            "offers in the policy's windows)"
        )


def print_examples(r: ScoreReport, n: int) -> None:
    recs = r.examples
    for contact_id in list(dict.fromkeys(recs["contact_id"]))[:n] if len(recs) else []:
        rows = recs[recs["contact_id"] == contact_id]
        console.print(f"\n[bold]contact {contact_id}[/] (customer {rows.iloc[0]['customer_id']})")
        for _, row in rows.iterrows():
            console.print(
                f"  {row['rank']}. {row['name']}  [dim](p={row['propensity']:.2f}, "
                f"net value {row['value']:.0f}, priority {row['priority']:.1f})[/]"
            )
            for reason in row["reasons"]:
                console.print(f"       - {reason}")
