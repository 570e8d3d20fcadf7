"""The data contract (docs/DATA_CONTRACT.md): table schemas, loading and validation.

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
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

from nba.catalog import NO_ACTION, Catalog, catalog_for_dataset
from nba.config import Settings, get_settings
from nba.csv_files import DECIMAL_COMMA, CsvReadError, read_csv
from nba.exceptions import ContractError, Violation
from nba.plausibility import contact_warnings, dataset_warnings
from nba.vocabulary import CHANNELS, ID_PATTERN, ID_RULE, INTERACTION_TYPES, OUTCOMES

ID_PATTERN_SQL = ID_PATTERN.replace("'", "''")
Kind = Literal["string", "timestamp", "int", "float"]
N_EXAMPLES = 3


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: Kind
    nullable: bool
    vocabulary: tuple[str, ...] | None = None
    """Closed set of values; anything else is kept as ``other`` (channels, types)."""
    allowed: tuple[str, ...] | None = None
    """Closed set of values; anything else is a violation (outcomes)."""
    check: tuple[str, str] | None = None
    """(SQL condition that must hold on non-null values, rule text), e.g. a range."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: bool
    columns: tuple[Column, ...]
    key: str | None = None
    references_customers: bool = True

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_CHANNEL = Column("channel", "string", False, vocabulary=CHANNELS)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "customers",
            True,
            (
                Column("customer_id", "string", False),
                Column("signup_date", "timestamp", False),
                Column("birth_year", "int", True, check=("{v} BETWEEN 1900 AND 2100", "a year")),
                Column("region", "string", True),
                Column("segment", "string", True),
                Column("email_since", "timestamp", True),
                Column("monthly_revenue", "float", True, check=("{v} >= 0", ">= 0")),
            ),
            key="customer_id",
            references_customers=False,
        ),
        TableSpec(
            "contracts",
            True,
            (
                Column("customer_id", "string", False),
                Column("product", "string", False),
                Column("start_date", "timestamp", False),
                Column("end_date", "timestamp", True),
                Column("monthly_fee", "float", True, check=("{v} >= 0", ">= 0")),
            ),
        ),
        TableSpec(
            "interactions",
            True,
            (
                Column("customer_id", "string", False),
                Column("timestamp", "timestamp", False),
                _CHANNEL,
                Column("type", "string", False, vocabulary=INTERACTION_TYPES),
                Column("amount", "float", True),
                Column("sentiment", "float", True, check=("{v} BETWEEN -1 AND 1", "in [-1, 1]")),
            ),
        ),
        TableSpec(
            "decisions",
            False,
            (
                Column("decision_id", "string", False),
                Column("customer_id", "string", False),
                Column("timestamp", "timestamp", False),
                _CHANNEL,
                Column("action_id", "string", False),
                Column("outcome", "string", False, allowed=OUTCOMES),
                Column("propensity", "float", True, check=("{v} > 0 AND {v} <= 1", "in (0, 1]")),
                Column("value", "float", True),
            ),
            key="decision_id",
        ),
        TableSpec(
            "contacts",
            False,
            (
                Column("contact_id", "string", False),
                Column("customer_id", "string", False),
                Column("timestamp", "timestamp", False),
                _CHANNEL,
                Column("reason", "string", True, vocabulary=INTERACTION_TYPES),
            ),
            key="contact_id",
        ),
    )
}


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
        violations += _check_table(con, TABLES[name], files[name].name, raw_types, catalog, notes)
    if not violations:
        violations += _check_references(con, files)
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


def _is_text(t: str) -> bool:
    return t == "VARCHAR"


def _is_int(t: str) -> bool:
    return t in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
    }


def _is_float(t: str) -> bool:
    return t in {"FLOAT", "DOUBLE", "REAL"} or t.startswith("DECIMAL")


def _is_time(t: str) -> bool:
    return t.startswith("TIMESTAMP") or t == "DATE"


