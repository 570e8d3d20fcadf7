"""The numbered notebooks run from top to bottom without an error."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from nba.tracking import configure
from tests.conftest import environment

pytestmark = pytest.mark.slow
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.parametrize("name", ["01-profiles-and-models.ipynb"])
def test_notebook_executes(name: str, nba_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_CUSTOMERS", "2500")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "registered version 1 champion" in text
    assert "normalised" in text
    assert str(nba_home) in text  # it used the test's workspace, not the user's


def test_learning_loop_notebook_executes(nba_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_CUSTOMERS", "1200")
    monkeypatch.setenv("NB_ROUNDS", "2")
    nb = nbformat.read(NOTEBOOKS / "02-learning-loop.ipynb", as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for o in outputs)
    assert "normalised_value" in text and "gain_dr_low" in text
    for scenario in ("none", "launch", "drift"):  # one table per world
        assert f"{scenario}\n" in text
    assert "overall" in text  # the impact table
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the two charts
    assert str(nba_home) in text
    for scenario in ("none", "launch", "drift"):  # each world in its own workspace
        assert (nba_home / scenario / "mlflow.db").exists()


def _run(name: str, timeout: int = 900) -> tuple[list[Any], str]:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     + str(o.get("data", {}).get("text/html", "")) for o in outputs)
    return outputs, text


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_impact_review_notebook_simulates_apart_and_reviews_read_only(
    nba_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Simulated, it works in a workspace of its own; reviewing a real workspace (a copy of
    the simulated one here), it leaves the registry and the decision log byte-identical."""
    sim = tmp_path / "simulated"
    monkeypatch.setenv("NB_CUSTOMERS", "2000")
    monkeypatch.setenv("NB_SIM_HOME", str(sim))
    outputs, text = _run("03-impact-review.ipynb")
    assert "(nothing)" in text and "active customers scored" in text  # the action mix
    assert "all" in text and "lift_low" in text  # the lift tables
    assert "over 3 years" in text or "1-3 years" in text  # value by tenure
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # mix, lift, segments
    assert f"workspace {sim} (simulated)" in text
    assert not (nba_home / "mlflow.db").exists()  # the kernel's NBA_HOME was not touched

    # A real workspace: a copy, settled as any first command on it settles it (MLflow's
    # artifact locations follow the copy), then reviewed.
    real = tmp_path / "real"
    shutil.copytree(sim, real)
    with environment(NBA_HOME=str(real)):
        configure()
    watched = [real / "mlflow.db", real / "decision_log.db"]
    before = [_digest(p) for p in watched]
    runs_before = len(list((real / "mlartifacts").rglob("*")))
    monkeypatch.delenv("NB_SIM_HOME")
    monkeypatch.setenv("NB_REVIEW_HOME", str(real))
    monkeypatch.setenv("NB_REVIEW_DATA", str(real / "data"))
    outputs, text = _run("03-impact-review.ipynb")
    assert f"workspace {real} (reviewed, read only)" in text and "nothing simulated" in text
    assert "(nothing)" in text and "lift_low" in text
    assert [_digest(p) for p in watched] == before
    assert len(list((real / "mlartifacts").rglob("*"))) == runs_before


def test_notebooks_are_current() -> None:
    """The committed .ipynb files match their sources in build_notebooks.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build", NOTEBOOKS / "build_notebooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, cells in (
        ("01-profiles-and-models.ipynb", module.PROFILES_AND_MODELS),
        ("02-learning-loop.ipynb", module.LEARNING_LOOP),
        ("03-impact-review.ipynb", module.IMPACT_REVIEW),
    ):
        committed = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in cells], name
