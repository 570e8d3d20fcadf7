"""`nba serve` as a separate process for the benchmarks: started, waited for, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the workers of `nba serve --workers`), as they are now."""
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                pids += process_tree(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass  # ended while being read
    return pids


def _cpu_ticks(pid: int) -> int:
    """CPU time used so far by ``pid`` and its descendants, in clock ticks."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def _settle(pid: int, deadline: float) -> None:
    """Wait until the server stops using CPU: with several workers, /readyz answers as soon
    as one is ready while the others still load their model, and a load started then
    queues behind them."""
    per_second = os.sysconf("SC_CLK_TCK")
    last = _cpu_ticks(pid)
    while time.time() < deadline:
        time.sleep(1)
        now = _cpu_ticks(pid)
        if now - last < 0.1 * per_second:
            return
        last = now


@contextmanager
def nba_serve(
    env: dict[str, str], port: int, wait: float = 120, workers: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """The server on loopback ``port`` once ``/readyz`` answers 200; exits the script with a
    message if it does not within ``wait`` seconds."""
    nba = str(Path(sys.executable).with_name("nba"))
    server = subprocess.Popen(
        [nba, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + wait
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                sys.exit("the server did not become ready")
            time.sleep(0.5)
        _settle(server.pid, deadline)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)
