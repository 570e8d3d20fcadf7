"""The ``nba`` command line's frame: the Typer apps, the consoles, progress bars and the
one error handler.

Every command exits 0 on success and 2 on an error the user can fix (bad data, wrong
order of steps, missing state, bad settings), with a one-line cause and a hint; scripts
tell "your input is wrong" from a crash by the exit code. No traceback reaches the user:
anything unforeseen is one line too (exit 1), with the details in a crash report under
``NBA_HOME/logs``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from typer.core import TyperGroup
from typer.exceptions import TyperException

from nba.exceptions import NBAError

# The console shows the engine's own lines; MLflow's set-up chatter ("Creating initial
# MLflow database tables...") is not for the user. Set before MLflow is first imported.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

PIPED_WIDTH = 160
"""Width for output that goes to a file or a pipe: rich would assume 80 columns there,
cutting paths in tables and wrapping lines mid-word in a log."""


def _console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, width=PIPED_WIDTH, soft_wrap=True)


console = _console()
err = _console(stderr=True)


def fail(message: object) -> NoReturn:
    """Print ``message`` as the command's one-line error and exit 2."""
    err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _crash_report(exc: BaseException) -> Path | None:
    """Write the traceback of an unforeseen error where a maintainer can find it."""
    try:
        from nba.config import get_settings

        folder = get_settings().home_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.txt"
        path.write_text("".join(traceback.format_exception(exc)))
        return path
    except Exception:  # the report is a courtesy; failing to write it must not mask exc
        return None


class _Commands(TyperGroup):
    """The root group: every command runs inside its one error handler."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click.Context
        try:
            return super().invoke(ctx)
        except NBAError as exc:
            fail(exc)
        except (typer.Exit, typer.Abort, TyperException):  # typer reports these itself
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(code=130) from None
        except BrokenPipeError:  # the reader went away (`nba ... | head`): nothing to say
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(code=0) from None
        except MemoryError:
            fail(
                "out of memory: lower NBA_DUCKDB_MEMORY_LIMIT or --chunk-size, or use a "
                "machine with more memory"
            )
        except Exception as exc:
            report = _crash_report(exc)
            where = f"; details in {report}" if report else ""
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: "
                f"{escape(str(exc).splitlines()[0]) if str(exc) else ''}{where}; please "
                "report it",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=1) from None


app = typer.Typer(
    name="nba",
    cls=_Commands,
    help="Next-Best-Action engine: simulate, validate, build profiles, train, score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
features_app = typer.Typer(
    help="Customer profiles in the Feast feature store.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
keys_app = typer.Typer(help="API keys of the real-time API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.callback()
def _settings_first() -> None:
    """Read the NBA_ settings before any command, so a bad one is the first thing said."""
    from nba.config import get_settings

    # MLflow may be imported already (tests, notebooks): quiet its logger at run time too.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # Libraries' deprecation and schema hints are for developers, not for the user of a
    # command; NBA_LOG_LEVEL=debug shows them. The engine's own warnings are printed lines.
    # Routed to a silent logger rather than filtered: Feast adds its own filters on import.
    if get_settings().log_level != "debug":
        logging.captureWarnings(True)
        quiet = logging.getLogger("py.warnings")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False


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
def progress_bar(label: str, unit: str) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr with done/total, rate and ETA; yields
    ``update(done, total, label=None)`` (a new label names the step under way)."""
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

        def update(done: int, total: int | None, label: str | None = None) -> None:
            bar.update(task, completed=done, total=total)
            if label is not None:
                bar.update(task, description=label)

        yield update


def print_notes(notes: Sequence[str], warnings: Sequence[str] = ()) -> None:
    """The data's notes (what was read other than as written) and warnings (what looks
    implausible)."""
    for warning in warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
