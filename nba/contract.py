"""The data contract (docs/DATA_CONTRACT.md): loading and validation of a dataset.

The tables' columns and rules are in :mod:`nba.contract_tables`, the checks of one table
as read in :mod:`nba.contract_checks`.

A dataset directory holds one file per table, ``NAME.parquet`` or ``NAME.csv``. Loading is
done by DuckDB so that tens of millions of interactions validate without passing through
Python objects. Validation collects *every* violation (file, column, rule, number of rows and
a few examples) before anything is used; nothing is dropped or coerced silently. The only
rewrite is the contract's own: unknown channels and interaction types are kept as ``other``,
and that is reported as a note.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from nba.catalog import Catalog, catalog_for_dataset
from nba.config import Settings, get_settings
from nba.contract_checks import check_references, check_table, missing_customers, typed_sql
from nba.contract_tables import TABLES, TableSpec
from nba.csv_files import CsvReadError, read_csv
from nba.exceptions import ContractError, Violation
from nba.plausibility import contact_warnings, dataset_warnings


@dataclass
class Dataset:
    """A validated dataset: normalised tables inside a DuckDB connection.

    Tables ``customers``, ``contracts``, ``interactions``, ``decisions`` (empty if absent) and
    ``contacts`` (empty if absent) have the contract's columns with proper types; timestamps
    are naive UTC. ``decisions_with_family`` adds each decision's catalog family.
    """

    data_dir: Path
    con: duckdb.DuckDBPyConnection
    catalog: Catalog
    files: dict[str, Path]
    notes: list[str] = field(default_factory=list)
    """What was read other than as written, counted (encoding, decimal commas, 'other')."""
    warnings: list[str] = field(default_factory=list)
    """What looks implausible across tables (:mod:`nba.plausibility`): the user decides."""

    def has(self, table: str) -> bool:
        return table in self.files

    def count(self, table: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0]
        return int(row[0]) if row else 0

    def arrow(self, table: str) -> pa.Table:
        return self.con.sql(f"SELECT * FROM {table}").to_arrow_table()

    def newest_timestamp(self) -> object:
        """Newest timestamp anywhere in the data: 'now' for scoring a whole base."""
        row = self.con.execute(
            """SELECT greatest(
                 (SELECT max(timestamp) FROM interactions),
                 (SELECT max(timestamp) FROM decisions),
                 (SELECT max(start_date) FROM contracts),
                 (SELECT max(end_date) FROM contracts),
                 (SELECT max(signup_date) FROM customers))"""
        ).fetchall()[0]
        return row[0] if row else None

    def close(self) -> None:
        self.con.close()


def connect(settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection set up for the engine (UTC, memory cap, threads)."""
    s = settings or get_settings()
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    # Inside Jupyter DuckDB wants ipywidgets to touch this setting; without them it is harmless.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    con.execute(f"SET memory_limit = '{s.duckdb_memory_limit}'")
    # Spill beyond the memory cap into the workspace, not into `.tmp` under the current
    # directory (DuckDB's default for in-memory databases); DuckDB removes it on close.
    spill = str(s.home_dir / "spill").replace("'", "''")
    con.execute(f"SET temp_directory = '{spill}'")
    if s.duckdb_threads > 0:
        con.execute(f"SET threads = {int(s.duckdb_threads)}")
    return con


def find_table_files(data_dir: Path) -> tuple[dict[str, Path], list[Violation]]:
    """Locate each table's file; report missing required tables and ambiguous pairs."""
    files: dict[str, Path] = {}
    violations: list[Violation] = []
    for spec in TABLES.values():
        found = [
            p
            for p in (data_dir / f"{spec.name}.parquet", data_dir / f"{spec.name}.csv")
            if p.is_file()
        ]
        if len(found) == 2:
            violations.append(
                Violation(
                    spec.name,
                    f"{spec.name}.parquet",
                    None,
                    f"both {spec.name}.parquet and {spec.name}.csv exist; keep one",
                )
            )
        elif found:
            files[spec.name] = found[0]
        elif spec.required:
            violations.append(
                Violation(
                    spec.name,
                    f"{spec.name}.parquet",
                    None,
                    f"required table '{spec.name}' is missing: expected "
                    f"{spec.name}.parquet or {spec.name}.csv in {data_dir}",
                )
            )
    return files, violations


