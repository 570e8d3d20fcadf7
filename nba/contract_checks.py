"""Checks of one contract table as read (types, rules, vocabularies, ids, references):
every violation with its file, column, rule, count and a few examples, and a note for
everything read other than as written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

from nba.catalog import NO_ACTION, Catalog
from nba.contract_tables import TABLES, Column, TableSpec
from nba.csv_files import DECIMAL_COMMA
from nba.exceptions import Violation
from nba.vocabulary import ID_PATTERN, ID_RULE

ID_PATTERN_SQL = ID_PATTERN.replace("'", "''")
N_EXAMPLES = 3


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


def typed_sql(col: Column, raw_type: str) -> str | None:
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


def check_table(
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
                if not col.silent_if_absent:
                    notes.append(f"{file}: optional column '{col.name}' is absent; read as empty")
            else:
                v(col.name, "required column is missing")
            continue
        typed = typed_sql(col, raw_types[col.name])
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
        and typed_sql(spec.column("end_date"), raw_types["end_date"])
        and typed_sql(spec.column("start_date"), raw_types["start_date"])
    ):
        s = typed_sql(spec.column("start_date"), raw_types["start_date"])
        e = typed_sql(spec.column("end_date"), raw_types["end_date"])
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


def missing_customers(
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


def check_references(con: duckdb.DuckDBPyConnection, files: dict[str, Path]) -> list[Violation]:
    """Every customer_id of the other tables must exist in customers."""
    found = (
        missing_customers(con, name, path.name, "raw_customers")
        for name, path in files.items()
        if TABLES[name].references_customers
    )
    return [v for v in found if v is not None]
