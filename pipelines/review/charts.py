"""Figures for the reports, drawn without pyplot: no global backend is switched, so a
notebook that calls the engine keeps showing its own charts inline."""

from __future__ import annotations

from typing import Any


def figure(width: float, height: float, constrained: bool = False) -> Any:
    """A matplotlib ``Figure`` of its own (save it with ``savefig``; nothing to close)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained" if constrained else None)
