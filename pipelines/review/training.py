"""The summary of a ``train`` or ``retrain`` run, and its charts, in plain words.

Every statement about the data is computed from the split actually used: the shares of
the four parts (they differ from 72/10/9/9% on a small log), which part the numbers are
measured on, and whether that part is the newest period (time split) or drawn at random
from the whole period (shuffled split, the default of ``nba retrain``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nba.catalog import Catalog
from nba.policy.evaluation import LABELS, POLICIES, TruthEvaluation
from nba.profiles import FEATURES_BY_NAME
from pipelines.review.charts import figure
from pipelines.review.registry import Status
from pipelines.review.summary import Summary
from pipelines.review.words import family_label, few_cases, money, share

CONTEXT_WORDS = {
    "ctx_channel": "The channel of the contact",
    "ctx_reason": "Why the customer got in touch",
    "ctx_action": "Which action is offered",
    "ctx_family": "Which kind of action is offered",
}


def feature_words(column: str) -> str:
    """A model column in words, from the profile's own descriptions."""
    if column in CONTEXT_WORDS:
        return CONTEXT_WORDS[column]
    base, _, scope = column.partition("__")
    feature = FEATURES_BY_NAME.get(base)
    text = re.sub(r"\s*\([^)]*\)", "", feature.description).rstrip(".") if feature else base
    return f"{text} (installment offers)" if scope == "installment" else text


@dataclass(frozen=True)
class Split:
    """How the logged decisions were cut, as used: sizes and order."""

    n: int
    a: int
    b: int
    c: int
    order: str  # "time" or "shuffled"
    window: tuple[str, str]
    test_window: tuple[str, str]
    left_out: int = 0
    """Decisions of the fixed yardstick left out before the cut."""
    yardstick: str = ""

    @property
    def n_test(self) -> int:
        return self.n - self.c

    def words(self) -> str:
        return self._cut() + (
            f" Besides these, the {self.left_out:,} decisions of the fixed yardstick "
            f"{self.yardstick} were left out, so that no version learns from them."
            if self.left_out
            else ""
        )

    def _cut(self) -> str:
        parts = (
            f"{self.a:,} ({self.a / self.n:.0%}) to fit the model, {self.b - self.a:,} "
            f"({(self.b - self.a) / self.n:.0%}) to stop the boosting, {self.c - self.b:,} "
            f"({(self.c - self.b) / self.n:.0%}) to calibrate the chances, {self.n_test:,} "
            f"({self.n_test / self.n:.0%}) to test"
        )
        if self.order == "time":
            return (
                f"{self.n:,} logged decisions from {self.window[0][:10]} to "
                f"{self.window[1][:10]}, cut in time order: {parts}. The test part is the "
                f"newest period ({self.test_window[0][:10]} to {self.test_window[1][:10]}): "
                "every number below is measured there, on decisions the model never saw."
            )
        return (
            f"{self.n:,} logged decisions from {self.window[0][:10]} to {self.window[1][:10]}, "
            f"shuffled and cut: {parts}. The test part is drawn at random from the whole "
            "period, so the newest feedback is learnt from: every number below is measured "
            "on these held-out decisions, which the model never saw, but not on a later "
            "period. The test on the future is the promotion gate, on decisions logged after "
            "this version was trained."
        )


def training_verdict(version: str, status: Status, champion: str | None, headline: str) -> str:
    """The run's verdict in one or two sentences."""
    if status == "champion":
        lead = f"Version {version} is the first version: it is now the champion, live."
    elif status == "challenger":
        lead = (
            f"Version {version} is the new challenger: it goes live only if the promotion "
            f"gate finds it better than the champion (version {champion}) on decisions "
            "logged from now on."
        )
    else:
        lead = (
            f"Version {version} is registered, not live: the champion stays version "
            f"{champion} until `nba promote` moves it."
        )
    return f"{lead} {headline}".strip()


def headline(metrics: dict[str, float], truth: TruthEvaluation | None, currency: str) -> str:
    """The headline numbers: on the fixed yardstick where measured (comparable between
    versions), else on this run's test part."""
    if "yardstick_value_nba" in metrics:
        nba, done = metrics["yardstick_value_nba"], metrics["yardstick_value_logging_policy"]
        where = "On the fixed yardstick"
        true = metrics.get("yardstick_normalised_value_nba")
    else:
        nba = metrics.get("logged_value_nba_snipw", float("nan"))
        done = metrics.get("logged_value_logging_policy", float("nan"))
        where = "On the test part"
        true = truth.normalised["nba"] if truth is not None else None
    text = (
        f"{where} it would earn {money(nba, currency)} per contact, against "
        f"{money(done, currency)} for what was actually done."
    )
    if true is not None:
        text += f" Against the simulator's oracle: {true:.2f} of the best possible."
    return text


def yardstick_section(
    s: Summary, described: str, metrics: dict[str, float], currency: str, note: str | None
) -> None:
    """The fixed yardstick's numbers: the ones to compare versions on."""
    s.say("## On the fixed yardstick: compare versions here", "",
          f"The {described}. Every version is measured on exactly these, and none learnt "
          "from them; the test part above differs from run to run.")  # fmt: skip
    lines = []
    if "yardstick_value_nba" in metrics:
        lines += [
            f"- this version: **{money(metrics['yardstick_value_nba'], currency)}** per "
            "contact (estimated from the log)",
            "- what was actually done: "
            + money(metrics["yardstick_value_logging_policy"], currency),
        ]
    if "yardstick_normalised_value_nba" in metrics:
        lines.append(
            f"- of the best possible, by the simulator's truth: "
            f"**{metrics['yardstick_normalised_value_nba']:.2f}**"
        )
    if lines:
        s.say(*lines)
    if note:
        s.warn(note)