def _typed(col: Column, raw_type: str) -> str | None:
    """SQL that turns raw column ``c`` into the contract type (NULL where it does not parse).

    ``None`` if the raw type cannot hold this column at all (a wrong-type violation).
    """
    q = f'"{col.name}"'
    if col.kind == "string":
        return q if _is_text(raw_type) else None
    if col.kind == "timestamp":
        if raw_type == "TIMESTAMP WITH TIME ZONE" or raw_type.startswith("TIMESTAMPTZ"):
            return f"timezone('UTC', {q})"  # also TIMESTAMPTZ_NS (pandas' default)
        if _is_time(raw_type):
            return f"CAST({q} AS TIMESTAMP)"
        if _is_text(raw_type):
            return f"timezone('UTC', TRY_CAST({q} AS TIMESTAMPTZ))"
        return None
    if col.kind == "int":
        if _is_int(raw_type):
            return f"CAST({q} AS BIGINT)"
        if _is_float(raw_type) or _is_text(raw_type):
            num = f"TRY_CAST({q} AS DOUBLE)"
            return f"CASE WHEN {num} = floor({num}) THEN CAST({num} AS BIGINT) END"
        return None
    if _is_int(raw_type) or _is_float(raw_type) or _is_text(raw_type):
        num = f"TRY_CAST({q} AS DOUBLE)"
        return f"CASE WHEN isfinite({num}) THEN {num} END"
    return None


_KIND_TEXT = {
    "string": "text",
    "timestamp": "an ISO-8601 timestamp",
    "int": "a whole number",
    "float": "a finite number",
}


