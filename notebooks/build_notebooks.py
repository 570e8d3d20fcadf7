"""Writes the numbered notebooks from their cell sources (kept here so diffs stay readable).

    python notebooks/build_notebooks.py             # sources only
    python notebooks/build_notebooks.py --execute   # with outputs from small worlds

``--execute`` runs each notebook in a temporary workspace on a small simulated world
(:data:`SMALL_WORLDS`, a few minutes in all on 2 cores) and saves it with its outputs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PROFILES_AND_MODELS = [
    new_markdown_cell(
        "# 01 · Profiles and models\n\n"
        "A small simulated customer world, end to end: validate it against the data contract, "
        "build point-in-time profiles in Feast, train the calibrated response model and "
        "compare the NBA policy with the baselines on held-out contacts.\n\n"
        "All state goes to `NBA_HOME` (a temporary folder unless you set it)."
    ),
    new_code_cell(
        "import logging, os, tempfile\n"
        "logging.captureWarnings(True)  # the libraries' deprecation notes: not for readers\n"
        "logging.getLogger('py.warnings').setLevel(logging.ERROR)\n"
        "os.environ['MLFLOW_LOGGING_LEVEL'] = 'WARNING'\n"
        "os.environ['MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR'] = 'false'\n"
        "from pathlib import Path\n"
        "os.environ.setdefault('NBA_HOME', tempfile.mkdtemp(prefix='nba-nb01-'))\n"
        "HOME = Path(os.environ['NBA_HOME'])\n"
        "DATA = HOME / 'nb01-data'\n"
        "CUSTOMERS = int(os.environ.get('NB_CUSTOMERS', '4000'))\n"
        "print('workspace', HOME)"
    ),
    new_markdown_cell("## 1. A customer world in the contract's format"),
    new_code_cell(
        "from nba.simulate import SimulationConfig\n"
        "from pipelines.simulate import run_simulation\n"
        "from pipelines.validate import validate\n"
        "config = SimulationConfig(customers=CUSTOMERS, months=8, seed=1, holdout_weeks=3,"
        " history_months=3)\n"
        "summary = run_simulation(config, DATA)\n"
        "report = validate(DATA)\n"
        "summary, report.tables"
    ),
    new_markdown_cell(
        "## 2. Point-in-time profiles\n\n"
        "Profiles are computed as of every decision and contact, written to "
        "Feast's offline store, and the newest one per customer is loaded "
        "online."
    ),
    new_code_cell(
        "import pandas as pd\n"
        "from nba.config import get_settings\n"
        "from pipelines.features import build_features\n"
        "build = build_features(DATA)\n"
        "profiles = pd.read_parquet(get_settings().profiles_path)\n"
        "print(build.n_profile_rows, 'profile rows,', build.n_features, 'features')\n"
        "profiles[['n_complaint_30d', 'n_missed_payment_90d', 'sentiment_mean_90d',"
        " 'tenure_days', 'n_active_products']].describe().round(2)"
    ),
    new_markdown_cell(
        "Customers who complain get retention offers accepted more often: the "
        "pattern the model has to find."
    ),
    new_code_cell(
        "decisions = pd.read_parquet(DATA / 'decisions.parquet')\n"
        "decisions['timestamp'] = decisions['timestamp'].dt.tz_convert(None)\n"
        "joined = decisions.merge(profiles.assign(timestamp=profiles.event_timestamp.dt"
        ".tz_convert(None)), on=['customer_id', 'timestamp'])\n"
        "joined['accepted'] = joined.outcome == 'accepted'\n"
        "from nba.catalog import load_catalog\n"
        "joined['family'] = joined.action_id.map(load_catalog().family_of).fillna('nothing')\n"
        "(joined.assign(complained=joined.n_complaint_90d > 0)\n"
        "       .pivot_table(index='family', columns='complained', values='accepted')"
        ".round(3))"
    ),
    new_markdown_cell("## 3. Train, register, compare with the baselines"),
    new_code_cell(
        "from pipelines.train import train\n"
        "result = train(DATA)\n"
        "print('registered version', result.version, 'champion' if result.champion else '')\n"
        "pd.DataFrame({'value per contact': result.truth.values,"
        " 'normalised': result.truth.normalised}).round(3)"
    ),
    new_code_cell(
        "%matplotlib inline\n"
        "ax = pd.Series(result.truth.normalised).drop('oracle').sort_values().plot.barh("
        "title='Normalised value on held-out contacts (1 = oracle)')\n"
        "ax.axvline(0.8, ls='--', c='k');"
    ),
    new_code_cell("result.truth.by_family.round(3)"),
    new_markdown_cell("## 4. What an agent sees"),
    new_code_cell(
        "from pipelines.score import score\n"
        "scored = score(DATA, HOME / 'nb01-recs.parquet', DATA / 'contacts.parquet')\n"
        "print(scored.n_contacts, 'contacts scored in', round(scored.seconds, 1), 's ->', scored.out)\n"
        "scored.examples[['contact_id', 'rank', 'name', 'propensity', 'value',"
        " 'reasons']].head(9)"
    ),
    new_code_cell("scored.mix"),
]

LEARNING_LOOP = [
    new_markdown_cell(
        "# 02 · The learning loop\n\n"
        "Serve, log, learn, evaluate, promote: the closed loop on a simulated world whose "
        "logging policy was random, in three worlds: one that stays as simulated (`none`), "
        "one where a new action joins the catalog at round 1 with no history (`launch`), and "
        "one where, from round 2, installment offers stop working on the busiest channel "
        "(`drift`). Round 0's champion learnt from the random log only. Each round serves a "
        "slice of new contacts: most customers by the champion, a stable 20% by the "
        "challenger being judged, a 10% control group at random, all exploring "
        "epsilon-greedily; outcomes come from the simulator's ground truth. After every "
        "round the sequential gate looks at all the challenger's evidence (a confidence "
        "sequence on DR's per-decision gain, valid however often it looks) and promotes, "
        "retires or keeps collecting; a new challenger is trained only once the last one "
        "is decided. True values are measured on held-out contacts that are never served.\n\n"
        "All state goes to `NBA_HOME` (a temporary folder unless you set it). At the defaults "
        "(25,000 customers, 6 rounds) each world takes about 15 minutes on 2 cores; set "
        "`NB_CUSTOMERS`, `NB_ROUNDS` or `NB_SCENARIOS` smaller for a quick look (small worlds "
        "give the gate too few decisions to decide). The same runs from the command line: "
        "`nba simulate-loop --rounds 6 --scenario launch`."
    ),
    new_code_cell(
        "import logging, os, tempfile\n"
        "logging.captureWarnings(True)  # the libraries' deprecation notes: not for readers\n"
        "logging.getLogger('py.warnings').setLevel(logging.ERROR)\n"
        "os.environ['MLFLOW_LOGGING_LEVEL'] = 'WARNING'\n"
        "os.environ['MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR'] = 'false'\n"
        "from pathlib import Path\n"
        "os.environ.setdefault('NBA_HOME', tempfile.mkdtemp(prefix='nba-nb02-'))\n"
        "BASE = Path(os.environ['NBA_HOME'])\n"
        "CUSTOMERS = int(os.environ.get('NB_CUSTOMERS', '25000'))\n"
        "ROUNDS = int(os.environ.get('NB_ROUNDS', '6'))\n"
        "SCENARIOS = os.environ.get('NB_SCENARIOS', 'none launch drift').split()\n"
        "print('workspace', BASE)"
    ),
    new_code_cell(
        "from nba.config import get_settings\n"
        "from pipelines.loop import simulate_loop\n"
        "from pipelines.scenarios import Scenario\n"
        "reports = {}\n"
        "for name in SCENARIOS:  # one workspace per world: each registers its own models\n"
        "    os.environ['NBA_HOME'] = str(BASE / name)\n"
        "    get_settings.cache_clear()\n"
        "    reports[name] = simulate_loop(ROUNDS, BASE / name / 'loop-data',"
        " customers=CUSTOMERS, scenario=Scenario(name))\n"
        "os.environ['NBA_HOME'] = str(BASE)\n"
        "get_settings.cache_clear()\n"
        "columns = ['champion', 'normalised_value', 'judged', 'looks', 'gain_dr', 'gain_dr_low',"
        " 'gain_dr_high', 'verdict', 'challenger', 'challenger_normalised_value']\n"
        "for name, report in reports.items():\n"
        "    print(name)\n"
        "    display(report.frame().set_index('round')[columns].round(3))"
    ),
    new_markdown_cell("## The champion's true value per round, in each world"),
    new_code_cell(
        "%matplotlib inline\n"
        "import matplotlib.pyplot as plt\n"
        "fig, axes = plt.subplots(1, len(reports), figsize=(5 * len(reports), 4), sharey=True,"
        " squeeze=False)\n"
        "for ax, (name, report) in zip(axes[0], reports.items()):\n"
        "    f = report.frame().set_index('round')\n"
        "    ax.plot(f.index, f['normalised_value'], 'o-', label='champion (served)')\n"
        "    trained = f['challenger_normalised_value'].dropna()\n"
        "    ax.plot(trained.index, trained, 's', mfc='none', label='challenger, when trained')\n"
        "    for r in f.index[f['verdict'] == 'promote']:\n"
        "        ax.axvline(r, ls=':', c='g')\n"
        "    if report.drift_round:\n"
        "        ax.axvspan(report.drift_round - 0.5, f.index.max() + 0.5, color='r', alpha=0.06,"
        " label='drifted world')\n"
        "    ax.set_title(name); ax.set_xlabel('round (dotted: a promotion)')\n"
        "    ax.set_xticks(f.index)\n"
        "axes[0][0].set_ylabel('normalised value (0 random, 1 oracle)')\n"
        "axes[0][0].legend(loc='lower right');"
    ),
    new_markdown_cell(
        "## What the gate saw\n\n"
        "Per look, DR's estimate of the challenger's gain per decision with its confidence "
        "sequence: promoted when the lower bound clears 0, retired when the upper bound falls "
        "below it or after four looks."
    ),
    new_code_cell(
        "fig, axes = plt.subplots(1, len(reports), figsize=(5 * len(reports), 3.5),"
        " squeeze=False)\n"
        "for ax, (name, report) in zip(axes[0], reports.items()):\n"
        "    f = report.frame().dropna(subset=['gain_dr_low'])\n"
        "    f = f[f['judged'].notna()]\n"
        "    ax.errorbar(f['round'], f['gain_dr'], yerr=[f['gain_dr'] - f['gain_dr_low'],"
        " f['gain_dr_high'] - f['gain_dr']], fmt='o', capsize=3)\n"
        "    ax.axhline(0, c='k', lw=0.8); ax.set_title(name); ax.set_xlabel('round')\n"
        "axes[0][0].set_ylabel('gain per decision');"
    ),
    new_markdown_cell("## Impact: NBA against the control group (the last world)"),
    new_code_cell(
        "report = list(reports.values())[-1]\n"
        "print('control group report:', report.impact.files[1])\n"
        "report.impact.table[['segment', 'n_nba', 'n_control', 'value_nba', 'value_control',"
        " 'lift', 'lift_low', 'lift_high', 'relative']].round(3)"
    ),
]

IMPACT_REVIEW = [
    new_markdown_cell(
        "# 03 · Impact review\n\n"
        "For marketing: what did the NBA engine recommend, and what was it worth against the "
        "control group? Three views: the **action mix** across the customer base, the "
        "**lift** of the NBA's choices over the control group's (random sensible actions) by "
        "what the NBA would choose and overall, and the **value by customer segment**. Every "
        "lift comes with a 95% interval: a lift whose interval includes 0 is not "
        "established.\n\n"
        "**Two ways to run it.** By default a month in production is simulated first, in a "
        "new workspace of its own, so the notebook runs anywhere. To review your own "
        "workspace, set `NB_REVIEW_HOME` to it and `NB_REVIEW_DATA` to its dataset before "
        "starting the kernel: the notebook then only reads the workspace (it writes no model "
        "version, no decision and no MLflow run there; its own files go to a temporary "
        "folder) and skips the simulation."
    ),
    new_code_cell(
        "import logging, os, tempfile\n"
        "logging.captureWarnings(True)  # the libraries' deprecation notes: not for readers\n"
        "logging.getLogger('py.warnings').setLevel(logging.ERROR)\n"
        "os.environ['MLFLOW_LOGGING_LEVEL'] = 'WARNING'\n"
        "os.environ['MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR'] = 'false'\n"
        "from pathlib import Path\n"
        "import pandas as pd\n"
        "from nba.config import get_settings\n"
        "REVIEW = os.environ.get('NB_REVIEW_HOME')  # a real workspace: read, never written\n"
        "if REVIEW:\n"
        "    HOME, DATA = Path(REVIEW), Path(os.environ['NB_REVIEW_DATA'])\n"
        "    OUT = Path(tempfile.mkdtemp(prefix='nba-nb03-out-'))\n"
        "else:  # a simulated month, in a workspace the notebook creates\n"
        "    HOME = Path(os.environ.get('NB_SIM_HOME') or tempfile.mkdtemp(prefix='nba-nb03-'))\n"
        "    if (HOME / 'mlflow.db').exists():\n"
        "        raise RuntimeError(f'{HOME} holds a workspace already: the simulation writes a'\n"
        "                           ' registry and a decision log, so it needs a new folder')\n"
        "    DATA, OUT = HOME / 'data', HOME\n"
        "os.environ['NBA_HOME'] = str(HOME)\n"
        "get_settings.cache_clear()\n"
        "CUSTOMERS = int(os.environ.get('NB_CUSTOMERS', '10000'))\n"
        "print('workspace', HOME, '(reviewed, read only)' if REVIEW else '(simulated)')"
    ),
    new_markdown_cell(
        "## A month in production (simulated; skipped when reviewing a workspace)\n\n"
        "A simulated customer world; the champion is trained on its history, then serves "
        "four weeks of contacts as the API would: 20% of customers (stable by customer) in "
        "the control group, 10% exploration, every outcome reported. This is "
        "`nba simulate-loop --rounds 1 --control-share 0.2 --epsilon 0.1`."
    ),
    new_code_cell(
        "if not REVIEW:\n"
        "    from pipelines.loop import simulate_loop\n"
        "    loop = simulate_loop(1, DATA, customers=CUSTOMERS, epsilon=0.1, control_share=0.2)\n"
        '    print(f"{loop.rounds[1].logged:,} decisions logged and answered")\n'
        "else:\n"
        "    print('reviewing', HOME, 'as it is: nothing simulated')"
    ),
    new_markdown_cell(
        "## 1. Action mix\n\n"
        "What the champion recommends first for every active customer today (`nba score` "
        "on the whole base): retention gestures, installment offers, information requests, "
        "product offers, or nothing at all."
    ),
    new_code_cell(
        "from pipelines.review.words import family_label\n"
        "from pipelines.score import score\n"
        "scored = score(DATA, OUT / 'base-recommendations.parquet', track=not REVIEW)\n"
        "mix = scored.mix.groupby('family', as_index=False)[['contacts', 'share']].sum()\n"
        "mix['family'] = mix['family'].map(family_label)\n"
        "nothing = pd.DataFrame([{'family': '(nothing)', 'contacts': scored.n_without_action,"
        " 'share': scored.n_without_action / scored.n_contacts}])\n"
        "mix = pd.concat([mix.sort_values('contacts', ascending=False), nothing],"
        " ignore_index=True)\n"
        "print(f'{scored.n_contacts:,} active customers scored with model version '"
        " f'{scored.model_version}')\n"
        "mix.style.format({'contacts': '{:,}', 'share': '{:.1%}'})"
    ),
    new_code_cell(
        "%matplotlib inline\n"
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(7, 3))\n"
        "ax.barh(mix['family'][::-1], mix['share'][::-1] * 100)\n"
        "ax.set_xlabel('% of active customers (first recommendation)')\n"
        "ax.set_title('Action mix across the base');"
    ),
    new_markdown_cell(
        "## 2. Lift over the control group\n\n"
        "Value per decision: the net value of the shown action if the customer accepted it, "
        "else 0. Rows group the decisions by what the NBA would choose for the customer "
        "(logged for control customers too), so each row compares like with like. "
        "`nba impact` writes the same as a report and an MLflow run."
    ),
    new_code_cell(
        "from IPython.display import Image, display\n"
        "from nba.decision_log import DecisionLog\n"
        "from nba.impact import lift_table\n"
        "from nba.tracking import CHAMPION, load_policy, resolve\n"
        "from pipelines.impact import impact_frame, lift_chart\n"
        "log = DecisionLog(get_settings().decision_log)\n"
        "frame, unreported = impact_frame(log, load_policy(resolve(CHAMPION)).catalog)\n"
        "log.close()\n"
        "impact = lift_table(frame)\n"
        "impact['segment'] = impact['segment'].map(lambda f: 'all' if f == 'overall'"
        " else family_label(f))\n"
        "print(f'{len(frame):,} decisions with an outcome ({unreported:,} without)')\n"
        "display(impact.rename(columns={'segment': 'what the NBA would choose'})[["
        "'what the NBA would choose', 'n_nba', 'n_control', 'value_nba', 'value_control',"
        " 'lift', 'lift_low', 'lift_high', 'relative']].round(2))\n"
        "Image(filename=str(lift_chart(impact, OUT / 'lift.png')))"
    ),
    new_markdown_cell(
        "## 3. Value by customer segment\n\n"
        "The same decisions, split by who the customer is: the CRM segment and how long "
        "they have been a customer. Where is choosing well worth most?"
    ),
    new_code_cell(
        "customers = pd.read_parquet(DATA / 'customers.parquet')\n"
        "newest = pd.Timestamp(pd.read_parquet(DATA / 'contacts.parquet')['timestamp'].max())\n"
        "years = (newest - customers['signup_date']).dt.days / 365.25\n"
        "customers['tenure'] = pd.cut(years, [-1, 1, 3, 100],"
        " labels=['under 1 year', '1-3 years', 'over 3 years'])\n"
        "decisions = frame.merge(customers[['customer_id', 'segment', 'tenure']],"
        " on='customer_id', how='left', suffixes=('_family', ''))\n"
        "by_segment = lift_table(decisions[['arm', 'segment', 'value']])\n"
        "by_tenure = lift_table(decisions[['arm', 'tenure', 'value']]"
        ".rename(columns={'tenure': 'segment'}).astype({'segment': str}))\n"
        "columns = ['segment', 'n_nba', 'n_control', 'value_nba', 'value_control', 'lift',"
        " 'lift_low', 'lift_high']\n"
        "display(by_segment[columns].round(2))\n"
        "by_tenure[columns].round(2)"
    ),
    new_code_cell(
        "fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), sharex=True)\n"
        "for ax, table, title in ((axes[0], by_segment, 'CRM segment'),"
        " (axes[1], by_tenure, 'tenure')):\n"
        "    t = table[table['segment'] != 'overall']\n"
        "    err = [t['lift'] - t['lift_low'], t['lift_high'] - t['lift']]\n"
        "    ax.barh(t['segment'], t['lift'], xerr=err, capsize=4)\n"
        "    ax.axvline(0, c='k', lw=0.8)\n"
        "    ax.set_title(f'Lift per decision by {title} (95% interval)')\n"
        "axes[0].set_xlabel('value per decision, NBA - control')\n"
        "axes[1].set_xlabel('value per decision, NBA - control')\n"
        "fig.tight_layout()"
    ),
    new_markdown_cell(
        "## Reading it\n\n"
        "- **Lift** is what choosing with the NBA earned per decision over a random sensible "
        "action; **relative** is the same as a share of the control group's value.\n"
        "- A row with few control decisions has a wide interval: widen the control "
        "group (`NBA_CONTROL_SHARE`) or wait for more decisions before concluding.\n"
        "- The values are the net values the catalog's expressions give an accepted action, "
        "not booked revenue.\n"
        "- To see which model made these decisions and how it was evaluated, open MLflow "
        "(`nba ui`; walk-through in `docs/mlflow_review.md`)."
    ),
]

SMALL_WORLDS = {
    "01-profiles-and-models.ipynb": {"NB_CUSTOMERS": "3000"},
    "02-learning-loop.ipynb": {"NB_CUSTOMERS": "3000", "NB_ROUNDS": "3"},
    "03-impact-review.ipynb": {"NB_CUSTOMERS": "3000"},
}
"""The worlds the committed outputs come from: small, so that regenerating takes minutes."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--execute",
        action="store_true",
        help="also run each notebook on a small simulated world and save its outputs",
    )
    args = parser.parse_args()
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    for name, cells in (
        ("01-profiles-and-models.ipynb", PROFILES_AND_MODELS),
        ("02-learning-loop.ipynb", LEARNING_LOOP),
        ("03-impact-review.ipynb", IMPACT_REVIEW),
    ):
        nb = new_notebook(cells=cells, metadata=meta)
        if args.execute:
            execute(nb, name)
        nbformat.write(nb, HERE / name)


def execute(nb: nbformat.NotebookNode, name: str) -> None:
    """Run ``nb`` in a fresh workspace with the small world of ``name``; outputs kept."""
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="nba-notebook-") as home:
        env = {**SMALL_WORLDS[name], "NBA_HOME": home, "NB_SIM_HOME": str(Path(home) / "sim")}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            started = time.perf_counter()
            NotebookClient(nb, timeout=3600, kernel_name="python3",
                           resources={"metadata": {"path": str(HERE)}}).execute()  # fmt: skip
            print(f"{name}: ran in {time.perf_counter() - started:.0f} s")
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


if __name__ == "__main__":
    main()
