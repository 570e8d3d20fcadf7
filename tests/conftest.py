"""Shared fixtures: an isolated NBA_HOME per test and a tiny hand-written dataset."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nba.config import get_settings

TINY = {
    "customers.csv": """\
        customer_id,signup_date,birth_year,region,segment,email_since,monthly_revenue
        A,2024-01-01T00:00:00Z,1980,north,private,,50.0
        B,2024-06-01,1990,,business,2025-03-01T00:00:00Z,80.5
        C,2025-01-15T12:00:00+01:00,,south,private,2025-01-20,
        """,
    "contracts.csv": """\
        customer_id,product,start_date,end_date,monthly_fee
        A,mobile_basic,2024-01-01,,15
        A,broadband,2024-02-01,2025-03-10,40
        B,mobile_plus,2024-06-01,,35
        C,mobile_basic,2025-01-15,,15
        """,
    "interactions.csv": """\
        customer_id,timestamp,channel,type,amount,sentiment
        A,2025-03-01T10:00:00Z,phone,complaint,,-0.8
        A,2025-03-20T10:00:00Z,chat,complaint,,-0.4
        A,2025-03-25T09:00:00Z,app,login,,
        A,2025-03-28T09:00:00Z,letter,missed_payment,55.0,
        A,2025-03-31T23:59:59Z,phone,inquiry,,0.2
        B,2025-02-01T08:00:00Z,web,payment,80.5,
        B,2025-03-30T08:00:00Z,pigeon,teleport,,
        C,2025-03-15T08:00:00Z,branch,billing_question,,0.5
        """,
    "decisions.csv": """\
        decision_id,customer_id,timestamp,channel,action_id,outcome,propensity,value
        D1,A,2025-03-01T10:00:00Z,phone,offer_broadband,declined,0.25,0
        D2,A,2025-03-20T10:00:00Z,chat,retention_fee_waiver,accepted,0.5,270
        D3,C,2025-03-15T08:00:00Z,branch,installment_plan_3m,no_response,1.0,
        """,
    "contacts.csv": """\
        contact_id,customer_id,timestamp,channel,reason
        K1,A,2025-04-01T00:00:00Z,phone,complaint
        K2,B,2025-04-01T12:00:00Z,chat,
        """,
}


def write_tiny(directory: Path) -> Path:
    """Write the tiny valid dataset (CSV) into ``directory`` and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in TINY.items():
        (directory / name).write_text(textwrap.dedent(body), encoding="utf-8")
    return directory


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return write_tiny(tmp_path / "tiny")


@pytest.fixture(autouse=True)
def nba_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own workspace: no test sees another's stores."""
    home = tmp_path / "nba_home"
    monkeypatch.setenv("NBA_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port; yields Feast's connection string."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed; `make test` installs it (apt-get)")
    port = free_port()
    proc = subprocess.Popen(
        [
            *(server, "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(directory)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables (and reset the settings cache) for a block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
