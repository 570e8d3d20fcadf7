"""Stage: the impact report. Lift of the NBA over the control group, per action family
and overall, from the decision log, as Markdown and HTML with a chart, logged to MLflow.

A decision counts once its shown action has a reported outcome: its value is the net
value the policy expected for that action if accepted, else 0 (the API is not told
realised values). Decisions without a reported outcome are counted and left out.
"""

from __future__ import annotations

import html
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from nba.catalog import Catalog
from nba.config import Settings, get_settings
from nba.decision_log import DecisionLog, to_text
from nba.exceptions import NBAError
from nba.impact import lift_table
from nba.tracking import CHAMPION, configure, load_policy, resolve


@dataclass
class ImpactReport:
    table: pd.DataFrame
    """One row per segment (family of the NBA's choice) plus ``overall``."""
    n_decisions: int
    n_unreported: int
    markdown: str
    files: list[Path]
    run_id: str = ""


def impact_frame(
    log: DecisionLog, catalog: Catalog, since: datetime | None = None
) -> tuple[pd.DataFrame, int]:
    """One row per answered decision with an outcome for its shown action:
    ``decision_id``, ``customer_id``, ``arm``, ``segment`` (family of the NBA's choice) and
    ``value``. Returns it and the number of answers without an outcome."""
    params = (to_text(since),) if since else ()
    rows = log.query(
        "SELECT decision_id, customer_id, arm, ranking FROM served"
        + (" WHERE timestamp > ?" if since else ""),
        params,
    )
    # An outcome's presented_at is its decision's timestamp: the same window.
    outcomes = {
        (d, a): o
        for d, a, o in log.query(
            "SELECT decision_id, action_id, outcome FROM outcomes"
            + (" WHERE presented_at > ?" if since else ""),
            params,
        )
    }
    family = catalog.family_of
    records, unreported = [], 0
    for decision_id, customer_id, arm, ranking in rows:
        shown = json.loads(ranking)
        if not shown:
            continue
        top = shown[0]
        outcome = outcomes.get((decision_id, top["action_id"]))
        if outcome is None:
            unreported += 1
            continue
        nba_top = next((r for r in shown if r.get("policy_rank") == 1), None)
        segment = family.get(nba_top["action_id"], "unknown") if nba_top else "unknown"
        value = float(top.get("value") or 0.0) if outcome == "accepted" else 0.0
        # The challenger's customers are served by an NBA policy too: the lift is the
        # engine's over random choices, whichever version answered.
        arm = "nba" if arm == "challenger" else arm
        records.append((decision_id, customer_id, arm, segment, value))
    columns = ["decision_id", "customer_id", "arm", "segment", "value"]
    return pd.DataFrame(records, columns=columns), unreported


def impact_report(
    settings: Settings | None = None, since: datetime | None = None, out: Path | None = None
) -> ImpactReport:
    """Compute the lift table, write ``impact.md``, ``impact.html`` and ``lift.png`` (to
    ``out`` or a temporary folder) and log them with the numbers to MLflow."""
    import mlflow

    s = settings or get_settings()
    log = DecisionLog(s.decision_log)
    try:
        arms = {a for (a,) in log.query("SELECT DISTINCT arm FROM served")}
        if not {"nba", "control"} <= arms:
            raise NBAError(
                f"the decision log ({log.url}) has no decisions of both arms (found "
                f"{sorted(arms) or 'none'}): set NBA_CONTROL_SHARE (e.g. 0.1) so that a "
                "control group is served, and report outcomes"
            )
        catalog = load_policy(resolve(CHAMPION, s)).catalog
        frame, unreported = impact_frame(log, catalog, since)
    finally:
        log.close()
    if set(frame["arm"]) != {"nba", "control"}:
        raise NBAError(
            f"{len(frame)} decisions have a reported outcome, not from both arms: report "
            "outcomes for the control group too"
        )
    table = lift_table(frame)
    folder = out or Path(tempfile.mkdtemp(prefix="nba-impact-"))
    folder.mkdir(parents=True, exist_ok=True)
    markdown = _markdown(table, len(frame), unreported)
    (folder / "impact.md").write_text(markdown, encoding="utf-8")
    chart = _chart(table, folder / "lift.png")
    (folder / "impact.html").write_text(_html(table, len(frame), unreported), encoding="utf-8")
    files = [folder / "impact.md", folder / "impact.html", chart]
    with mlflow.start_run(experiment_id=configure(s), run_name="impact") as run:
        overall = table[table["segment"] == "overall"].iloc[0]
        mlflow.log_params({"decisions": len(frame), "unreported": unreported,
                           "since": to_text(since) if since else "all"})  # fmt: skip
        metrics = {}
        for row in table.itertuples():
            for name in (
                "lift",
                "lift_low",
                "lift_high",
                "relative",
                "relative_low",
                "relative_high",
            ):
                value = getattr(row, name)
                if pd.notna(value):
                    metrics[f"{name}_{row.segment}"] = float(value)
        metrics["value_nba"] = float(overall["value_nba"])
        metrics["value_control"] = float(overall["value_control"])
        mlflow.log_metrics(metrics)
        for f in files:
            mlflow.log_artifact(str(f), "impact")
        run_id = str(run.info.run_id)
    return ImpactReport(table, len(frame), unreported, markdown, files, run_id)


