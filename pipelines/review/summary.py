"""One plain-language summary per MLflow run, where the analyst looks.

The same Markdown is written three ways:

- as the run's description (``mlflow.note.content``), shown on the run's Overview page;
  its charts point at the run's own artifacts (``get-artifact``), which MLflow's
  description renderer allows (it drops ``data:`` images);
- as ``summary/summary.md`` (MLflow's artifact viewer shows Markdown as text);
- as ``summary/summary.html`` with the charts inlined, which the artifact viewer renders
  (it shows HTML in a frame that cannot load the run's other files by a relative path).
"""

from __future__ import annotations

import base64
import html
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

KIND_TAG = "kind"
"""What a run is (train, retrain, evaluate, impact, score, simulate-loop): run names say
it to people, this tag says it to searches."""
VERDICT_TAG = "verdict_in_words"
"""The run's verdict in one sentence."""
NOTE_TAG = "mlflow.note.content"
FOLDER = "summary"


@dataclass
class Summary:
    """A run's summary: a title, Markdown blocks, charts, and the verdict in a sentence."""

    title: str
    verdict: str = ""
    blocks: list[str] = field(default_factory=list)
    charts: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def say(self, *lines: str) -> Summary:
        self.blocks.append("\n".join(lines))
        return self

    def table(self, header: list[str], rows: list[list[str]], right: int = 1) -> Summary:
        """A Markdown table; the columns from ``right`` on are right-aligned numbers."""
        align = ["---" if i < right else "---:" for i in range(len(header))]
        lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return self.say(*lines)

    def chart(self, name: str, path: Path, caption: str) -> Summary:
        """A chart (PNG) shown at this point of the summary."""
        self.charts[name] = path
        self.blocks.append(f"![{caption}]({{chart:{name}}})")
        return self

    def warn(self, text: str) -> Summary:
        """A caution shown under the verdict (e.g. a number resting on few cases)."""
        if text and text not in self.warnings:
            self.warnings.append(text)
        return self

    def markdown(self, link: dict[str, str], title: bool = True) -> str:
        """The summary as Markdown, charts linked by ``link``; ``title=False`` leaves the
        heading out (the run's page shows its name above the description)."""
        head = [f"# {self.title}", ""] if title else []
        if self.verdict:
            head += [f"**{self.verdict}**", ""]
        head += [f"> ⚠ {w}" for w in self.warnings] + ([""] if self.warnings else [])
        body = "\n\n".join(self.blocks)
        body = re.sub(r"\{chart:([\w.-]+)\}", lambda m: link[m.group(1)], body)
        return "\n".join([*head, body]) + "\n"


def _png_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def to_html(summary: Summary) -> str:
    """The summary as one self-contained HTML page (charts inlined)."""
    import markdown_it

    text = summary.markdown({name: _png_data(p) for name, p in summary.charts.items()})
    body = markdown_it.MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    return (
        "<!doctype html><meta charset='utf-8'>"
        f"<title>{html.escape(summary.title)}</title>"
        "<style>body{font-family:sans-serif;max-width:62em;margin:1.5em auto;line-height:1.45}"
        "table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd}"
        "img{max-width:100%}blockquote{color:#8a4b00;margin:.4em 0}</style>" + body
    )


def log_summary(summary: Summary, kind: str) -> str:
    """Log ``summary`` to the active MLflow run: description, tags and artifacts. Returns
    the Markdown written."""
    import mlflow

    run = mlflow.active_run()
    if run is None:  # pragma: no cover - a programming error, not a user's
        raise RuntimeError("log_summary needs an active MLflow run")
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name, path in summary.charts.items():
            (out / name).write_bytes(path.read_bytes())  # logged under the name linked
            mlflow.log_artifact(str(out / name), FOLDER)
        links = {n: f"get-artifact?path={FOLDER}/{n}&run_uuid={run_id}" for n in summary.charts}
        text = summary.markdown(links, title=False)
        (out / "summary.md").write_text(
            summary.markdown({n: n for n in summary.charts}), encoding="utf-8"
        )
        (out / "summary.html").write_text(to_html(summary), encoding="utf-8")
        mlflow.log_artifact(str(out / "summary.md"), FOLDER)
        mlflow.log_artifact(str(out / "summary.html"), FOLDER)
    mlflow.set_tags({NOTE_TAG: text, KIND_TAG: kind} | ({VERDICT_TAG: summary.verdict}
                    if summary.verdict else {}))  # fmt: skip
    return text
