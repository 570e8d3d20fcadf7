"""``python -m pipelines.cli`` (and ``spark-submit pipelines/cli/__main__.py``)."""

from pipelines.cli import app

if __name__ == "__main__":
    app()