def training_summary(
    title: str,
    verdict: str,
    split: Split,
    metrics: dict[str, float],
    per_action: pd.DataFrame,
    truth: TruthEvaluation | None,
    catalog: Catalog,
    charts: dict[str, Path],
    currency: str,
    objective_note: str | None,
) -> Summary:
    s = Summary(title, verdict)
    s.say("## What it learnt from", "", split.words())
    if objective_note:
        s.warn(objective_note)
    s.warn(few_cases(split.n_test, "decisions in the test part"))
    s.say(
        "## How well it predicts a yes",
        "",
        f"- Ranking quality: **{metrics['auc']:.2f}** (0.5 is guessing, 1 is perfect).",
        f"- Calibration: predicted chances are **{metrics['ece']:.1%}** away from the "
        "observed rates on average (lower is better).",
    )
    names = {a.id: a.name for a in catalog.actions}
    rows = []
    for action, r in per_action.iterrows():
        auc = "too few to tell" if not np.isfinite(r.auc) else f"{r.auc:.2f}"
        note = " ⚠" if r.n < 200 else ""
        rows.append([f"{names.get(str(action), action)}{note}", f"{int(r.n):,}",
                     share(r.accept_rate), share(r.mean_propensity), auc])  # fmt: skip
    s.table(["action", "decisions in the test part", "said yes", "predicted", "ranking"], rows)
    if any(r.n < 200 for _, r in per_action.iterrows()):
        s.say("⚠ fewer than 200 decisions: read that action's numbers as a hint only.")
    if "calibration.png" in charts:
        s.chart(
            "calibration.png",
            charts["calibration.png"],
            "predicted against observed chance of a yes",
        )
    s.say(
        "## What it is worth",
        "",
        "Value per contact on the test part, estimated from the log by reweighting the "
        "decisions that were made (each outcome counts as often as the policy would have "
        "made that choice):",
        "",
        f"- what was actually done: **{money(metrics['logged_value_logging_policy'], currency)}**",
        f"- this version: **{money(metrics['logged_value_nba_snipw'], currency)}**",
        f"- always a product where possible: "
        f"{money(metrics['logged_value_product_first_snipw'], currency)}",
        f"- the action most likely to be accepted: "
        f"{money(metrics['logged_value_propensity_only_snipw'], currency)}",
        f"- always nothing: {money(metrics['logged_value_nothing_snipw'], currency)}",
    )
    if truth is not None:
        s.say(
            "## Against the simulator's truth",
            "",
            f"{truth.n_contacts:,} contacts of the simulated world that no training decision "
            "came from, valued with the simulator's true effects. 0 is a random sensible "
            "action, 1 the best possible choice. Every policy keeps to the contact policy, "
            f"which held an action back at {truth.held_back_share:.1%} of the contacts.",
        )
        s.table(["policy", "value per contact", "of the best possible"],
                [[LABELS[p], money(truth.values[p], currency), f"{truth.normalised[p]:.2f}"]
                 for p in POLICIES])  # fmt: skip
        s.warn(few_cases(truth.n_contacts, "contacts with the simulator's truth"))
    if "action_mix.png" in charts:
        s.chart(
            "action_mix.png", charts["action_mix.png"], "what it recommends, by customer segment"
        )
    if "what_drives_it.png" in charts:
        s.say("## What drives its predictions")
        s.chart("what_drives_it.png", charts["what_drives_it.png"], "what drives the predictions")
    return s


def training_charts(
    out: Path,
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    importance: dict[str, float],
    mix: pd.DataFrame | None,
) -> dict[str, Path]:
    """Calibration by family, what drives the predictions, and (with the simulator's
    truth) the action mix by segment."""
    from matplotlib.ticker import PercentFormatter

    files: dict[str, Path] = {}
    fig = figure(6, 5)
    ax = fig.subplots()
    for family, idx in frame.groupby("family").indices.items():
        order = np.argsort(p[idx])
        chunks = [c for c in np.array_split(order, 8) if len(c)]
        ax.plot([p[idx][c].mean() for c in chunks], [y[idx][c].mean() for c in chunks],
                marker="o", label=family_label(str(family)))  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="predicted chance of a yes", ylabel="observed share of yes",
           title="Predicted against observed, test part", xlim=(0, 1), ylim=(0, 1))  # fmt: skip
    ax.legend()
    files["calibration.png"] = out / "calibration.png"
    fig.savefig(files["calibration.png"], dpi=100, bbox_inches="tight")

    total = sum(importance.values()) or 1.0
    top = pd.Series({feature_words(k): v / total for k, v in importance.items()})
    top = top.groupby(level=0).sum().sort_values().tail(15)
    fig = figure(8, 6)
    ax = fig.subplots()
    top.plot.barh(ax=ax)
    ax.set(title="What drives the predictions (top 15)", xlabel="share of the model's learning")
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    files["what_drives_it.png"] = out / "what_drives_it.png"
    fig.savefig(files["what_drives_it.png"], dpi=100, bbox_inches="tight")

    if mix is not None and not mix.empty:
        fig = figure(8, 4)
        ax = fig.subplots()
        mix.plot.bar(stacked=True, ax=ax)
        ax.set(title="What it recommends first, by customer segment",
               ylabel="share of contacts", xlabel="segment")  # fmt: skip
        ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left")
        files["action_mix.png"] = out / "action_mix.png"
        fig.savefig(files["action_mix.png"], dpi=100, bbox_inches="tight")
    return files