def _check_table(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    file: str,
    raw_types: dict[str, str],
    catalog: Catalog,
    notes: list[str],
) -> list[Violation]:
    violations: list[Violation] = []
    view = f"raw_{spec.name}"

    def v(column: str | None, rule: str, n: int = 0, ex: Iterable[str] = ()) -> None:
        violations.append(Violation(spec.name, file, column, rule, n, tuple(ex)))

    checks: list[tuple[str, str, str, str]] = []  # (column, rule, condition, shown value)
    for col in spec.columns:
        if col.name not in raw_types:
            if col.nullable:
                notes.append(f"{file}: optional column '{col.name}' is absent; read as empty")
            else:
                v(col.name, "required column is missing")
            continue
        typed = _typed(col, raw_types[col.name])
        q = f'"{col.name}"'
        if typed is None:
            v(
                col.name,
                f"wrong type: expected {_KIND_TEXT[col.kind]}, "
                f"the file stores {raw_types[col.name]}",
            )
            continue
        shown = f"CAST({q} AS VARCHAR)"
        if typed != q:
            cond = f"{q} IS NOT NULL AND ({typed}) IS NULL"
            if col.kind == "float" and _is_text(raw_types[col.name]):
                comma = f"regexp_full_match({q}, '{DECIMAL_COMMA}')"
                checks.append(
                    (
                        col.name,
                        "a number written with a decimal comma (12,50): write it with a "
                        "point (12.50), or export the file with ';' as the separator",
                        f"{cond} AND {comma}",
                        shown,
                    )
                )
                cond += f" AND NOT {comma}"
            checks.append((col.name, f"not {_KIND_TEXT[col.kind]}", cond, shown))
        # The id rule is checked where an id is a key; elsewhere the reference to the
        # customers table catches a bad one, without a regex over every interaction.
        if col.name == spec.key and _is_text(raw_types[col.name]):
            checks.append(
                (
                    col.name,
                    f"not a valid id ({ID_RULE})",
                    f"{q} IS NOT NULL AND trim({q}) <> '' AND NOT regexp_full_match({q}, "
                    f"'{ID_PATTERN_SQL}')",
                    shown,
                )
            )
        if not col.nullable:
            rule = "empty value where the contract allows none"
            cond = f"{q} IS NULL"
            if col.kind == "string":
                cond += f" OR trim({q}) = ''"
            checks.append((col.name, rule, cond, "'<empty>'"))
        if col.allowed:
            listed = ", ".join(f"'{a}'" for a in col.allowed)
            checks.append(
                (
                    col.name,
                    f"value not one of {listed}",
                    f"{q} IS NOT NULL AND {q} NOT IN ({listed})",
                    shown,
                )
            )
        if col.check:
            cond, text = col.check
            checks.append(
                (
                    col.name,
                    f"value must be {text}",
                    f"({typed}) IS NOT NULL AND NOT ({cond.format(v=f'({typed})')})",
                    shown,
                )
            )
        if col.vocabulary:
            listed = ", ".join(f"'{a}'" for a in col.vocabulary)
            row = con.execute(
                f"SELECT count(*) FROM {view} WHERE {q} IS NOT NULL AND {q} NOT IN ({listed})"
            ).fetchall()[0]
            n_other = int(row[0]) if row else 0
            if n_other:
                notes.append(_vocabulary_note(con, view, file, col, n_other))
    if spec.name == "decisions" and "action_id" in raw_types and _is_text(raw_types["action_id"]):
        known = ", ".join(f"'{a}'" for a in (*catalog.ids, NO_ACTION))
        checks.append(
            (
                "action_id",
                f"unknown action id (not in {catalog.source}, nor '{NO_ACTION}')",
                f"action_id IS NOT NULL AND action_id NOT IN ({known})",
                "CAST(action_id AS VARCHAR)",
            )
        )
        checks += _no_action_checks(raw_types)
    if (
        spec.name == "contracts"
        and {"start_date", "end_date"} <= set(raw_types)
        and _typed(spec.column("end_date"), raw_types["end_date"])
        and _typed(spec.column("start_date"), raw_types["start_date"])
    ):
        s = _typed(spec.column("start_date"), raw_types["start_date"])
        e = _typed(spec.column("end_date"), raw_types["end_date"])
        checks.append(
            (
                "end_date",
                "end_date is before start_date",
                f"({e}) < ({s})",
                "CAST(end_date AS VARCHAR)",
            )
        )
    if checks:
        counts = con.execute(
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {c[2]})" for c in checks)
            + f" FROM {view}"
        ).fetchall()[0]
        for (column, rule, cond, shown), n in zip(checks, counts, strict=True):
            if n:
                ex = con.execute(
                    f"SELECT __row, {shown} FROM {view} WHERE {cond} ORDER BY __row "
                    f"LIMIT {N_EXAMPLES}"
                ).fetchall()
                v(column, rule, int(n), [_example(file, r, s) for r, s in ex])
    if spec.key and spec.key in raw_types and _is_text(raw_types[spec.key]):
        k = f'"{spec.key}"'
        row = con.execute(
            f"SELECT count(*), sum(n) FROM (SELECT {k}, count(*) AS n FROM {view} "
            f"WHERE {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1)"
        ).fetchall()[0]
        if row and row[0]:
            ex = con.execute(
                f"SELECT {k}, list(__row ORDER BY __row) FROM {view} WHERE {k} IN "
                f"(SELECT {k} FROM {view} GROUP BY {k} HAVING count(*) > 1) "
                f"GROUP BY {k} ORDER BY min(__row) LIMIT {N_EXAMPLES}"
            ).fetchall()
            unit = "line" if file.endswith(".csv") else "row"
            v(
                spec.key,
                "duplicate key",
                int(row[1]),
                [f"'{key}' at {unit}s {', '.join(map(str, rows[:5]))}" for key, rows in ex],
            )
    extra = [c for c in raw_types if c not in {col.name for col in spec.columns}]
    if extra:
        listed = ", ".join(f"'{c}'" for c in extra[:5]) + (" ..." if len(extra) > 5 else "")
        notes.append(
            f"{file}: {len(extra)} column(s) not in the data contract are ignored: {listed}"
        )
    row = con.execute(f"SELECT count(*) FROM {view}").fetchall()[0]
    if not row or not row[0]:
        if spec.required:
            v(None, f"the file has a header but no rows: the {spec.name} table is required")
        else:
            notes.append(f"{file}: the file has a header but no rows")
    return violations


