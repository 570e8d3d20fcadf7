"""One exception hierarchy for the engine. Messages name the file, column, value and rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


class NBAError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True)
class Violation:
    """One broken rule of the data contract.

    ``where`` is the file (and column) at fault; ``examples`` shows a few offending rows as
    ``"line 7: 'abc'"`` (CSV, counting the header as line 1) or ``"row 7: ..."`` (Parquet,
    counting data rows from 1).
    """

    table: str
    file: str
    column: str | None
    rule: str
    n_rows: int = 0
    examples: Sequence[str] = field(default_factory=tuple)

    def __str__(self) -> str:
        where = self.file if self.column is None else f"{self.file}: column '{self.column}'"
        text = f"{where}: {self.rule}"
        if self.n_rows:
            text += f" ({self.n_rows} row{'s' if self.n_rows != 1 else ''}"
            if self.examples:
                text += ", e.g. " + "; ".join(self.examples)
            text += ")"
        return text


class ContractError(NBAError):
    """A dataset directory breaks the data contract. Holds every violation found."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"{len(self.violations)} data contract violation(s):\n{lines}")


class CatalogError(NBAError):
    """The action catalog (actions.yaml) is malformed. The message names file, action, key."""


class ExpressionError(CatalogError):
    """An eligibility or value expression is not valid."""


class FeatureStoreError(NBAError):
    """The Feast feature store could not be set up, written or read."""


class DecisionLogError(NBAError):
    """The decision log database could not be opened, written or read."""


class DecisionLogUnavailable(DecisionLogError):
    """The decision log cannot commit right now (database down, locked or too slow); the
    API answers 503 with Retry-After, and the log recovers by itself."""