def load_dataset(
    data_dir: Path | str,
    *,
    settings: Settings | None = None,
    catalog: Catalog | None = None,
    only: Collection[str] | None = None,
) -> Dataset:
    """Load and validate a dataset directory.

    ``only`` restricts loading and validation to those tables (the others are empty): batch
    scoring from profiles already built reads no interactions.

    Raises
    ------
    ContractError
        With every violation found, if any.
    CatalogError
        If the dataset's own ``actions.yaml`` is malformed.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ContractError(
            [Violation("-", str(data_dir), None, "dataset directory does not exist")]
        )
    catalog = catalog or catalog_for_dataset(data_dir)
    files, violations = find_table_files(data_dir)
    if only is not None:
        files = {name: path for name, path in files.items() if name in only}
        violations = [v for v in violations if v.table in only]
    con = connect(settings)
    notes: list[str] = list(catalog.notes)
    kinds: dict[str, dict[str, str]] = {}
    for name, path in files.items():
        try:
            kinds[name] = _register_raw(con, TABLES[name], path, notes)
        except CsvReadError as exc:
            violations.append(Violation(name, path.name, None, _after_file_name(exc, path)))
        except (duckdb.Error, pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            violations.append(
                Violation(name, path.name, None, f"cannot read the file: {_first_line(exc)}")
            )
    for name, raw_types in kinds.items():
        violations += check_table(con, TABLES[name], files[name].name, raw_types, catalog, notes)
    if not violations:
        violations += check_references(con, files)
    if violations:
        con.close()
        raise ContractError(violations)
    _normalise(con, files, kinds, catalog)
    warnings = dataset_warnings(con, {name: path.name for name, path in files.items()})
    return Dataset(data_dir, con, catalog, files, notes, warnings)


def validate_dataset(data_dir: Path | str, *, settings: Settings | None = None) -> Dataset:
    """Alias of :func:`load_dataset` for readability at call sites that only validate."""
    return load_dataset(data_dir, settings=settings)


def _after_file_name(exc: Exception, path: Path) -> str:
    """The reader's message without its leading file name (the violation names it)."""
    return str(exc).removeprefix(f"{path.name}: ")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _register_raw(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, path: Path, notes: list[str]
) -> dict[str, str]:
    """Expose the file as view ``raw_<table>`` with a 1-based ``__row`` (line for CSV);
    what the CSV reader detected (encoding, separator, decimal commas) goes to ``notes``.

    Returns the DuckDB type of each column, by name.
    """
    view = f"raw_{spec.name}"
    if path.suffix == ".csv":
        numbers = frozenset(c.name for c in spec.columns if c.kind in ("float", "int"))
        read = read_csv(path, numbers)
        notes += read.notes
        table = read.table
        # Header is line 1, the first data row is line 2.
        table = table.append_column("__row", pa.array(range(2, table.num_rows + 2), pa.int64()))
        con.register(f"{view}_arrow", table)
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {view}_arrow")
    else:
        literal = str(path).replace("'", "''")
        con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT * EXCLUDE (file_row_number), "
            f"file_row_number + 1 AS __row FROM read_parquet('{literal}', file_row_number = true)"
        )
    rows = con.execute(f"DESCRIBE {view}").fetchall()
    return {str(r[0]): str(r[1]) for r in rows if r[0] != "__row"}


_SQL_TYPE = {"string": "VARCHAR", "timestamp": "TIMESTAMP", "int": "BIGINT", "float": "DOUBLE"}


