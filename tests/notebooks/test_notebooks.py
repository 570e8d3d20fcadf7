"""The numbered notebooks run from top to bottom without an error."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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


def test_impact_review_notebook_executes(
    nba_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NB_CUSTOMERS", "2000")
    nb = nbformat.read(NOTEBOOKS / "03-impact-review.ipynb", as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     + str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "(nothing)" in text and "active customers scored" in text  # the action mix
    assert "overall" in text and "lift_low" in text  # the lift tables
    assert "over 3 years" in text or "1-3 years" in text  # value by tenure
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # mix, lift, segments
    assert str(nba_home) in text


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
