"""The ``nba`` command line: thin typer commands over the pipeline stages.

Every command exits 0 on success and 2 on bad input (with a message naming the file,
column and rule), so scripts can tell "your data is wrong" from a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from nba.config import get_settings
from nba.exceptions import NBAError
from nba.ope import Bootstrap
from nba.policy.evaluation import LABELS, POLICIES
from nba.simulate import SimulationConfig
from pipelines.evaluate import DEFAULT_SHARE, Comparison
from pipelines.features import FeatureBuildReport, build_features
from pipelines.impact import ImpactReport, format_lift, format_relative, format_value
from pipelines.score import DEFAULT_CHUNK, ScoreReport, score
from pipelines.simulate import run_simulation
from pipelines.train import TrainReport, train
from pipelines.validate import ValidationReport, validate

if TYPE_CHECKING:
    from serving.decision_log import DecisionLog

app = typer.Typer(
    name="nba",
    help="Next-Best-Action engine: simulate, validate, build profiles, train, score.",
    no_args_is_help=True,
    add_completion=False,
)
features_app = typer.Typer(
    help="Customer profiles in the Feast feature store.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
keys_app = typer.Typer(help="API keys of the real-time API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

console = Console()
err = Console(stderr=True)


def _fail(exc: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except NBAError as exc:
        _fail(exc)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory to write the dataset to.")],
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 25_000,
    months: Annotated[int, typer.Option(min=2, help="Months of history.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 42,
    holdout_weeks: Annotated[
        int, typer.Option(help="Final weeks written as held-out contacts (no decisions).")
    ] = 4,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Write a synthetic customer world in the data contract's format."""
    if fmt not in ("parquet", "csv"):
        _fail(ValueError(f"--format must be 'parquet' or 'csv', got '{fmt}'"))
    config = SimulationConfig(
        customers=customers, months=months, seed=seed, holdout_weeks=holdout_weeks
    )
    with _errors(), _progress("simulating", "weeks") as progress:
        started = time.perf_counter()
        summary = run_simulation(config, out, fmt=_format(fmt), progress=progress)
    _print_counts(f"Simulated world in {out} ({time.perf_counter() - started:.1f} s)", summary)


def _format(fmt: str) -> Literal["parquet", "csv"]:
    return "csv" if fmt == "csv" else "parquet"


@app.command("validate")
def validate_cmd(
    data: Annotated[Path, typer.Argument(help="Dataset directory (see the data contract).")],
) -> None:
    """Check a dataset directory against the data contract; exit 2 if it breaks it."""
    with _errors():
        report = validate(data)
    _print_validation(report)


@features_app.command("build")
def features_build(
    data: Annotated[Path, typer.Option(help="Dataset directory.")],
    register: Annotated[
        bool, typer.Option(help="Also run feast apply and load the online store.")
    ] = True,
) -> None:
    """Compute point-in-time profiles, write the offline store, apply and load online."""
    with _errors():
        report = _build_with_status(data, register)
    _print_features(report)


def _build_with_status(data: Path, register: bool) -> FeatureBuildReport:
    with err.status("building features") as status:
        return build_features(data, step=lambda s: status.update(s), register=register)


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option(help="Dataset directory with a decisions table.")],
    seed: Annotated[int, typer.Option(help="Seed of the model fit.")] = 0,
) -> None:
    """Train the response model, evaluate the policy, log to MLflow, register nba-policy."""
    with _errors():
        report = _train_with_status(data, seed)
    _print_training(report)


def _train_with_status(data: Path, seed: int) -> TrainReport:
    with err.status("training") as status:
        return train(data, step=lambda s: status.update(s), seed=seed)


@app.command("retrain")
def retrain_cmd(
    data: Annotated[Path, typer.Option(help="The original dataset the champion learnt from.")],
    seed: Annotated[int, typer.Option(help="Seed of the model fit.")] = 0,
    split: Annotated[
        str,
        typer.Option(
            help="shuffled (learn from the newest feedback too) or time (fit on the oldest, "
            "test on the newest)."
        ),
    ] = "shuffled",
) -> None:
    """Train a challenger on the original data plus the outcomes reported to the API, and
    register it as nba-policy@challenger (@champion stays)."""
    from pipelines.retrain import retrain

    with _errors(), err.status("retraining") as status:
        status.update("reading the decision log's feedback")
        if split not in ("time", "shuffled"):
            raise NBAError(f"--split must be 'time' or 'shuffled', not {split!r}")
        report = retrain(data, seed=seed, split="time" if split == "time" else "shuffled")
    console.print(
        f"learnt from {report.n_feedback:,} reported outcomes and {report.n_original:,} "
        f"original decisions (dataset {report.data_dir})"
    )
    _print_training(report.train)
    console.print(f"nba-policy@challenger -> version {report.version}")


