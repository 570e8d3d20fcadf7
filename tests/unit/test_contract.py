"""The data contract: a table of broken datasets, one defect each, with the exact message."""

from __future__ import annotations

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
