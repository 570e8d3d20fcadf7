"""Writes the numbered notebooks from their cell sources (kept here so diffs stay readable).

    python notebooks/build_notebooks.py
"""

from __future__ import annotations

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
        "All state goes to `NBA_HOME` (a temporary folder unless you set it)."),
    new_code_cell(
        "import os, tempfile\n"
        "from pathlib import Path\n"
        "os.environ.setdefault('NBA_HOME', tempfile.mkdtemp(prefix='nba-nb01-'))\n"
        "HOME = Path(os.environ['NBA_HOME'])\n"
        "DATA = HOME / 'nb01-data'\n"
        "CUSTOMERS = int(os.environ.get('NB_CUSTOMERS', '4000'))\n"
        "print('workspace', HOME)"),
    new_markdown_cell("## 1. A customer world in the contract's format"),
    new_code_cell(
        "from nba.simulate import SimulationConfig\n"
        "from pipelines.simulate import run_simulation\n"
        "from pipelines.validate import validate\n"
        "config = SimulationConfig(customers=CUSTOMERS, months=8, seed=1, holdout_weeks=3,"
        " history_months=3)\n"
        "summary = run_simulation(config, DATA)\n"
        "report = validate(DATA)\n"
        "summary, report.tables"),
    new_markdown_cell("## 2. Point-in-time profiles\n\n"
                      "Profiles are computed as of every decision and contact, written to "
                      "Feast's offline store, and the newest one per customer is loaded "
                      "online."),
    new_code_cell(
        "import pandas as pd\n"
        "from nba.config import get_settings\n"
        "from pipelines.features import build_features\n"
        "build = build_features(DATA)\n"
        "profiles = pd.read_parquet(get_settings().profiles_path)\n"
        "print(build.n_profile_rows, 'profile rows,', build.n_features, 'features')\n"
        "profiles[['n_complaint_30d', 'n_missed_payment_90d', 'sentiment_mean_90d',"
        " 'tenure_days', 'n_active_products']].describe().round(2)"),
    new_markdown_cell("Customers who complain get retention offers accepted more often: the "
                      "pattern the model has to find."),
    new_code_cell(
        "decisions = pd.read_parquet(DATA / 'decisions.parquet')\n"
        "decisions['timestamp'] = decisions['timestamp'].dt.tz_convert(None)\n"
        "joined = decisions.merge(profiles.assign(timestamp=profiles.event_timestamp.dt"
        ".tz_convert(None)), on=['customer_id', 'timestamp'])\n"
        "joined['accepted'] = joined.outcome == 'accepted'\n"
        "joined['family'] = joined.action_id.str.split('_').str[0]\n"
        "(joined.assign(complained=joined.n_complaint_90d > 0)\n"
        "       .pivot_table(index='family', columns='complained', values='accepted')"
        ".round(3))"),
    new_markdown_cell("## 3. Train, register, compare with the baselines"),
    new_code_cell(
        "from pipelines.train import train\n"
        "result = train(DATA)\n"
        "print('registered version', result.version, 'champion' if result.champion else '')\n"
        "pd.DataFrame({'value per contact': result.truth.values,"
        " 'normalised': result.truth.normalised}).round(3)"),
    new_code_cell(
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "ax = pd.Series(result.truth.normalised).drop('oracle').sort_values().plot.barh("
        "title='Normalised value on held-out contacts (1 = oracle)')\n"
        "ax.axvline(0.8, ls='--', c='k');"),
    new_code_cell("result.truth.by_family.round(3)"),
    new_markdown_cell("## 4. What an agent sees"),
    new_code_cell(
        "from pipelines.score import score\n"
        "scored = score(DATA, HOME / 'nb01-recs.parquet', DATA / 'contacts.parquet')\n"
        "print(scored.n_contacts, 'contacts scored in', round(scored.seconds, 1), 's ->', scored.out)\n"
        "scored.examples[['contact_id', 'rank', 'name', 'propensity', 'value',"
        " 'reasons']].head(9)"),
    new_code_cell("scored.mix"),
]


def main() -> None:
    nb = new_notebook(cells=PROFILES_AND_MODELS, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, HERE / "01-profiles-and-models.ipynb")


if __name__ == "__main__":
    main()