# Options shared by the commands that replay policies on logged decisions.
ShareOption = Annotated[
    float, typer.Option(help="Newest share of the logged decisions to evaluate on.")
]
SinceOption = Annotated[
    datetime | None,
    typer.Option(help="Evaluate on decisions after this moment (UTC) instead of --share."),
]


@app.command()
def promote(
    version: Annotated[
        str | None, typer.Option(help="Registered version of nba-policy to point the alias at.")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias to point at it.")] = "champion",
    if_better: Annotated[
        bool,
        typer.Option(
            "--if-better",
            help="Move @champion to @challenger only if the challenger's estimated gain on "
            "logged data has a lower confidence bound above --min-gain (needs --data).",
        ),
    ] = False,
    data: Annotated[Path | None, typer.Option(help="Dataset with the logged decisions.")] = None,
    estimator: Annotated[str, typer.Option(help="Gate estimator: dr or snipw.")] = "dr",
    min_gain: Annotated[float, typer.Option(help="Least gain per decision to promote.")] = 0.0,
    level: Annotated[
        float,
        typer.Option(
            min=0.5, max=0.999, help="Confidence level of the gain's interval (two-sided)."
        ),
    ] = 0.95,
    share: ShareOption = DEFAULT_SHARE,
    since: SinceOption = None,
) -> None:
    """Point an alias (default @champion) at a version, or promote @challenger
    --if-better."""
    from nba.tracking import MODEL_NAME, set_alias

    if if_better:
        if data is None or version is not None:
            _fail(ValueError("--if-better needs --data DIR (and no --version)"))
        assert data is not None
        from pipelines.evaluate import promote_if_better

        with _errors(), err.status("evaluating champion and challenger on logged data"):
            c = promote_if_better(
                data,
                estimator=estimator,
                min_gain=min_gain,
                share=share,
                since=since,
                bootstrap=Bootstrap(level=level),
            )
        _print_comparison(c)
        verdict = "promoted" if c.promoted else "not promoted"
        console.print(
            f"gate ({c.gate}): challenger version {c.challenger.version} {verdict}; "
            f"{MODEL_NAME}@champion -> version "
            f"{c.challenger.version if c.promoted else c.champion.version} (MLflow run {c.run_id})"
        )
        return
    if version is None:
        _fail(ValueError("give --version V, or --if-better --data DIR"))
    assert version is not None
    with _errors():
        set_alias(alias, version)
    console.print(f"{MODEL_NAME}@{alias} -> version {version}")


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Option(help="Dataset with the logged decisions.")],
    share: ShareOption = DEFAULT_SHARE,
    since: SinceOption = None,
) -> None:
    """Estimate @champion's and @challenger's value on logged data (DR, SNIPW, IPW, DM with
    bootstrap intervals) and the challenger's gain; logged to MLflow."""
    from pipelines.evaluate import compare_policies, log_comparison

    with _errors(), err.status("evaluating champion and challenger on logged data"):
        c = compare_policies(data, share=share, since=since)
        c.run_id = log_comparison(c)
    _print_comparison(c)
    console.print(f"MLflow run {c.run_id}")