def _vocabulary_note(
    con: duckdb.DuckDBPyConnection, view: str, file: str, col: Column, n_other: int
) -> str:
    """Which values outside the contract's list were found, and what that does."""
    assert col.vocabulary is not None
    q = f'"{col.name}"'
    listed = ", ".join(f"'{a}'" for a in col.vocabulary)
    values = con.execute(
        f"SELECT {q}, count(*) AS n FROM {view} WHERE {q} IS NOT NULL AND {q} NOT IN "
        f"({listed}) GROUP BY {q} ORDER BY n DESC, {q} LIMIT 3"
    ).fetchall()
    shown = ", ".join(f"'{v}' ({n:,})" for v, n in values)
    what = {
        "channel": "no action is offered on an unknown channel unless the catalog lists 'other'",
        "reason": "an unknown reason counts as no particular reason",
        "type": "they count in no interaction-type feature",
    }.get(col.name, "")
    return (
        f"{file}: column '{col.name}': {n_other:,} row(s) with a value not in the data "
        f"contract's list, e.g. {shown}, are read as 'other'" + (f" ({what})" if what else "")
    )


def _no_action_checks(raw_types: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """A ``no_action`` decision presented nothing: nothing could be accepted or declined,
    and it earned nothing by itself."""
    nothing = f"CAST(action_id AS VARCHAR) = '{NO_ACTION}'"
    out = []
    if "outcome" in raw_types:
        out.append(
            (
                "outcome",
                f"a '{NO_ACTION}' decision presented nothing, so its outcome must be "
                "'no_response'",
                f"{nothing} AND CAST(outcome AS VARCHAR) <> 'no_response'",
                "CAST(outcome AS VARCHAR)",
            )
        )
    if "value" in raw_types:
        out.append(
            (
                "value",
                f"a '{NO_ACTION}' decision presented nothing, so its value must be empty",
                f"{nothing} AND value IS NOT NULL AND trim(CAST(value AS VARCHAR)) <> ''",
                "CAST(value AS VARCHAR)",
            )
        )
    return out


def _example(file: str, row: int, shown: object) -> str:
    unit = "line" if file.endswith(".csv") else "row"
    text = shown if shown == "'<empty>'" else repr(shown)
    return f"{unit} {row}: {text}"


def _missing_customers(
    con: duckdb.DuckDBPyConnection, name: str, file: str, customers: str
) -> Violation | None:
    """Rows of ``raw_<name>`` whose customer_id is not in the ``customers`` relation."""
    cond = (
        f"customer_id NOT IN (SELECT customer_id FROM {customers} WHERE customer_id IS NOT NULL)"
    )
    n = int(con.execute(f"SELECT count(*) FROM raw_{name} WHERE {cond}").fetchall()[0][0])
    if not n:
        return None
    ex = con.execute(
        f"SELECT __row, customer_id FROM raw_{name} WHERE {cond} ORDER BY __row LIMIT {N_EXAMPLES}"
    ).fetchall()
    return Violation(
        name,
        file,
        "customer_id",
        "customer_id not found in customers",
        n,
        tuple(_example(file, r, s) for r, s in ex),
    )


def _check_references(con: duckdb.DuckDBPyConnection, files: dict[str, Path]) -> list[Violation]:
    """Every customer_id of the other tables must exist in customers."""
    found = (
        _missing_customers(con, name, path.name, "raw_customers")
        for name, path in files.items()
        if TABLES[name].references_customers
    )
    return [v for v in found if v is not None]


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
            f"CAST(NULL AS {_SQL_TYPE[col.kind]})" if raw_type is None else _typed(col, raw_type)
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
    violations = _check_table(con, spec, path.name, kinds, dataset.catalog, dataset.notes)
    if not violations:
        missing = _missing_customers(con, "contacts", path.name, "customers")
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
