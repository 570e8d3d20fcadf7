"""Checks that a dataset is plausible as a whole: each table can keep the contract on its
own and still be a broken export (interactions of a tenth of the customers, decisions from
another year). These are warnings, not errors: the data may be right, and the user
decides.
"""

from __future__ import annotations

from typing import Any

import duckdb

MIN_INTERACTION_COVERAGE = 0.10
"""Below this share of customers with any interaction the export looks incomplete."""
MIN_CONTRACT_COVERAGE = 0.50
DECISION_SLACK_DAYS = 31
"""Decisions this far outside the interactions' time range look misdated."""
CONTACT_SLACK_DAYS = 92
"""Contacts to score this far outside it are ranked on a stale or missing history."""


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    rows = con.execute(sql).fetchall()
    return rows[0] if rows else ()


def _share(n: int, total: int) -> str:
    return f"{n / total:.0%} ({n:,} of {total:,})"


def dataset_warnings(con: duckdb.DuckDBPyConnection, files: dict[str, str]) -> list[str]:
    """Warnings on the typed tables of a loaded dataset; ``files`` maps table to file name."""
    out: list[str] = []
    (customers,) = _one(con, "SELECT count(*) FROM customers")
    if not customers or not {"interactions", "contracts"} <= set(files):
        return out  # a partial load (batch scoring from built profiles) checks nothing
    (with_interactions,) = _one(con, "SELECT count(DISTINCT customer_id) FROM interactions")
    if with_interactions < MIN_INTERACTION_COVERAGE * customers:
        out.append(
            f"{files.get('interactions', 'interactions')}: only "
            f"{_share(with_interactions, customers)} of the customers have any interaction; "
            "is the export complete?"
        )
    (with_contracts,) = _one(con, "SELECT count(DISTINCT customer_id) FROM contracts")
    if with_contracts < MIN_CONTRACT_COVERAGE * customers:
        out.append(
            f"{files.get('contracts', 'contracts')}: only {_share(with_contracts, customers)} "
            "of the customers hold any contract; is the export complete?"
        )
    if "decisions" in files:
        out += _outside_range(
            con, "decisions", files["decisions"], "decisions", DECISION_SLACK_DAYS
        )
    if "contacts" in files:
        out += contact_warnings(con, files["contacts"])
    return out


def _outside_range(
    con: duckdb.DuckDBPyConnection, table: str, file: str, what: str, slack: int
) -> list[str]:
    """Rows of ``table`` dated more than ``slack`` days outside the interactions' range."""
    lo, hi = _one(con, "SELECT min(timestamp), max(timestamp) FROM interactions")
    if lo is None:
        return []
    n, total = _one(
        con,
        f"SELECT count(*) FILTER (WHERE timestamp < TIMESTAMP '{lo}' - INTERVAL "
        f"{slack} DAY OR timestamp > TIMESTAMP '{hi}' + INTERVAL "
        f"{slack} DAY), count(*) FROM {table}",
    )
    if not n:
        return []
    return [
        f"{file}: {_share(n, total)} {what} are dated more than {slack} days "
        f"outside the interactions' range ({lo:%Y-%m-%d} to {hi:%Y-%m-%d}): their profiles "
        "miss the history around them; are the dates right?"
    ]


def contact_warnings(con: duckdb.DuckDBPyConnection, file: str) -> list[str]:
    """Warnings on a contacts file scored against a dataset's history."""
    return _outside_range(con, "contacts", file, "contacts", CONTACT_SLACK_DAYS)
