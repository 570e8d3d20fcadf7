"""Stage: write a synthetic customer world in the data contract's format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from nba.catalog import load_catalog
from nba.simulate import SimulationConfig, simulate_world, write_world


def run_simulation(
    config: SimulationConfig,
    out: Path,
    *,
    fmt: Literal["parquet", "csv"] = "parquet",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int | float]:
    """Simulate with the default catalog and write the dataset; returns the counts."""
    catalog = load_catalog()
    world = simulate_world(config, catalog, progress=progress)
    write_world(world, Path(out), config, catalog.source, fmt=fmt)
    return world.summary