def _print_comparison(c: Comparison) -> None:
    console.print(
        f"{c.n_rounds:,} logged decisions from {c.window[0]} to {c.window[1]}: "
        f"champion version {c.champion.version}, challenger version {c.challenger.version}"
    )
    level = next(iter(c.gain.values())).level
    table = Table(
        title=f"estimated value per decision ({level:.0%} interval)", title_justify="left"
    )
    for col in ("estimator", "champion", "challenger", "gain"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    for name, gain in c.gain.items():
        old, new = c.values["champion"][name], c.values["challenger"][name]
        table.add_row(
            name.upper(),
            f"{old.value:.2f} [{old.low:.2f}, {old.high:.2f}]",
            f"{new.value:.2f} [{new.low:.2f}, {new.high:.2f}]",
            f"{gain.value:+.2f} [{gain.low:+.2f}, {gain.high:+.2f}]",
        )
    console.print(table)


@app.command("simulate-loop")
def simulate_loop_cmd(
    rounds: Annotated[int, typer.Option(min=1, help="Loop rounds after round 0.")] = 3,
    out: Annotated[
        Path | None,
        typer.Option(help="Where the simulated world goes [default: NBA_HOME/loop-data]."),
    ] = None,
    customers: Annotated[int, typer.Option(min=100, help="Simulated customers.")] = 25_000,
    months: Annotated[
        int, typer.Option(min=2, help="Months of random-policy history round 0 learns from.")
    ] = 12,
    weeks_per_round: Annotated[
        int, typer.Option(min=1, help="Held-out weeks of contacts served per round.")
    ] = 4,
    epsilon: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Exploration while serving.")
    ] = 0.3,
    control_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of customers in the control group.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the world and the loop.")] = 42,
) -> None:
    """The closed loop in simulation: serve -> outcomes -> retrain -> evaluate -> promote,
    with the champion's true value per round (use a fresh NBA_HOME: it registers models
    and writes the decision log)."""
    from pipelines.loop import simulate_loop

    target = out or get_settings().home_dir / "loop-data"
    with _errors(), err.status("simulating the loop") as status:
        report = simulate_loop(
            rounds,
            target,
            customers=customers,
            months=months,
            weeks_per_round=weeks_per_round,
            epsilon=epsilon,
            control_share=control_share,
            seed=seed,
            step=lambda m: status.update(m),
        )
    table = Table(title="the learning loop (true values from the simulator)", title_justify="left")
    for col in (
        "round",
        "champion",
        "challenger",
        "promoted",
        "normalised value",
        "challenger's value",
        "value/contact",
        "logged",
        "DR gain [low]",
        "DR error on champion",
    ):
        table.add_column(col, justify="right")  # fmt: skip
    for r in report.rounds:
        table.add_row(
            str(r.round),
            r.champion,
            r.challenger or "",
            "" if r.promoted is None else ("yes" if r.promoted else "no"),
            f"{r.normalised_value:.3f}",
            ""
            if r.challenger_normalised_value is None
            else f"{r.challenger_normalised_value:.3f}",
            f"{r.value_per_contact:.2f}",
            f"{r.logged:,}",
            "" if r.gain_dr is None else f"{r.gain_dr:+.2f} [{r.gain_dr_low:+.2f}]",
            "" if r.dr_relative_error is None else f"{r.dr_relative_error:.1%}",
        )
    console.print(table)
    console.print(f"MLflow run {report.run_id} (simulate-loop); world in {report.data_dir}")
    if report.impact is not None:
        _print_impact(report.impact)


@app.command("impact")
def impact_cmd(
    since: Annotated[
        datetime | None, typer.Option(help="Only decisions after this moment (UTC).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for impact.md, impact.html and lift.png.")
    ] = None,
) -> None:
    """Lift of the NBA over the control group, per action family and overall, from the
    decision log (95% intervals, delta method); written as Markdown/HTML with a chart and
    logged to MLflow."""
    from pipelines.impact import impact_report

    with _errors():
        report = impact_report(since=since, out=out)
    _print_impact(report)


def _print_impact(report: ImpactReport) -> None:
    table = Table(title="impact: NBA against the control group", title_justify="left")
    for col in (
        "segment",
        "NBA",
        "control",
        "value NBA",
        "value control",
        "lift [95%]",
        "relative [95%]",
    ):
        table.add_column(col, justify="left" if col == "segment" else "right")  # fmt: skip
    for _, r in report.table.iterrows():
        table.add_row(
            str(r["segment"]), f"{r['n_nba']:,}", f"{r['n_control']:,}",
            format_value(r["value_nba"]), format_value(r["value_control"]),
            format_lift(r), format_relative(r),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"{report.n_decisions:,} decisions with an outcome ({report.n_unreported:,} without); "
        f"report: {report.files[1]} (MLflow run {report.run_id})"
    )


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
        _fail(ValueError(f"--engine must be 'local' or 'spark', not {engine!r}"))
    with _errors(), _progress("scoring", "contacts") as progress:
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
    _print_score(report)


class _CountColumn(ProgressColumn):
    """Units done of the total (blank until the total is known)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text(f"{task.completed:,.0f}/{task.total:,.0f} {self.unit}")


class _RateColumn(ProgressColumn):
    """Units per second."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else "")


