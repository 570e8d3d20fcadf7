"""docs/mlflow_review.md, walked in a real browser: `nba ui` (the real command) on a
demo-like workspace and on a short learning loop, driven by Playwright through Debian's
Chromium. Every page the walk-through names is reached by clicking as an analyst would,
every image on it loads, every run's description states its verdict, and the registry
shows each version's status. Screenshots go to ``test-artifacts/mlflow-review/``."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pytest
from typer.testing import CliRunner

from nba.tracking import configure
from pipelines.cli import app
from tests.conftest import environment, free_port

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("NBA_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("NBA_TEST_ARTIFACTS", "test-artifacts")) / "mlflow-review"
DOC = Path(__file__).resolve().parents[2] / "docs" / "mlflow_review.md"
NBA = Path(sys.executable).with_name("nba")


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make demo` leaves, on a small world: a champion and two score runs. With
    ``NBA_TEST_REVIEW_HOME`` set, that workspace instead (e.g. ``.nba`` after `make demo`:
    the walk only reads it)."""
    given = os.environ.get("NBA_TEST_REVIEW_HOME")
    if given:
        return Path(given).resolve()
    home = tmp_path_factory.mktemp("review-demo")
    data = home / "data"
    with environment(NBA_HOME=str(home)):
        _invoke("simulate", "--customers", "1500", "--months", "8", "--out", str(data))
        _invoke("features", "build", "--data", str(data))
        _invoke("train", "--data", str(data))
        _invoke("score", "--data", str(data), "--contacts", str(data / "contacts.parquet"),
                "--out", str(home / "recs.parquet"))  # fmt: skip
        _invoke("score", "--data", str(data), "--out", str(home / "base.parquet"))
    return home


@pytest.fixture(scope="module")
def loop_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short learning loop: train, retrain, evaluate, impact and loop runs."""
    home = tmp_path_factory.mktemp("review-loop")
    with environment(NBA_HOME=str(home)):
        _invoke("simulate-loop", "--rounds", "2", "--customers", "1500", "--weeks-per-round",
                "3", "--out", str(home / "world"), "--epsilon", "0.3",
                "--control-share", "0.3")  # fmt: skip
    return home


@contextmanager
def nba_ui(home: Path) -> Iterator[str]:
    """`nba ui` as a user starts it; yields the address it prints once MLflow answers."""
    port = free_port()
    env = {**os.environ, "NBA_HOME": str(home), "COLUMNS": "200"}
    process = subprocess.Popen(
        [str(NBA), "ui", "--port", str(port)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed only once the UI answers
        found = re.search(r"http://\S+", line)
        assert found, f"nba ui printed {line!r}"
        yield found[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _runs(home: Path) -> dict[str, Any]:
    """Run name -> run, from the store itself (what the page must show)."""
    with environment(NBA_HOME=str(home)):
        runs = mlflow.search_runs([configure()], output_format="list")
    return {r.info.run_name: r for r in runs}


def _images_load(pg: Any, least: int = 1) -> None:
    """Every image of the page and its frames loaded (none broken), and at least
    ``least`` of them besides MLflow's logo. MLflow's page never goes network-idle (it
    polls), so the images are polled until they have all finished, for up to 30 s."""
    script = "els => els.map(e => [e.src.slice(0, 80), e.complete, e.naturalWidth > 0])"
    deadline = time.monotonic() + 30
    while True:
        images = [i for f in pg.frames for i in f.eval_on_selector_all("img", script)]
        if all(done for _, done, _ in images) or time.monotonic() > deadline:
            break
        pg.wait_for_timeout(250)
    broken = [src for src, _, ok in images if not ok]
    assert broken == [], f"broken images on {pg.url}: {broken}"
    charts = [src for src, _, _ in images if not src.startswith("data:image/svg")]
    assert len(charts) > least, f"{len(charts)} images on {pg.url}"


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make system-deps` (installs chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])  # fmt: skip
        pg = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        pg.set_default_timeout(30_000)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        assert errors == [], f"JavaScript errors: {errors}"
        chromium.close()


def _shot(pg: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _open_run(pg: Any, url: str, name: str) -> None:
    """From the experiment's Runs (the address nba ui printed), click the run's name."""
    from playwright.sync_api import expect

    pg.goto(url)
    expect(pg.get_by_text("Runs", exact=True).first).to_be_visible()
    pg.get_by_role("link", name=name, exact=True).first.click()
    expect(pg.get_by_text("Description", exact=True).first).to_be_visible()
    more = pg.get_by_text("Show more", exact=True)
    if more.count():
        more.first.click()


def _walk_runs(pg: Any, url: str, runs: dict[str, Any], label: str) -> None:
    from playwright.sync_api import expect

    for name, run in runs.items():
        _open_run(pg, url, name)
        verdict = run.data.tags.get("verdict_in_words")
        assert verdict, f"run {name!r} has no verdict"
        # The description renders the summary: the verdict in words, first.
        expect(pg.locator("body")).to_contain_text(verdict[:80])
        _images_load(pg, least=0 if run.data.tags["kind"] == "evaluate" else 1)
        _shot(pg, f"{label}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}")


def _walk_artifact_page(pg: Any, url: str, name: str) -> None:
    """Artifacts -> summary -> summary.html renders with its charts."""
    from playwright.sync_api import expect

    _open_run(pg, url, name)
    pg.get_by_role("tab", name="Artifacts").click()
    pg.get_by_text("summary", exact=True).first.click()  # the folder opens
    pg.get_by_text("summary.html", exact=True).click()
    frame = pg.frame_locator("iframe").first
    expect(frame.locator("h1")).to_contain_text(name)
    _images_load(pg)


def _walk_registry(pg: Any, url: str, statuses: dict[str, str], label: str) -> None:
    """Model registry -> nba-policy: every version's status, the champion alias."""
    from playwright.sync_api import expect

    pg.goto(url)
    pg.get_by_role("link", name="Model registry").first.click()
    try_it = pg.get_by_role("button", name="Try it now")
    with contextlib.suppress(Exception):  # the pop-up shows only on a first visit
        try_it.click(timeout=5_000)
    pg.get_by_role("link", name="nba-policy", exact=True).last.click()
    expect(pg.get_by_text("Versions", exact=True).first).to_be_visible()
    expect(pg.locator("body")).to_contain_text("champion")
    for version, status in statuses.items():
        expect(pg.locator("body")).to_contain_text(f"Version {version}")
        assert status in pg.locator("body").inner_text()
    _shot(pg, f"{label}-registry")
    pg.get_by_role("link", name="Version 1", exact=True).first.click()
    expect(pg.get_by_text("Source Run", exact=True).first).to_be_visible()
    expect(pg.locator("body")).to_contain_text("Version 1 is the first version")
    _shot(pg, f"{label}-version-1")


