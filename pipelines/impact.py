"""Stage: the impact report. Lift of the NBA over the control group, per action family
and overall, from the decision log, as Markdown and HTML with a chart, logged to MLflow.

A decision counts once its shown action has a reported outcome: its value is the net
value the policy expected for that action if accepted, else 0 (the API is not told
realised values). Decisions without a reported outcome are counted and left out.
"""

from __future__ import annotations

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
from pipelines.review.charts import figure
from pipelines.review.summary import Summary, log_summary, to_html
from pipelines.review.words import FEW_CASES, family_label, few_cases, interval, money


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
        params = (to_text(since),) if since else ()
        versions = log.query(
            "SELECT model_version, COUNT(*) FROM served"
            + (" WHERE timestamp > ?" if since else "")
            + " GROUP BY model_version ORDER BY model_version",
            params,
        )
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
    chart = lift_chart(table, folder / "lift.png")
    made_by = {str(v): int(n) for v, n in versions}
    summary = impact_summary(table, len(frame), unreported, made_by, chart, s.currency)
    markdown = summary.markdown({"lift.png": "lift.png"})
    (folder / "impact.md").write_text(markdown, encoding="utf-8")
    (folder / "impact.html").write_text(to_html(summary), encoding="utf-8")
    files = [folder / "impact.md", folder / "impact.html", chart]
    with mlflow.start_run(experiment_id=configure(s), run_name=summary.title) as run:
        overall = table[table["segment"] == "overall"].iloc[0]
        mlflow.log_params({"decisions": len(frame), "unreported": unreported,
                           "since": to_text(since) if since else "all",
                           "model_versions": ", ".join(made_by) or "none"})  # fmt: skip
        metrics = {}
        for row in table.itertuples():
            for name in ("lift", "lift_low", "lift_high", "relative", "relative_low",
                         "relative_high"):  # fmt: skip
                value = getattr(row, name)
                if pd.notna(value):
                    metrics[f"{name}_{row.segment}"] = round(float(value), 4)
        metrics["value_nba"] = round(float(overall["value_nba"]), 4)
        metrics["value_control"] = round(float(overall["value_control"]), 4)
        mlflow.log_metrics(metrics)
        for f in files:
            mlflow.log_artifact(str(f), "impact")
        log_summary(summary, "impact")
        run_id = str(run.info.run_id)
    return ImpactReport(table, len(frame), unreported, markdown, files, run_id)


def format_value(value: float, currency: str = "") -> str:
    """A value per decision, or "n/a" for an arm without decisions."""
    if pd.isna(value):
        return "n/a"
    return money(value, currency) if currency else f"{value:.2f}"


def format_lift(row: pd.Series, currency: str = "") -> str:
    """``+1.23 [+0.45, +2.01]``; "n/a" for a family without decisions in both arms."""
    if pd.isna(row["lift"]) or pd.isna(row["lift_low"]):
        return "n/a (too few decisions in one arm)"
    if currency:
        told = money(row["lift"], currency, True)
        return f"{told} {interval(row['lift_low'], row['lift_high'], currency)}"
    return f"{row['lift']:+.2f} [{row['lift_low']:+.2f}, {row['lift_high']:+.2f}]"


def format_relative(row: pd.Series) -> str:
    """The relative lift as ``+12.3% [+4.5%, +20.1%]``, or "n/a"."""
    if pd.isna(row["relative"]):
        return "n/a"
    if pd.isna(row["relative_low"]):
        return f"{row['relative']:+.1%} [no bounds: the control group's value is too uncertain]"
    return f"{row['relative']:+.1%} [{row['relative_low']:+.1%}, {row['relative_high']:+.1%}]"


def impact_summary(
    table: pd.DataFrame,
    n: int,
    unreported: int,
    versions: dict[str, int],
    chart: Path,
    currency: str,
) -> Summary:
    """The impact report in plain words, with its verdict."""
    overall = table[table["segment"] == "overall"].iloc[0]
    made = ", ".join(f"v{v} ({c:,} decisions)" for v, c in versions.items())
    lift_text = format_lift(overall, currency)
    if pd.isna(overall["lift_low"]):
        proven = "too few decisions to tell"
    elif overall["lift_low"] > 0:
        proven = "value the NBA creates, clearly above zero"
    elif overall["lift_high"] < 0:
        proven = "the NBA does worse than random sensible actions"
    else:
        proven = "not yet distinguishable from zero"
    s = Summary(
        f"impact: NBA vs control group, {n:,} decisions",
        f"The NBA earns {lift_text} per decision more than a random sensible action "
        f"(the control group): {proven}.",
    )
    s.warn(few_cases(int(min(overall["n_nba"], overall["n_control"])), "decisions in one arm"))
    s.say(
        f"{n:,} decisions with a reported outcome ({unreported:,} without one are left "
        f"out), made by nba-policy {made or 'no version'}. A decision's value is the "
        "expected net value of the shown action if accepted, else 0. Customers in the "
        "control group (a fixed share, by customer) get a random sensible action instead "
        "of the NBA's. Rows group the decisions by what the NBA would choose for the "
        "customer, in both arms, so each row compares like with like. Intervals: 95%.",
    )
    rows = []
    for _, r in table.iterrows():
        few = "" if min(r["n_nba"], r["n_control"]) >= FEW_CASES else " ⚠"
        label = "all decisions" if r["segment"] == "overall" else family_label(r["segment"])
        rows.append([f"{label}{few}", f"{r['n_nba']:,}", f"{r['n_control']:,}",
                     format_value(r["value_nba"], currency),
                     format_value(r["value_control"], currency),
                     format_lift(r, currency), format_relative(r)])  # fmt: skip
    s.table(["what the NBA would choose", "NBA decisions", "control decisions",
             "value per decision, NBA", "control", "lift", "relative lift"], rows)  # fmt: skip
    if any(min(r["n_nba"], r["n_control"]) < FEW_CASES for _, r in table.iterrows()):
        s.say(f"⚠ fewer than {FEW_CASES} decisions in one arm: read that row as a hint only.")
    s.chart("lift.png", chart, "lift per decision against the control group")
    return s


def lift_chart(table: pd.DataFrame, path: Path) -> Path:

    t = table.dropna(subset=["lift_low"])
    fig = figure(7, 0.6 * len(t) + 1.5)
    ax = fig.subplots()
    labels = ["all decisions" if v == "overall" else family_label(v) for v in t["segment"]]
    ax.barh(labels, t["lift"], xerr=[t["lift"] - t["lift_low"], t["lift_high"] - t["lift"]],
            color=["#4c72b0" if s != "overall" else "#dd8452" for s in t["segment"]])  # fmt: skip
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("lift in value per decision, NBA - control (95% interval)")
    ax.set_title("NBA against the control group")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
