"""`nba serve` as a separate process for the benchmarks: started, waited for, stopped."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)
