"""A trained workspace per test module: simulated world, profiles, registered champion.

A module defines ``CONFIG`` (its world) and gets ``world`` (the dataset directory) and
``home`` (its workspace, made current for the test: the autouse ``nba_home`` fixture would
otherwise give each test an empty one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nba.catalog import load_catalog
from nba.simulate import simulate_world, write_world
from pipelines.features import build_features
from pipelines.train import train
from tests.conftest import environment


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = request.module.CONFIG
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    catalog = load_catalog()
    data = root / "sim"
    write_world(simulate_world(config, catalog), data, config, catalog.source)
    with environment(NBA_HOME=str(root / "home")):
        build_features(data)
        train(data)
    return data


@pytest.fixture
def home(world: Path) -> Iterator[Path]:
    with environment(NBA_HOME=str(world.parent / "home")):
        yield world.parent / "home"