def _statuses(home: Path) -> dict[str, str]:
    with environment(NBA_HOME=str(home)):
        configure()
        client = mlflow.MlflowClient()
        versions = client.search_model_versions("name='nba-policy'")
        return {str(v.version): v.tags["status"] for v in versions}


def test_the_doc_names_the_pages_the_walk_reaches() -> None:
    text = DOC.read_text()
    for label in ("nba ui", "Model training", "GenAI", "Runs", "Overview", "Description",
                  "Show more", "Artifacts", "summary/summary.html", "action_mix",
                  "Model registry", "nba-policy", "Try it now", "Aliases", "Tags",
                  "Source\nRun", "Compare", "Model metrics", "yardstick_value_nba"):  # fmt: skip
        assert label in text, label


def test_the_walk_through_on_a_demo_workspace(demo_home: Path) -> None:
    runs = _runs(demo_home)
    assert set(runs) >= {"train v1"} and sum(n.startswith("score v1: ") for n in runs) == 2
    with nba_ui(demo_home) as url, browser() as pg:
        assert url.endswith("?workflowType=machine_learning")
        pg.goto(url)
        pg.get_by_text("train v1", exact=True).first.wait_for()
        for name in runs:  # every run is listed by its name
            assert name in pg.locator("body").inner_text()
        _shot(pg, "demo-runs")
        _walk_runs(pg, url, runs, "demo")
        _walk_artifact_page(pg, url, "train v1")
        score = next(n for n in runs if "the active base" in n)
        _open_run(pg, url, score)
        for words in ("customer segment", "time as a customer", "channel", "nothing"):
            assert words in pg.locator("body").inner_text()
        _walk_registry(pg, url, _statuses(demo_home), "demo")


def test_the_walk_through_on_a_short_loop(loop_home: Path) -> None:
    runs = _runs(loop_home)
    kinds = {r.data.tags["kind"] for r in runs.values()}
    assert kinds == {"train", "retrain", "evaluate", "impact", "simulate-loop"}
    statuses = _statuses(loop_home)
    assert statuses.get("1") in ("champion", "retired") and statuses.get("2") in (
        "challenger", "champion", "rejected"), statuses  # fmt: skip
    with nba_ui(loop_home) as url, browser() as pg:
        _walk_runs(pg, url, runs, "loop")
        _walk_registry(pg, url, statuses, "loop")
        # After following links inside MLflow the mode may read GenAI: one click on
        # "Model training" (as the doc says) brings the runs back, and it is remembered.
        pg.get_by_text("Model training", exact=True).first.click()
        pg.goto(url.split("?")[0])
        pg.get_by_text("retrain v2", exact=True).first.wait_for(timeout=30_000)
