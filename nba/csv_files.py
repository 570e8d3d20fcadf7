"""Reading the contract's CSV files as a CRM or Excel exports them.

Encoding and column separator are detected, not assumed: a German Excel export is
``;``-separated Windows-1252 with decimal commas, and it is read correctly with a note
rather than misdiagnosed. Detection is charset-normalizer's (encoding) and CleverCSV's
(dialect) on the file's first megabyte. Every value read other than as written (a decimal
comma) is counted in a note; a file that cannot be read gets a message saying what the
file is and how to save it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import clevercsv
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from nba.exceptions import NBAError

SAMPLE_BYTES = 1 << 20
MAX_HEADER_BYTES = 64 * 1024
"""A first line longer than this is not a header row."""
DIALECT_SAMPLE_LINES = 50
SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}
DECIMAL_COMMA = r"^\s*[+-]?\d+,\d+\s*$"
_ENCODING_NAMES = {"utf_8": "UTF-8", "cp1252": "Windows-1252 (Western European)"}


class CsvReadError(NBAError):
    """A CSV file cannot be read; the message says why and how to save it."""


@dataclass
class CsvFile:
    """A CSV file read as text columns, and what was read other than as written."""

    table: pa.Table
    notes: list[str] = field(default_factory=list)


def _encoding(path: Path, sample: bytes) -> str:
    """The file's encoding: UTF-8 (with or without a byte-order mark) when the sample
    decodes as such, else charset-normalizer's finding, preferring Windows-1252 where it
    fits the bytes as well (Excel's "CSV" on German and Western European Windows)."""
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf_8_sig"
    try:
        sample.decode("utf-8")
        return "utf_8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and len(sample) == SAMPLE_BYTES:
            return "utf_8"  # a character cut at the sample's end
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        raise CsvReadError(
            f"{path.name}: the file is not text (binary content, or an encoding that cannot "
            "be recognised); export it as CSV (in Excel: Save As > 'CSV UTF-8')"
        )
    return "cp1252" if "cp1252" in best.could_be_from_charset else best.encoding


def _first_line(path: Path, text: str) -> str:
    end = text.find("\n")
    line = text if end < 0 else text[:end]
    if len(line.encode("utf-8", "replace")) > MAX_HEADER_BYTES:
        raise CsvReadError(
            f"{path.name}: the first line is over {MAX_HEADER_BYTES // 1024} KB long, so it "
            "is not a header row of column names; is this the right file?"
        )
    return line.rstrip("\r")


def _delimiter(text: str) -> str:
    """The column separator, by CleverCSV's dialect detection on the first lines; a comma
    when it finds none (a one-column file)."""
    lines = "\n".join(text.splitlines()[:DIALECT_SAMPLE_LINES])
    try:
        dialect = clevercsv.Detector().detect(lines, delimiters=list(SEPARATORS))
    except Exception:  # detection is a heuristic; an odd sample must not stop the read
        dialect = None
    found = getattr(dialect, "delimiter", None)
    return found if found in SEPARATORS else ","


def read_csv(path: Path, number_columns: frozenset[str] = frozenset()) -> CsvFile:
    """Read ``path`` with every column as text. ``number_columns`` are the contract's
    number columns: decimal commas in them are read as decimals (with a note) where the
    separator is not a comma."""
    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    if not sample.strip():
        raise CsvReadError(f"{path.name}: the file is empty (no header row)")
    encoding = _encoding(path, sample)
    text = sample.decode(encoding, errors="replace")
    first = _first_line(path, text)
    delimiter = _delimiter(text)
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter), [])
    notes = []
    if encoding not in ("utf_8", "utf_8_sig"):
        name = _ENCODING_NAMES.get(encoding, encoding)
        notes.append(
            f"{path.name}: read as {name} text, not UTF-8 (to avoid this note, save it as "
            "'CSV UTF-8')"
        )
    if delimiter != ",":
        notes.append(f"{path.name}: columns are separated by {SEPARATORS[delimiter]}")
    table = _read(path, header, encoding, delimiter)
    if delimiter != ",":
        table = _decimal_commas(path, table, number_columns, notes)
    return CsvFile(table, notes)


def _read(path: Path, header: list[str], encoding: str, delimiter: str) -> pa.Table:
    read = pacsv.ReadOptions(encoding=encoding)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        return pacsv.read_csv(
            path,
            read_options=read,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=convert,
        )
    except pa.ArrowInvalid as exc:
        if "Expected" not in str(exc) or "columns" not in str(exc):
            raise CsvReadError(f"{path.name}: cannot read the file: {_plain(exc)}") from None
    raise CsvReadError(_ragged_rows(path, header, encoding, delimiter)) from None


def _plain(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "invalid UTF8" in text or "UTF-8" in text:
        return "some bytes are not valid text in the file's encoding; save it as 'CSV UTF-8'"
    return text


def _ragged_rows(path: Path, header: list[str], encoding: str, delimiter: str) -> str:
    """Name the lines whose number of fields differs from the header's, and why that
    usually happens."""
    bad: list[pacsv.InvalidRow] = []

    def collect(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "skip"

    pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding, use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=collect),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header}),
    )
    shown = "; ".join(
        f"line {r.number}: {r.actual_columns} fields" if r.number else f"{r.actual_columns} fields"
        for r in bad[:3]
    )
    text = (
        f"{path.name}: {len(bad):,} line(s) have a different number of fields than the "
        f"header's {len(header)} (e.g. {shown})"
    )
    if delimiter == "," and any(re.search(r"\d,\d", r.text) for r in bad):
        text += (
            "; the lines hold numbers with a decimal comma (12,50), which split a field "
            "in a comma-separated file: write decimals with a point, or export with ';' "
            "as the separator"
        )
    return text


def _decimal_commas(
    path: Path, table: pa.Table, number_columns: frozenset[str], notes: list[str]
) -> pa.Table:
    for name in sorted(number_columns & set(table.column_names)):
        col = table[name]
        comma = pc.match_substring_regex(col, DECIMAL_COMMA)
        n = int(pc.sum(comma.cast(pa.int64())).as_py() or 0)
        if not n:
            continue
        fixed = pc.replace_substring(col, ",", ".")
        table = table.set_column(
            table.column_names.index(name), name, pc.if_else(comma, fixed, col)
        )
        notes.append(
            f"{path.name}: column '{name}': {n:,} number(s) written with a decimal comma "
            "(12,50) read as decimals (12.50)"
        )
    return table
