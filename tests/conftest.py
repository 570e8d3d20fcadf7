"""Shared fixtures: an isolated NBA_HOME per test and a tiny hand-written dataset."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


class RedisServer:
    """A real redis-server on a free loopback port that can be stopped and started again
    (it saves its data on stop and loads it on start, as a production Redis would)."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; `make test` installs it (apt-get)")
        self.binary, self.directory, self.port = binary, directory, free_port()
        self.url = f"127.0.0.1:{self.port}"  # Feast's form
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            import redis

            with suppress(Exception):
                redis.Redis(port=self.port).save()
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A real redis-server on a free loopback port; yields Feast's connection string."""
    with running_redis(directory) as server:
        yield server.url


@contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail("PostgreSQL is not installed; `make test` installs it (apt-get)")
    return found[-1]


class PostgresServer:
    """A real PostgreSQL server (Debian's, run as the postgres user when we are root) on a
    free loopback port, with a trusted user ``nba``; can be stopped and started again."""

    def __init__(self) -> None:
        # Not under pytest's temporary folder: its parents are private to root, and the
        # server runs as the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="nba-pg-"))
        self.data, self.sock = self.root / "data", self.root / "sock"
        self.sock.mkdir()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
        subprocess.run(
            [
                *self.as_postgres,
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "nba",
            ],
            check=True,
            capture_output=True,
        )
        self.port = free_port()
        self.url = f"postgresql://nba@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.as_postgres, _pg_bin("pg_ctl"), "-D", str(self.data), *args],
            check=check,
            capture_output=True,
        )

    def start(self) -> None:
        self._ctl(
            "-l",
            str(self.root / "log"),
            "-o",
            f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1",
            "-w",
            "start",
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        """Like a crash: no clean shutdown of the sessions."""
        self._ctl("-m", "immediate", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


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
