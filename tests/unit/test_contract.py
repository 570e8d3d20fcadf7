"""The data contract: a table of broken datasets, one defect each, with the exact message."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nba.catalog import default_catalog_path
from nba.contract import load_dataset
from nba.exceptions import ContractError

Defect = Callable[[Path], object]


def edit(name: str, old: str, new: str) -> Defect:
    def apply(d: Path) -> None:
        path = d / name
        text = path.read_text()
        assert old in text, f"fixture changed: {old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))

    return apply


def wrong_parquet_type(d: Path) -> None:
    (d / "customers.csv").unlink()
    pq.write_table(
        pa.table(
            {"customer_id": [1, 2, 3], "signup_date": pa.array([0, 0, 0], pa.timestamp("s"))}
        ),
        d / "customers.parquet",
    )


CATALOG = default_catalog_path()
DEFECTS: list[tuple[str, Defect, str]] = [
    (
        "missing file",
        lambda d: (d / "customers.csv").unlink(),
        "customers.parquet: required table 'customers' is missing: expected customers.parquet "
        "or customers.csv in {dir}",
    ),
    (
        "missing column",
        edit("interactions.csv", "customer_id,timestamp,", "customer_id,when,"),
        "interactions.csv: column 'timestamp': required column is missing",
    ),
    (
        "timestamp does not parse",
        edit("interactions.csv", "2025-03-20T10:00:00Z,chat", "yesterday,chat"),
        "interactions.csv: column 'timestamp': not an ISO-8601 timestamp "
        "(1 row, e.g. line 3: 'yesterday')",
    ),
    (
        "null where not allowed",
        edit("contracts.csv", "B,mobile_plus", "B,"),
        "contracts.csv: column 'product': empty value where the contract allows none "
        "(1 row, e.g. line 4: '<empty>')",
    ),
    (
        "duplicate key",
        edit("customers.csv", "B,2024-06-01", "A,2024-06-01"),
        "customers.csv: column 'customer_id': duplicate key (2 rows, e.g. 'A' at lines 2, 3)",
    ),
    (
        "unknown action id",
        edit("decisions.csv", "offer_broadband", "offer_spaceship"),
        f"decisions.csv: column 'action_id': unknown action id (not in {CATALOG}, nor "
        "'no_action') (1 row, e.g. line 2: 'offer_spaceship')",
    ),
    (
        "no_action accepted",
        edit("decisions.csv", "retention_fee_waiver,accepted,0.5,270", "no_action,accepted,0.5,"),
        "decisions.csv: column 'outcome': a 'no_action' decision presented nothing, so its "
        "outcome must be 'no_response' (1 row, e.g. line 3: 'accepted')",
    ),
    (
        "no_action with a value",
        edit(
            "decisions.csv", "installment_plan_3m,no_response,1.0,", "no_action,no_response,0.3,5"
        ),
        "decisions.csv: column 'value': a 'no_action' decision presented nothing, so its value "
        "must be empty (1 row, e.g. line 4: '5')",
    ),
    (
        "propensity zero",
        edit("decisions.csv", "declined,0.25", "declined,0"),
        "decisions.csv: column 'propensity': value must be in (0, 1] (1 row, e.g. line 2: '0')",
    ),
    (
        "propensity above one",
        edit("decisions.csv", "accepted,0.5", "accepted,1.5"),
        "decisions.csv: column 'propensity': value must be in (0, 1] (1 row, e.g. line 3: '1.5')",
    ),
    (
        "unknown outcome",
        edit("decisions.csv", "no_response,1.0", "maybe,1.0"),
        "decisions.csv: column 'outcome': value not one of 'accepted', 'declined', "
        "'no_response' (1 row, e.g. line 4: 'maybe')",
    ),
    (
        "sentiment out of range",
        edit("interactions.csv", "complaint,,-0.8", "complaint,,-3"),
        "interactions.csv: column 'sentiment': value must be in [-1, 1] "
        "(1 row, e.g. line 2: '-3')",
    ),
    (
        "not a whole number",
        edit("customers.csv", "1980", "nineteen-eighty"),
        "customers.csv: column 'birth_year': not a whole number "
        "(1 row, e.g. line 2: 'nineteen-eighty')",
    ),
    (
        "unknown customer",
        edit("contacts.csv", "K2,B", "K2,Z"),
        "contacts.csv: column 'customer_id': customer_id not found in customers "
        "(1 row, e.g. line 3: 'Z')",
    ),
    (
        "contract ends before it starts",
        edit("contracts.csv", "2024-02-01,2025-03-10", "2024-02-01,2023-03-10"),
        "contracts.csv: column 'end_date': end_date is before start_date "
        "(1 row, e.g. line 3: '2023-03-10')",
    ),
    (
        "both formats",
        lambda d: shutil.copy(d / "contacts.csv", d / "contacts.parquet"),
        "contacts.parquet: both contacts.parquet and contacts.csv exist; keep one",
    ),
    (
        "empty required table",
        lambda d: (d / "interactions.csv").write_text(
            "customer_id,timestamp,channel,type,amount,sentiment\n"
        ),
        "interactions.csv: the file has a header but no rows: the interactions table is required",
    ),
    (
        "quoted decimal comma in a comma-separated file",
        edit("customers.csv", ",50.0", ',"50,0"'),
        "customers.csv: column 'monthly_revenue': a number written with a decimal comma "
        "(12,50): write it with a point (12.50), or export the file with ';' as the separator "
        "(1 row, e.g. line 2: '50,0')",
    ),
    (
        "unquoted decimal comma splits the line",
        edit("customers.csv", ",50.0", ",50,0"),
        "customers.csv: 1 line(s) have a different number of fields than the header's 7 "
        "(e.g. line 2: 8 fields); the lines hold numbers with a decimal comma (12,50), which "
        "split a field in a comma-separated file: write decimals with a point, or export with "
        "';' as the separator",
    ),
    (
        "id with a space at its end",
        edit("contacts.csv", "K2,B", "K2 ,B"),
        "contacts.csv: column 'contact_id': not a valid id (1 to 128 characters, no control "
        "characters, no space at either end) (1 row, e.g. line 3: 'K2 ')",
    ),
    (
        "binary garbage",
        lambda d: (d / "contracts.csv").write_bytes(bytes(range(256)) * 8),
        "contracts.csv: the file is not text (binary content, or an encoding that cannot be "
        "recognised); export it as CSV (in Excel: Save As > 'CSV UTF-8')",
    ),
    (
        "header line of 200 KB",
        lambda d: (d / "contracts.csv").write_text("x" * 200_000 + "\n1\n"),
        "contracts.csv: the first line is over 64 KB long, so it is not a header row of "
        "column names; is this the right file?",
    ),
    (
        "wrong type in parquet",
        wrong_parquet_type,
        "customers.parquet: column 'customer_id': wrong type: expected text, "
        "the file stores BIGINT",
    ),
]


@pytest.mark.parametrize(
    ("defect", "expected"), [(d[1], d[2]) for d in DEFECTS], ids=[d[0] for d in DEFECTS]
)
def test_each_defect_is_rejected_with_its_exact_message(
    tiny_dataset: Path, defect: Defect, expected: str
) -> None:
    defect(tiny_dataset)
    with pytest.raises(ContractError) as info:
        load_dataset(tiny_dataset)
    assert [str(v) for v in info.value.violations] == [expected.format(dir=tiny_dataset)]


def test_all_violations_are_reported_at_once(tiny_dataset: Path) -> None:
    edit("decisions.csv", "declined,0.25", "declined,7")(tiny_dataset)
    edit("interactions.csv", "2025-03-20T10:00:00Z,chat", "soon,chat")(tiny_dataset)
    with pytest.raises(ContractError) as info:
        load_dataset(tiny_dataset)
    assert {v.table for v in info.value.violations} == {"decisions", "interactions"}
    assert "2 data contract violation(s)" in str(info.value)


def test_valid_csv_loads_with_types_and_utc(tiny_dataset: Path) -> None:
    ds = load_dataset(tiny_dataset)
    assert {
        t: ds.count(t) for t in ("customers", "contracts", "interactions", "decisions", "contacts")
    } == {"customers": 3, "contracts": 4, "interactions": 8, "decisions": 3, "contacts": 2}
    signup = ds.con.sql("SELECT signup_date FROM customers WHERE customer_id = 'C'").fetchall()
    assert str(signup[0][0]) == "2025-01-15 11:00:00"  # +01:00 read as UTC
    revenue = ds.con.sql("SELECT monthly_revenue FROM customers ORDER BY customer_id")
    assert [r[0] for r in revenue.fetchall()] == [50.0, 80.5, None]  # empty stays null


def test_unknown_channel_and_type_are_kept_as_other_and_reported(tiny_dataset: Path) -> None:
    ds = load_dataset(tiny_dataset)
    rows = ds.con.sql(
        "SELECT channel, type FROM interactions WHERE customer_id = 'B' ORDER BY timestamp"
    ).fetchall()
    assert rows == [("web", "payment"), ("other", "other")]
    assert any("'channel': 1 row(s)" in n and "'other'" in n for n in ds.notes)
    assert ds.count("interactions") == 8  # nothing dropped


def test_parquet_and_csv_load_to_the_same_tables(tiny_dataset: Path, tmp_path: Path) -> None:
    csv_ds = load_dataset(tiny_dataset)
    as_parquet = tmp_path / "pq"
    as_parquet.mkdir()
    for name in ("customers", "contracts", "interactions", "decisions", "contacts"):
        pq.write_table(csv_ds.arrow(name), as_parquet / f"{name}.parquet")
    pq_ds = load_dataset(as_parquet)
    for name in ("customers", "contracts", "interactions", "decisions", "contacts"):
        assert pq_ds.arrow(name).equals(csv_ds.arrow(name)), name


def test_parquet_with_nanosecond_zoned_timestamps_loads(tiny_dataset: Path) -> None:
    """pandas writes tz-aware columns as timestamp[ns, tz=...]; DuckDB reads them as
    TIMESTAMPTZ_NS, which must load like any zoned timestamp (as UTC)."""
    contacts = pd.DataFrame(
        {
            "contact_id": ["K1", "K2"],
            "customer_id": ["A", "B"],
            "timestamp": pd.to_datetime(
                ["2025-04-01T02:00:00+02:00", "2025-04-01T12:00:00Z"], utc=True
            ),
            "channel": ["phone", "chat"],
            "reason": ["complaint", None],
        }
    )
    (tiny_dataset / "contacts.csv").unlink()
    contacts.to_parquet(tiny_dataset / "contacts.parquet")
    ds = load_dataset(tiny_dataset)
    times = ds.con.sql("SELECT timestamp FROM contacts ORDER BY contact_id").fetchall()
    assert [str(t[0]) for t in times] == ["2025-04-01 00:00:00", "2025-04-01 12:00:00"]


def test_optional_tables_may_be_absent(tiny_dataset: Path) -> None:
    (tiny_dataset / "decisions.csv").unlink()
    (tiny_dataset / "contacts.csv").unlink()
    ds = load_dataset(tiny_dataset)
    assert ds.count("decisions") == 0
    assert not ds.has("contacts")


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="dataset directory does not exist"):
        load_dataset(tmp_path / "nope")


def test_dataset_catalog_replaces_default(tiny_dataset: Path) -> None:
    (tiny_dataset / "actions.yaml").write_text(
        "actions:\n  - {id: offer_spaceship, family: product_offer, name: Ship, value: 1,"
        " product: spaceship}\n"
    )
    with pytest.raises(ContractError) as info:
        load_dataset(tiny_dataset)
    # Now the default ids are the unknown ones.
    assert "unknown action id" in str(info.value)
    assert "3 rows" in str(info.value)


def test_ids_with_inner_spaces_and_umlauts_are_valid(tiny_dataset: Path) -> None:
    for name in ("customers.csv", "contracts.csv", "interactions.csv", "contacts.csv"):
        text = (tiny_dataset / name).read_text()
        text = text.replace("\nB,", "\nKunde Müller/2,").replace("K2,B,", "K2,Kunde Müller/2,")
        (tiny_dataset / name).write_text(text)
    ds = load_dataset(tiny_dataset)
    ids = {r[0] for r in ds.con.sql("SELECT customer_id FROM customers").fetchall()}
    assert "Kunde Müller/2" in ids


def test_german_excel_export_is_read_with_notes(tiny_dataset: Path) -> None:
    """Semicolons, Windows-1252 and decimal commas: read correctly, each said in a note."""
    for name in ("customers.csv", "interactions.csv"):
        text = (tiny_dataset / name).read_text()
        text = text.replace(",", ";").replace("55.0", "55.25").replace("north", "Nürnberg-Süd")
        text = re.sub(r"(\d)\.(\d)", r"\1,\2", text)  # every decimal point a comma
        (tiny_dataset / name).write_bytes(text.encode("cp1252"))
    ds = load_dataset(tiny_dataset)
    region = ds.con.sql("SELECT region FROM customers WHERE customer_id = 'A'").fetchall()
    assert region == [("Nürnberg-Süd",)]
    amount = ds.con.sql("SELECT amount FROM interactions WHERE type = 'missed_payment'")
    assert amount.fetchall() == [(55.25,)]
    sentiment = ds.con.sql("SELECT min(sentiment) FROM interactions").fetchall()
    assert sentiment == [(-0.8,)]
    notes = " | ".join(ds.notes)
    assert "customers.csv: read as Windows-1252 (Western European) text, not UTF-8" in notes
    assert "interactions.csv: columns are separated by semicolons" in notes
    assert "interactions.csv: column 'amount': 2 number(s) written with a decimal comma" in notes
    assert "interactions.csv: column 'sentiment': 4 number(s)" in notes
    assert ds.count("interactions") == 8


def test_extra_columns_and_unknown_values_are_counted_in_notes(tiny_dataset: Path) -> None:
    edit(
        "contacts.csv",
        "contact_id,customer_id,timestamp,channel,reason",
        "contact_id,customer_id,timestamp,channel,reason,agent",
    )(tiny_dataset)
    edit(
        "contacts.csv",
        "K1,A,2025-04-01T00:00:00Z,phone,complaint",
        "K1,A,2025-04-01T00:00:00Z,telefon,rückruf,x",
    )(tiny_dataset)
    edit("contacts.csv", "K2,B,2025-04-01T12:00:00Z,chat,", "K2,B,2025-04-01T12:00:00Z,chat,,y")(
        tiny_dataset
    )
    ds = load_dataset(tiny_dataset)
    notes = " | ".join(ds.notes)
    assert "contacts.csv: 1 column(s) not in the data contract are ignored: 'agent'" in notes
    assert (
        "column 'channel': 1 row(s) with a value not in the data contract's list, "
        "e.g. 'telefon' (1)" in notes
    )
    assert (
        "column 'reason': 1 row(s) with a value not in the data contract's list, "
        "e.g. 'rückruf' (1)" in notes
    )
    assert ds.count("contacts") == 2


def test_implausible_exports_get_warnings(tiny_dataset: Path) -> None:
    assert load_dataset(tiny_dataset).warnings == []
    edit("decisions.csv", "D1,A,2025-03-01", "D1,A,2021-03-01")(tiny_dataset)
    edit("contacts.csv", "K1,A,2025-04-01", "K1,A,2029-04-01")(tiny_dataset)
    extra = "".join(f"X{i},2024-01-01,,,,,\n" for i in range(40))
    (tiny_dataset / "customers.csv").write_text(
        (tiny_dataset / "customers.csv").read_text() + extra
    )
    warnings = load_dataset(tiny_dataset).warnings
    assert warnings == [
        "interactions.csv: only 7% (3 of 43) of the customers have any interaction; is the "
        "export complete?",
        "contracts.csv: only 7% (3 of 43) of the customers hold any contract; is the export "
        "complete?",
        "decisions.csv: 33% (1 of 3) decisions are dated more than 31 days outside the "
        "interactions' range (2025-02-01 to 2025-03-31): their profiles miss the history "
        "around them; are the dates right?",
        "contacts.csv: 50% (1 of 2) contacts are dated more than 92 days outside the "
        "interactions' range (2025-02-01 to 2025-03-31): their profiles miss the history "
        "around them; are the dates right?",
    ]
