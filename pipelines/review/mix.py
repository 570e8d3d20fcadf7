"""What the engine recommends to whom: the first recommendation of every scored contact
(or nothing) by CRM segment, tenure band and channel, as count tables, a chart and the
summary of the ``score`` run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nba.catalog import Catalog
from nba.contract import Dataset
from pipelines.review.charts import figure
from pipelines.review.summary import Summary
from pipelines.review.words import few_cases

NOTHING = "nothing"
TENURE_BANDS = ((365, "under 1 year"), (3 * 365, "1 to 3 years"), (5 * 365, "3 to 5 years"))
LAST_BAND = "5 years or more"
GROUPINGS = {"segment": "customer segment", "tenure": "time as a customer", "channel": "channel"}


def first_choices(
    dataset: Dataset, contacts: pd.DataFrame, out: Path, catalog: Catalog
) -> pd.DataFrame:
    """One row per scored contact: ``segment``, ``tenure``, ``channel`` and ``action``
    (the catalog name of its first recommendation, or "nothing")."""
    top = pq.read_table(out, columns=["contact_id", "action_id", "rank"])
    top = top.filter(pa.compute.equal(top.column("rank"), 1)).select(["contact_id", "action_id"])
    asked = pa.Table.from_pandas(
        contacts[["contact_id", "customer_id", "timestamp", "channel"]], preserve_index=False
    )
    con = dataset.con
    con.register("nba_mix_top", top)
    con.register("nba_mix_contacts", asked)
    try:
        frame = con.sql("""
            SELECT c.contact_id, COALESCE(u.segment, 'unknown') AS segment,
                   date_diff('day', u.signup_date, c.timestamp) AS tenure_days,
                   c.channel, t.action_id
            FROM nba_mix_contacts c
            LEFT JOIN customers u USING (customer_id)
            LEFT JOIN nba_mix_top t USING (contact_id)""").df()
    finally:
        con.unregister("nba_mix_top")
        con.unregister("nba_mix_contacts")
    names = {a.id: a.name for a in catalog.actions}
    frame["action"] = frame["action_id"].map(names).fillna(NOTHING)
    frame["tenure"] = tenure_bands(frame["tenure_days"])
    return frame[["segment", "tenure", "channel", "action"]]


def tenure_bands(days: pd.Series) -> np.ndarray:
    """The band of each tenure in days ("unknown" where missing), vectorised: a whole base
    is millions of contacts."""
    labels = np.array([label for _, label in TENURE_BANDS] + [LAST_BAND, "unknown"], dtype=object)
    d = pd.to_numeric(days, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    band = np.searchsorted([limit for limit, _ in TENURE_BANDS], d, side="right")
    return labels[np.where(np.isnan(d), len(labels) - 1, band)]


def mix_table(choices: pd.DataFrame, by: str) -> pd.DataFrame:
    """Counts of first recommendations, one row per value of ``by``, one column per action
    (most frequent first, nothing last), and the row total."""
    counts = pd.crosstab(choices[by], choices["action"])
    order = [a for a in choices["action"].value_counts().index if a != NOTHING]
    counts = counts.reindex(columns=order + ([NOTHING] if NOTHING in counts else []), fill_value=0)
    if by == "tenure":
        bands = [label for _, label in TENURE_BANDS] + [LAST_BAND, "unknown"]
        counts = counts.reindex([b for b in bands if b in counts.index])
    counts["all"] = counts.sum(axis=1)
    return counts


def mix_chart(choices: pd.DataFrame, path: Path) -> Path:

    actions = [a for a in choices["action"].value_counts().index if a != NOTHING]
    actions += [NOTHING] if (choices["action"] == NOTHING).any() else []
    import matplotlib

    palette = [matplotlib.colormaps["tab20"](i) for i in range(20)]
    colours = dict(zip(actions, palette, strict=False))
    colours[NOTHING] = "#bbbbbb"
    fig = figure(9, 9, constrained=True)
    axes = fig.subplots(3, 1)
    for ax, (by, words) in zip(axes, GROUPINGS.items(), strict=True):
        table = mix_table(choices, by).drop(columns="all")
        shares = table.div(table.sum(axis=1), axis=0)
        shares.plot.barh(stacked=True, ax=ax, color=[colours[a] for a in shares.columns],
                         legend=False, width=0.8)  # fmt: skip
        ax.set(xlabel="share of contacts", ylabel="", title=f"First recommendation by {words}")
        ax.set_xlim(0, 1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    fig.savefig(path, dpi=100)
    return path


def score_summary(
    choices: pd.DataFrame, version: str, source: str, chart: Path | None, alias: str, scope: str
) -> Summary:
    """``scope``: what was scored, in words ("the active base", "contacts.parquet")."""
    n = len(choices)
    if n == 0:
        return Summary(
            f"score v{version}: {scope}, no contacts",
            f"Nothing was scored: {scope} holds no contacts.",
        )
    counts = choices["action"].value_counts()
    nothing = int(counts.get(NOTHING, 0))
    top = counts.drop(NOTHING, errors="ignore")
    lead = (
        f" The most frequent first recommendation is {top.index[0]} "
        f"({top.iloc[0] / max(n, 1):.1%})."
        if len(top)
        else ""
    )
    s = Summary(
        f"score v{version}: {scope}, {n:,} contacts",
        f"Of {n:,} contacts, {(n - nothing) / max(n, 1):.1%} get an action first and "
        f"{nothing / max(n, 1):.1%} nothing.{lead}",
    )
    s.warn(few_cases(n))
    s.say(
        f"Scored with nba-policy version {version} (@{alias}); profiles: {source}. "
        '"Nothing" means no action was worth presenting (or the contact policy held every '
        "one back). The tables count each contact's first recommendation."
    )
    overall = [[str(a), f"{c:,}", f"{c / max(n, 1):.1%}"] for a, c in counts.items()]
    s.table(["first recommendation", "contacts", "share"], overall)
    if chart is not None:
        s.chart("action_mix.png", chart, "first recommendation by segment, tenure and channel")
    for by, words in GROUPINGS.items():
        table = mix_table(choices, by)
        header = [words, *table.columns]
        rows = [[str(idx), *(f"{int(v):,}" for v in row)] for idx, row in table.iterrows()]
        s.say(f"## By {words}")
        s.table(header, rows)
    return s


def log_score_run(
    dataset: Dataset,
    contacts: pd.DataFrame,
    out: Path,
    catalog: Catalog,
    version: str,
    source: str,
    alias: str,
    scope: str,
    params: dict[str, object],
) -> str:
    """One MLflow run per ``nba score``: the action mix as tables (CSV), chart and summary."""
    import tempfile

    import mlflow

    from nba.tracking import configure
    from pipelines.review.summary import log_summary

    choices = first_choices(dataset, contacts, out, catalog)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chart = mix_chart(choices, folder / "action_mix.png") if len(choices) else None
        summary = score_summary(choices, version, source, chart, alias, scope)
        with mlflow.start_run(experiment_id=configure(), run_name=summary.title) as run:
            mlflow.log_params({**params, "model_version": version, "contacts": len(choices)})
            counts = choices["action"].value_counts()
            mlflow.log_metrics(
                {"share_nothing": round(float(counts.get(NOTHING, 0)) / max(len(choices), 1), 4)}
            )
            for by in GROUPINGS:
                mix_table(choices, by).to_csv(folder / f"action_mix_by_{by}.csv")
                mlflow.log_artifact(str(folder / f"action_mix_by_{by}.csv"), "action_mix")
            log_summary(summary, "score")
            return str(run.info.run_id)
