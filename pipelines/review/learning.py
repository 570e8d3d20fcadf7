"""The summary of a ``simulate-loop`` run: per round, the champion's and the challenger's
true value and what the gate decided, as a table and a chart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.review.charts import figure
from pipelines.review.summary import Summary

if TYPE_CHECKING:
    from pipelines.loop import LoopReport

VERDICT_WORDS = {
    "promote": "promoted",
    "retire": "rejected",
    "continue": "undecided, keeps collecting",
}


def loop_summary(report: LoopReport, chart: Path) -> Summary:
    first, last = report.rounds[0], report.rounds[-1]
    promotions = [r.round for r in report.rounds if r.verdict == "promote"]
    verdict = (
        f"Over {len(report.rounds) - 1} rounds the champion's true value went from "
        f"{first.normalised_value:.2f} to {last.normalised_value:.2f} of the best possible "
        + (f"(promotions in round {', '.join(map(str, promotions))})." if promotions
           else "(no challenger was promoted).")
    )  # fmt: skip
    s = Summary(f"simulate-loop: {report.scenario}, {len(report.rounds) - 1} rounds", verdict)
    s.say(
        "A simulated contact centre: each round the API serves the round's contacts with "
        "the champion (a share to the challenger and a control group), agents' outcomes "
        "flow back, the gate judges the challenger and a new one is trained on the "
        "feedback. Values are the simulator's truth: 0 is a random sensible action, 1 the "
        "best possible choice."
    )
    rows = []
    for r in report.rounds:
        challenger = f"v{r.judged}" if r.judged else (f"v{r.challenger}" if r.challenger else "")
        value = (
            "" if r.challenger_normalised_value is None else f"{r.challenger_normalised_value:.2f}"
        )
        rows.append([str(r.round), f"v{r.champion}", f"{r.normalised_value:.2f}", challenger,
                     value, VERDICT_WORDS.get(r.verdict or "", ""), f"{r.logged:,}"])  # fmt: skip
    s.table(["round", "champion", "its true value", "challenger", "challenger's true value",
             "gate", "decisions logged"], rows)  # fmt: skip
    s.chart("values_per_round.png", chart, "true value per round, champion and challengers")
    return s


def loop_chart(report: LoopReport, path: Path) -> Path:

    fig = figure(7, 4)
    ax = fig.subplots()
    rounds = [r.round for r in report.rounds]
    ax.plot(rounds, [r.normalised_value for r in report.rounds], marker="o", label="champion")
    trained = [(r.round, r.challenger_normalised_value) for r in report.rounds
               if r.challenger_normalised_value is not None]  # fmt: skip
    if trained:
        ax.scatter(*zip(*trained, strict=True), marker="s", color="#dd8452",
                   label="new challenger (trained that round)")  # fmt: skip
    for r in report.rounds:
        if r.verdict == "promote":
            ax.axvline(r.round, color="#55a868", lw=1, ls="--")
    ax.set(xlabel="round", ylabel="true value (1 = best possible)",
           title="The learning loop: true value per round")  # fmt: skip
    ax.set_xticks(rounds)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