def _materialise(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, raw_types: dict[str, str], path: Path | None
) -> None:
    """Create the typed table ``spec.name`` from ``raw_<name>`` (empty if ``path`` is None):
    absent optional columns are typed nulls, out-of-list vocabulary is kept as 'other'."""
    cols = []
    for col in spec.columns:
        raw_type = raw_types.get(col.name)
        expr = (
            f"CAST(NULL AS {_SQL_TYPE[col.kind]})"
            if raw_type is None
            else typed_sql(col, raw_type)
        )
        if col.vocabulary and raw_type is not None:
            listed = ", ".join(f"'{a}'" for a in col.vocabulary)
            expr = (
                f"CASE WHEN {expr} IS NULL THEN NULL WHEN {expr} IN ({listed}) "
                f"THEN {expr} ELSE 'other' END"
            )
        cols.append(f"{expr} AS {col.name}")
    source = f"raw_{spec.name}" if path is not None else "(SELECT 1) WHERE false"
    con.execute(f"CREATE OR REPLACE TABLE {spec.name} AS SELECT {', '.join(cols)} FROM {source}")
    if path is not None and path.suffix == ".csv":
        con.unregister(f"raw_{spec.name}_arrow")


def _normalise(
    con: duckdb.DuckDBPyConnection,
    files: dict[str, Path],
    kinds: dict[str, dict[str, str]],
    catalog: Catalog,
) -> None:
    """Create the typed tables (empty ones for absent optional tables)."""
    for spec in TABLES.values():
        _materialise(con, spec, kinds.get(spec.name, {}), files.get(spec.name))
    families = pa.table(
        {"action_id": list(catalog.ids), "family": [a.family for a in catalog.actions]}
    )
    con.register("catalog_families", families)
    con.execute(
        "CREATE OR REPLACE TABLE decisions_with_family AS SELECT d.*, f.family "
        "FROM decisions d JOIN catalog_families f USING (action_id)"
    )
    con.unregister("catalog_families")


def load_contacts_file(dataset: Dataset, path: Path | str) -> None:
    """Validate a contacts file (outside the dataset directory) and make it the dataset's
    ``contacts`` table. Raises :class:`ContractError` naming the file on any violation."""
    path = Path(path)
    spec = TABLES["contacts"]
    if not path.is_file() or path.suffix not in (".csv", ".parquet"):
        raise ContractError(
            [
                Violation(
                    "contacts",
                    str(path),
                    None,
                    "contacts file not found (expected .csv or .parquet)",
                )
            ]
        )
    con = dataset.con
    try:
        kinds = _register_raw(con, spec, path, dataset.notes)
    except CsvReadError as exc:
        raise ContractError(
            [Violation("contacts", path.name, None, _after_file_name(exc, path))]
        ) from None
    except (duckdb.Error, pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise ContractError(
            [Violation("contacts", path.name, None, f"cannot read the file: {_first_line(exc)}")]
        ) from None
    violations = check_table(con, spec, path.name, kinds, dataset.catalog, dataset.notes)
    if not violations:
        missing = missing_customers(con, "contacts", path.name, "customers")
        violations += [missing] if missing else []
    if violations:
        raise ContractError(violations)
    _materialise(con, spec, kinds, path)
    dataset.files["contacts"] = path
    dataset.warnings += contact_warnings(con, path.name)


def dataset_fingerprint(data_dir: Path | str) -> str:
    """A digest of the dataset's files (name, size, modification time): equal digests mean
    the profiles built from one are valid for the other."""
    data_dir = Path(data_dir)
    digest = hashlib.sha256()
    names = [f"{spec.name}.{ext}" for spec in TABLES.values() for ext in ("parquet", "csv")]
    for name in [*names, "actions.yaml"]:
        path = data_dir / name
        if path.is_file():
            st = path.stat()
            digest.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()
