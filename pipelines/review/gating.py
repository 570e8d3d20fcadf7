"""The summary of an ``evaluate`` run (a challenger against the champion on logged
decisions, with or without the promotion gate) and the status it gives each version."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.review.registry import mark_version
from pipelines.review.summary import Summary
from pipelines.review.words import few_cases, interval, money

if TYPE_CHECKING:
    from pipelines.evaluate import Comparison

ESTIMATOR_WORDS = {
    "dr": "model-corrected reweighting (the main estimate)",
    "snipw": "reweighting alone",
    "ipw": "reweighting, not normalised",
    "dm": "the challenger's model alone",
}


def headline_gain(c: Comparison) -> tuple[float, float, float, str]:
    """The gain per decision that decides, with its bounds, and what kind of bounds."""
    if c.evidence:
        seq = c.sequences[c.evidence]
        kind = "bounds valid at every look of the gate" + (
            ", from the traffic each version served" if c.evidence == "arms" else ""
        )
        return seq.mean, seq.low, seq.high, kind
    g = c.gain["dr"]
    return g.value, g.low, g.high, f"{g.level:.0%} interval"


def comparison_title(c: Comparison) -> str:
    return f"evaluate v{c.challenger.version} vs v{c.champion.version}"


def comparison_verdict(c: Comparison, currency: str) -> str:
    new, old = f"v{c.challenger.version}", f"v{c.champion.version}"
    mean, low, high, _ = headline_gain(c)
    earns = (
        f"Challenger {new} earns {money(mean, currency, True)} per decision against "
        f"champion {old} {interval(low, high, currency)}"
    )
    look = f" (look {c.looks} of {c.max_looks})" if c.max_looks else ""
    if c.verdict == "promote":
        return f"{earns}: proven better, so {new} is now the champion and {old} retires{look}."
    if c.verdict == "retire":
        if c.challenger.version == c.champion.version:
            return f"{new} is already the champion: nothing to decide."
        why = "proven not better" if high < c.min_gain else "still undecided after the last look"
        return f"{earns}: {why}, so {new} is rejected and {old} stays champion{look}."
    if c.verdict == "continue":
        return (
            f"{earns}: not yet proven better, so {new} stays challenger and collects more "
            f"evidence{look}."
        )
    if low > 0:
        told = "better"
    elif high < 0:
        told = "worse"
    else:
        told = "not proven better or worse"
    return f"{earns}: {told} on this evidence (a comparison only: no version was moved)."


def comparison_summary(c: Comparison, currency: str) -> Summary:
    s = Summary(comparison_title(c), comparison_verdict(c, currency))
    _, _, _, kind = headline_gain(c)
    s.warn(few_cases(c.n_rounds, "logged decisions"))
    s.say(
        "## What was compared",
        "",
        f"Champion version {c.champion.version} and challenger version "
        f"{c.challenger.version}, replayed on the same {c.n_rounds:,} logged decisions from "
        f"{c.window[0][:16]} to {c.window[1][:16]}: for each decision, what each version "
        "would have chosen, valued by what happened where the logged choice was the same. "
        f"The interval of the verdict: {kind}.",
    )
    rows = []
    for name, words in ESTIMATOR_WORDS.items():
        if name not in c.gain:
            continue
        g = c.gain[name]
        gain = f"{money(g.value, currency, True)} {interval(g.low, g.high, currency)}"
        values = [money(c.values[who][name].value, currency) for who in ("champion", "challenger")]
        rows.append([words, *values, gain])
    s.table(
        ["estimate", "champion per decision", "challenger per decision", "gain [interval]"], rows
    )
    if c.gate:
        limit = f" or after {c.max_looks} looks" if c.max_looks else ""
        s.say(
            "## The promotion gate",
            "",
            f"Promote when even the pessimistic bound of the gain is above "
            f"{money(c.min_gain, currency)} per decision; retire the challenger when the "
            f"optimistic bound is below it{limit}. "
            "The bounds stay valid however often the gate looks, so looking after every round "
            "does not raise the chance of promoting a version that is not better.",
        )
    return s


def mark_comparison(c: Comparison, run_id: str, verdict_text: str, currency: str) -> None:
    """Each version's status after the gate's verdict (nothing moves without a gate)."""
    if c.verdict is None or c.challenger.version == c.champion.version:
        return
    mean, low, high, _ = headline_gain(c)
    told = (
        f"{money(mean, currency, True)} per decision {interval(low, high, currency)} "
        f"against v{c.champion.version}"
    )
    if c.verdict == "promote":
        mark_version(c.challenger.version, "champion", run_id, verdict_text, told)
        replaced = f"Replaced as champion by v{c.challenger.version}. {verdict_text}"
        mark_version(c.champion.version, "retired", run_id, replaced)
    elif c.verdict == "retire":
        mark_version(c.challenger.version, "rejected", run_id, verdict_text, told)
    else:
        mark_version(c.challenger.version, "challenger", run_id, verdict_text, told)
