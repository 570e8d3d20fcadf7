"""How the API rides out its dependencies' faults: runs the fault suite
(``tests/serving/test_faults.py``: a real server, real PostgreSQL, Redis and SQLite, light
load) and prints each fault's measured numbers.

    .venv/bin/python benchmarks/fault_recovery.py

Needs what `make test` installs (PostgreSQL, Redis). Takes about three minutes. The
recovery time is from the end of the fault to the first fully healthy answer (or ready
probe); the suite itself only checks a generous bound.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "faults.jsonl"
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/serving/test_faults.py"],
            cwd=ROOT,
            env={**os.environ, "NBA_FAULT_REPORT": str(report)},
            capture_output=True,
            text=True,
        )  # fmt: skip
        rows = (
            [json.loads(line) for line in report.read_text().splitlines()]
            if report.exists()
            else []
        )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    for row in rows:
        fault = row.pop("fault")
        print(f"{fault}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "no output"
    print(f"fault suite: {summary}")
    if run.returncode != 0:
        print(run.stdout[-4000:], run.stderr[-2000:], sep="\n", file=sys.stderr)
    return run.returncode


if __name__ == "__main__":
    raise SystemExit(main())
