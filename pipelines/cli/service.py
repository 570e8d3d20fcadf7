"""The real-time API and its keys, and the MLflow UI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from nba.config import get_settings
from nba.exceptions import NBAError
from pipelines.cli.app import app, console, err, keys_app

if TYPE_CHECKING:
    from nba.decision_log import DecisionLog


@app.command()
def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    wait: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the UI to answer.")
    ] = 180,
) -> None:
    """Open the MLflow UI on the workspace's tracking store (experiments, registry).

    Prints the address once the UI answers. One server process and no job runners (MLflow's
    GenAI jobs are not used): a footprint that fits a small machine. Stop it with Ctrl-C.
    """
    from nba.tracking import configure, tracking_uri

    experiment = configure()  # tags a workspace made before them; follows a copied one
    process = start_mlflow_ui(tracking_uri(), host, port)
    try:
        wait_until_answering(process, host, port, wait)
        console.print(
            f"MLflow UI: http://{host}:{port}/#/experiments/{experiment}"
            "?workflowType=machine_learning",
            soft_wrap=True,
        )
        console.print(
            f"(the engine's runs; the live version under Model registry; store "
            f"{tracking_uri()}; Ctrl-C stops it)"
        )
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def start_mlflow_ui(store: str, host: str, port: int) -> subprocess.Popen[bytes]:
    """MLflow's server with one worker and no job runners, quiet unless it fails."""
    import socket

    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise NBAError(f"port {port} on {host} is already in use: pick another with --port")
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = get_settings().home_dir / "mlflow-ui.log"
    with log.open("ab") as sink:
        return subprocess.Popen(
            [str(mlflow_cli), "server", "--backend-store-uri", store, "--host", host,
             "--port", str(port), "--workers", "1"],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_until_answering(
    process: subprocess.Popen[bytes], host: str, port: int, timeout: float
) -> None:
    import time
    import urllib.request

    log = get_settings().home_dir / "mlflow-ui.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NBAError(
                f"the MLflow UI stopped at start (exit code {process.returncode}); see {log}"
            )
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise NBAError(f"the MLflow UI did not answer within {timeout:.0f} s; see {log}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            show_default="one per core",
            help="Worker processes sharing the port, each with its own copy of the model "
            "(about 500-600 MB for the demo's); more answers per second on more cores.",
        ),
    ] = None,
) -> None:
    """Serve the real-time API (recommendations, outcomes) with nba-policy@champion.

    One uvicorn worker per core unless --workers says otherwise; they share the decision
    log, the keys and reloads (POST /admin/reload reaches every worker within about a
    second). JSON logs on stderr. Settings:
    NBA_AUTH, NBA_FEATURE_BUDGET_MS, NBA_DECISION_LOG_URL, NBA_DECISION_LOG_DEADLINE_MS,
    NBA_ONLINE_STORE, NBA_MODEL_POLL_SECONDS, NBA_REQUEST_TIMEOUT_SECONDS, NBA_MAX_CONNECTIONS,
    NBA_AUTH_FAILURES_PER_MINUTE (see the README).
    """
    from serving.logs import configure_json_logging
    from serving.server import run

    settings = get_settings()
    _decision_log().close()
    configure_json_logging(settings.log_level)
    if not settings.auth:
        err.print("[yellow]warning:[/] NBA_AUTH=false: the API accepts requests without a key")
    run(settings, host, port, workers or _cores())


def _cores() -> int:
    """The cores this process may run on (a container's limit, not the host's count)."""
    return max(1, len(os.sched_getaffinity(0)))


def _decision_log() -> DecisionLog:
    from nba.decision_log import DecisionLog

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

    if not revoke_key(_decision_log(), key):
        raise NBAError(f"no active key with id '{key_id_of(key)}' (see `nba keys list`)")
    console.print(f"revoked key {key_id_of(key)}")


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (ids, scopes, labels; never the secrets)."""
    from serving.keys import list_keys

    keys = list_keys(_decision_log())
    table = Table(title="API keys", title_justify="left")
    for col in ("key id", "scopes", "label", "created (UTC)", "revoked (UTC)"):
        table.add_column(col)
    for k in keys:
        table.add_row(
            k.key_id, ",".join(k.scopes), k.label or "", k.created_at, k.revoked_at or ""
        )
    console.print(table)
