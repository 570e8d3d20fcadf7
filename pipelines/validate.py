"""Stage: check a dataset directory against the data contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nba.contract import load_dataset
from nba.contract_tables import TABLES


@dataclass
class ValidationReport:
    data_dir: Path
    tables: dict[str, tuple[str, int]]
    """table -> (file name, rows)"""
    catalog_source: str
    n_actions: int
    notes: list[str] = field(default_factory=list)
    """What was read other than as written (counted)."""
    warnings: list[str] = field(default_factory=list)
    """What looks implausible across the tables."""


def validate(data_dir: Path) -> ValidationReport:
    """Validate ``data_dir``; raises :class:`nba.exceptions.ContractError` on violations."""
    dataset = load_dataset(data_dir)
    try:
        tables = {
            name: (dataset.files[name].name, dataset.count(name))
            for name in TABLES
            if dataset.has(name)
        }
        return ValidationReport(
            Path(data_dir),
            tables,
            dataset.catalog.source,
            len(dataset.catalog.actions),
            dataset.notes,
            dataset.warnings,
        )
    finally:
        dataset.close()