@contextmanager
def _progress(label: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr with done/total, rate and ETA; yields ``update(done, total)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _CountColumn(unit),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command()
def ui(port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000) -> None:
    """Open the MLflow UI on the workspace's tracking store (experiments, registry)."""
    import subprocess
    import sys
    from pathlib import Path as _Path

    from nba.tracking import tracking_uri

    mlflow_cli = _Path(sys.executable).with_name("mlflow")
    console.print(f"MLflow UI on http://127.0.0.1:{port} (store {tracking_uri()})")
    subprocess.run(
        [
            str(mlflow_cli),
            "ui",
            "--backend-store-uri",
            tracking_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        check=False,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve the real-time API (recommendations, outcomes) with nba-policy@champion.

    One uvicorn worker; JSON logs on stderr. Settings: NBA_AUTH, NBA_FEATURE_BUDGET_MS,
    NBA_DECISION_LOG_URL, NBA_ONLINE_STORE, NBA_MODEL_POLL_SECONDS (see the README).
    """
    import uvicorn

    from serving.app import create_app
    from serving.logs import configure_json_logging

    settings = get_settings()
    with _errors():  # a wrong NBA_DECISION_LOG_URL: one clear line, not a start-up trace
        _decision_log().close()
    configure_json_logging(settings.log_level)
    if not settings.auth:
        err.print("[yellow]warning:[/] NBA_AUTH=false: the API accepts requests without a key")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # the app writes its own JSON access line (no customer data)
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )


def _decision_log() -> DecisionLog:
    from serving.decision_log import DecisionLog

    return DecisionLog(get_settings().decision_log)


@keys_app.command("create")
def keys_create(
    scopes: Annotated[
        str, typer.Option(help="Comma-separated scopes: recommend, outcomes, admin.")
    ] = "recommend,outcomes",
    label: Annotated[str | None, typer.Option(help="Who or what the key is for.")] = None,
) -> None:
    """Create an API key and print it once (the last word of the last line)."""
    from serving.keys import create_key, key_id_of, parse_scopes

    with _errors():
        wanted = parse_scopes(scopes)
        key = create_key(_decision_log(), wanted, label)
    console.print(f"key id {key_id_of(key)}, scopes {','.join(wanted)}; it is shown only once:")
    print(f"X-API-Key: {key}")


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key id (or the whole key).")],
) -> None:
    """Revoke an API key: the next request with it gets 401."""
    from serving.keys import key_id_of, revoke_key

    with _errors():
        if not revoke_key(_decision_log(), key):
            raise NBAError(f"no active key with id '{key_id_of(key)}' (see `nba keys list`)")
    console.print(f"revoked key {key_id_of(key)}")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (ids, scopes, labels; never the secrets)."""
    from serving.keys import list_keys

    with _errors():
        keys = list_keys(_decision_log())
    table = Table(title="API keys", title_justify="left")
    for col in ("key id", "scopes", "label", "created (UTC)", "revoked (UTC)"):
        table.add_column(col)
    for k in keys:
        table.add_row(
            k.key_id, ",".join(k.scopes), k.label or "", k.created_at, k.revoked_at or ""
        )
    console.print(table)


@app.command()
def demo(
    out: Annotated[
        Path | None,
        typer.Option(help="Where the demo dataset goes [default: NBA_HOME/demo-data]."),
    ] = None,
    customers: Annotated[int, typer.Option(min=1)] = 25_000,
    seed: Annotated[int, typer.Option()] = 42,
) -> None:
    """The main job end to end on the embedded default: simulate, validate, build
    features, train and register the policy, score the held-out contacts."""
    settings = get_settings()
    out = out or settings.home_dir / "demo-data"
    console.rule("[bold]NBA engine demo")
    console.print(f"workspace (NBA_HOME): {settings.home_dir}")
    started = time.perf_counter()
    with _errors():
        console.print(f"\n[bold]1. simulate[/] {customers} customers x 12 months, seed {seed}")
        with _progress("simulating", "weeks") as progress:
            summary = run_simulation(
                SimulationConfig(customers=customers, seed=seed), out, progress=progress
            )
        _print_counts(f"dataset written to {out}", summary)
        console.print("\n[bold]2. validate[/] against the data contract")
        _print_validation(validate(out))
        console.print("\n[bold]3. features[/] point-in-time profiles into Feast")
        _print_features(_build_with_status(out, register=True))
        console.print("\n[bold]4. train[/] response model, evaluation, MLflow registry")
        _print_training(_train_with_status(out, seed))
        console.print("\n[bold]5. score[/] the held-out contacts with nba-policy@champion")
        with _progress("scoring", "contacts") as progress:
            report = score(
                out,
                settings.home_dir / "recommendations.parquet",
                out / "contacts.parquet",
                progress=progress,
            )
        _print_score(report)
        _print_examples(report, 3)
        console.print("\n[bold]6. batch score[/] the whole active base (nba score)")
        with _progress("scoring the base", "contacts") as progress:
            base = score(
                out, settings.home_dir / "base-recommendations.parquet", progress=progress
            )
        _print_score(base)
    console.rule(f"demo finished in {time.perf_counter() - started:.0f} s")
    console.print(
        "next: try it as an agent would (see README, 'The agent desk'):\n"
        "  .venv/bin/nba keys create --scopes recommend,outcomes   # copy the key it prints\n"
        "  .venv/bin/nba serve --port 8000\n"
        "  then open http://127.0.0.1:8000/desk/ in a browser and paste the key\n"
        "  (the API's reference: http://127.0.0.1:8000/docs)"
    )


def _print_counts(title: str, counts: dict[str, int | float]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in counts.items():
        table.add_row(k.replace("_", " "), f"{v:,.2f}" if isinstance(v, float) else f"{v:,}")
    console.print(table)


def _print_validation(report: ValidationReport) -> None:
    table = Table(title=f"{report.data_dir}: valid", title_justify="left")
    table.add_column("table")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, (file, rows) in report.tables.items():
        table.add_row(name, file, f"{rows:,}")
    console.print(table)
    console.print(f"catalog: {report.catalog_source} ({report.n_actions} actions)")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")


def _print_features(r: FeatureBuildReport) -> None:
    table = Table(title="customer profiles", title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("customers", f"{r.n_customers:,}")
    table.add_row("profile rows (customer x as-of time)", f"{r.n_profile_rows:,}")
    table.add_row("features per profile", str(r.n_features))
    table.add_row("online profiles as of", r.as_of_latest.isoformat())
    table.add_row("offline store", str(r.offline_path))
    table.add_row("online store", r.online_store)
    for step, secs in r.seconds.items():
        table.add_row(f"time: {step.replace('_', ' ')}", f"{secs:.1f} s")
    console.print(table)


def _print_training(r: TrainReport) -> None:
    m = r.metrics
    status = "and made @champion" if r.champion else "(no alias; use nba promote)"
    console.print(f"registered nba-policy version {r.version} {status}; MLflow run {r.run_id}")
    console.print(
        f"trained on {r.n_decisions:,} decisions ({r.window[0]} .. {r.window[1]}); "
        f"test period AUC {m['auc']:.3f}, calibration error {m['ece']:.3f}"
    )
    ranking = (
        f"ranks by what each action changes over {r.metrics.get('horizon_days', 180):.0f} days"
        if r.objective == "incremental"
        else "ranks by chance of a yes x value (acceptance)"
    )
    console.print(f"the policy {ranking}")
    if r.objective_note:
        console.print(f"[yellow]note:[/] {r.objective_note}")
    if r.truth is not None:
        t = Table(
            title="policy value on the held-out contacts (vs the simulator's oracle)",
            title_justify="left",
        )
        t.add_column("policy")
        t.add_column("value per contact", justify="right")
        t.add_column("normalised", justify="right")
        t.add_column("answered with nothing", justify="right")
        for name in POLICIES:
            share = r.truth.nothing_share.get(name)
            t.add_row(
                LABELS[name],
                f"{r.truth.values[name]:.2f}",
                f"{r.truth.normalised[name]:.3f}",
                "" if share is None else f"{share:.1%}",
            )
        console.print(t)
        console.print(
            f"{r.truth.n_contacts:,} held-out contacts; Monte Carlo error of the NBA's "
            f"normalised value +-{r.truth.mc_error:.3f}; retention spend per customer kept: "
            f"NBA {r.truth.gesture_spend_per_kept.get('nba', float('nan')):.0f}, oracle "
            f"{r.truth.gesture_spend_per_kept.get('oracle', float('nan')):.0f}"
        )
        fam = Table(title="normalised value by what the oracle would choose", title_justify="left")
        for col in ("oracle's choice", "contacts", "NBA", "acceptance-only", "product-first"):
            fam.add_column(col, justify="left" if col == "oracle's choice" else "right")
        for family, row in r.truth.by_family.iterrows():
            fam.add_row(
                str(family).replace("_", " "),
                f"{int(row['contacts']):,}",
                f"{row['nba']:.3f}",
                f"{row['acceptance_only']:.3f}",
                f"{row['product_first']:.3f}",
            )
        console.print(fam)
    else:
        console.print(
            f"logged-data value per contact (SNIPW): NBA "
            f"{m['logged_value_nba_snipw']:.2f} vs logging policy "
            f"{m['logged_value_logging_policy']:.2f}"
        )


def _print_score(r: ScoreReport) -> None:
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}")
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


def _print_examples(r: ScoreReport, n: int) -> None:
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


if __name__ == "__main__":
    app()
