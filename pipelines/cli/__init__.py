"""The ``nba`` command line: thin Typer commands over the pipeline stages, one module per
group of stages, sharing one error handler (:mod:`pipelines.cli.app`)."""

from __future__ import annotations

from pipelines.cli import data, demo, events, gate, loop, model, scoring, service
from pipelines.cli.app import app

__all__ = ["app", "data", "demo", "events", "gate", "loop", "model", "scoring", "service"]
