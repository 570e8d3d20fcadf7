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

LEARNING_LOOP = [
    new_markdown_cell(
        "# 02 · The learning loop\n\n"
        "Serve, log, learn, evaluate, promote: the closed loop on a simulated world whose "
        "logging policy was random. Round 0's champion learnt from the random log only; each "
        "round serves a slice of new contacts with the champion (exploring with epsilon-greedy "
        "and keeping a control group), draws the outcomes from the simulator's ground truth, "
        "judges the previous round's challenger on this round's log (DR, lower 95% bound "
        "above 0), promotes it only if it passes, and trains a new challenger on all feedback. "
        "True values are measured on held-out contacts that are never served.\n\n"
        "All state goes to `NBA_HOME` (a temporary folder unless you set it). The same runs "
        "from the command line: `nba simulate-loop --rounds 3`."),
    new_code_cell(
        "import os, tempfile\n"
        "from pathlib import Path\n"
        "os.environ.setdefault('NBA_HOME', tempfile.mkdtemp(prefix='nba-nb02-'))\n"
        "HOME = Path(os.environ['NBA_HOME'])\n"
        "CUSTOMERS = int(os.environ.get('NB_CUSTOMERS', '25000'))\n"
        "ROUNDS = int(os.environ.get('NB_ROUNDS', '3'))\n"
        "print('workspace', HOME)"),
    new_code_cell(
        "from pipelines.loop import simulate_loop\n"
        "report = simulate_loop(ROUNDS, HOME / 'loop-data', customers=CUSTOMERS, epsilon=0.3,"
        " control_share=0.1)\n"
        "rounds = report.frame().set_index('round')\n"
        "rounds[['champion', 'challenger', 'promoted', 'normalised_value',"
        " 'challenger_normalised_value', 'logged', 'gain_dr', 'gain_dr_low',"
        " 'dr_relative_error']].round(3)"),
    new_markdown_cell("## The policy's true value per round"),
    new_code_cell(
        "%matplotlib inline\n"
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(7, 4))\n"
        "ax.plot(rounds.index, rounds['normalised_value'], 'o-', label='champion (served)')\n"
        "ax.plot(rounds.index[1:], rounds['challenger_normalised_value'].iloc[1:], 's--',"
        " label='challenger trained this round')\n"
        "ax.axhline(0.8, ls=':', c='k', label='0.80')\n"
        "ax.set_xlabel('round'); ax.set_ylabel('normalised value (0 random, 1 oracle)')\n"
        "ax.set_xticks(rounds.index); ax.legend(); ax.set_title('True value of the policy');"),
    new_markdown_cell("## How well did off-policy evaluation estimate the champion?"),
    new_code_cell(
        "rounds[['logged', 'dr_estimate', 'true_value_on_log', 'dr_relative_error']]"
        ".iloc[1:].round(3)"),
    new_markdown_cell("## Impact: NBA against the control group"),
    new_code_cell(
        "print('control group report:', report.impact.files[1])\n"
        "report.impact.table[['segment', 'n_nba', 'n_control', 'value_nba', 'value_control',"
        " 'lift', 'lift_low', 'lift_high', 'relative']].round(3)"),
]


def main() -> None:
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(
        new_notebook(cells=PROFILES_AND_MODELS, metadata=meta),
        HERE / "01-profiles-and-models.ipynb",
    )
    nbformat.write(
        new_notebook(cells=LEARNING_LOOP, metadata=meta), HERE / "02-learning-loop.ipynb"
    )


if __name__ == "__main__":
    main()