def format_value(value: float) -> str:
    """A value per decision, or "n/a" for an arm without decisions."""
    return "n/a" if pd.isna(value) else f"{value:.2f}"


def format_lift(row: pd.Series) -> str:
    """``+1.23 [+0.45, +2.01]``; "n/a" for a segment without decisions in both arms."""
    if pd.isna(row["lift"]):
        return "n/a (no decisions in one arm)"
    return f"{row['lift']:+.2f} [{row['lift_low']:+.2f}, {row['lift_high']:+.2f}]"


def format_relative(row: pd.Series) -> str:
    """The relative lift as ``+12.3% [+4.5%, +20.1%]``, or "n/a"."""
    if pd.isna(row["relative"]):
        return "n/a"
    return f"{row['relative']:+.1%} [{row['relative_low']:+.1%}, {row['relative_high']:+.1%}]"


def _markdown(table: pd.DataFrame, n: int, unreported: int) -> str:
    lines = [
        "# Impact of the NBA against the control group",
        "",
        f"{n:,} decisions with a reported outcome ({unreported:,} without one left out). "
        "Value per decision: the expected net value of the shown action if accepted, else "
        "0. Segments: the family the NBA would choose for the customer. Intervals: 95%, "
        "delta method.",
        "",
        "| segment | NBA decisions | control decisions | value per decision, NBA | control "
        "| lift | relative lift |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['segment']} | {r['n_nba']:,} | {r['n_control']:,} "
            f"| {format_value(r['value_nba'])} | {format_value(r['value_control'])} "
            f"| {format_lift(r)} | {format_relative(r)} |"
        )
    return "\n".join(lines) + "\n\n![lift per segment](lift.png)\n"


def _html(table: pd.DataFrame, n: int, unreported: int) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (
        "segment", "NBA decisions", "control decisions", "value/decision NBA",
        "value/decision control", "lift [95%]", "relative lift [95%]"))  # fmt: skip
    body = "".join(
        "<tr>"
        f"<td>{html.escape(str(r['segment']))}</td><td>{r['n_nba']:,}</td>"
        f"<td>{r['n_control']:,}</td><td>{format_value(r['value_nba'])}</td>"
        f"<td>{format_value(r['value_control'])}</td>"
        f"<td>{html.escape(format_lift(r))}</td><td>{html.escape(format_relative(r))}</td></tr>"
        for _, r in table.iterrows()
    )
    return (
        "<!doctype html><meta charset='utf-8'><title>NBA impact</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "td,th{padding:.3em .8em;text-align:right}td:first-child{text-align:left}</style>"
        "<h1>Impact of the NBA against the control group</h1>"
        f"<p>{n:,} decisions with a reported outcome ({unreported:,} without one left out). "
        "Intervals: 95%, delta method.</p>"
        f"<table><tr>{head}</tr>{body}</table><img src='lift.png' alt='lift per segment'>"
    )


def _chart(table: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table.dropna(subset=["lift_low"])
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(t) + 1.5))
    ax.barh(t["segment"], t["lift"], xerr=[t["lift"] - t["lift_low"], t["lift_high"] - t["lift"]],
            color=["#4c72b0" if s != "overall" else "#dd8452" for s in t["segment"]])  # fmt: skip
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("lift in value per decision, NBA - control (95% interval)")
    ax.set_title("NBA against the control group")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
