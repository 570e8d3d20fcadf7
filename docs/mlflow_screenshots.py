"""Refresh the screenshots of ``docs/mlflow_review.md`` from the `make demo` workspace.

Starts ``nba ui`` on ``NBA_HOME`` (default ``./.nba``), opens it in Debian's Chromium
(headless, through Playwright) and saves ``docs/mlflow/runs.png`` (the runs),
``score.png`` (what the champion recommends to whom) and ``version.png`` (the live
version in the registry). Run after ``make demo``::

    .venv/bin/python docs/mlflow_screenshots.py
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("NBA_TEST_CHROMIUM", "/usr/bin/chromium")
OUT = ROOT / "docs" / "mlflow"


def main() -> int:
    home = Path(os.environ.get("NBA_HOME", str(ROOT / ".nba")))
    if not (home / "mlflow.db").is_file():
        print(f"no workspace at {home}: run `make demo` first", file=sys.stderr)
        return 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "nba"), "ui", "--port", str(port)],
        env={**os.environ, "NBA_HOME": str(home)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert ui.stdout is not None
        found = re.search(r"http://\S+", ui.stdout.readline())
        if not found:
            print("nba ui did not start", file=sys.stderr)
            return 1
        shoot(found[0])
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    print(f"screenshots in {OUT}")
    return 0


def shoot(url: str) -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        pg = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        pg.set_default_timeout(30_000)
        pg.goto(url)
        pg.get_by_text("train v1", exact=True).first.wait_for()
        with contextlib.suppress(Exception):  # the assistant panel, when MLflow shows it
            pg.get_by_role("button", name="Close").first.click(timeout=2_000)
        pg.wait_for_timeout(1_000)
        pg.screenshot(path=str(OUT / "runs.png"))
        pg.get_by_role("link", name=re.compile(r"^score v\d+: the active base")).first.click()
        pg.get_by_text("Show more", exact=True).first.click()
        pg.wait_for_timeout(2_000)
        pg.locator("img[src*='action_mix.png']").first.scroll_into_view_if_needed()
        pg.screenshot(path=str(OUT / "score.png"))
        pg.goto(url)
        pg.get_by_role("link", name="Model registry").first.click()
        with contextlib.suppress(Exception):  # the pop-up of a first visit
            pg.get_by_role("button", name="Try it now").click(timeout=5_000)
        pg.get_by_role("link", name="nba-policy", exact=True).last.click()
        pg.get_by_role("link", name="Version 1", exact=True).first.click()
        pg.get_by_text("Source Run", exact=True).first.wait_for()
        pg.wait_for_timeout(1_000)
        pg.screenshot(path=str(OUT / "version.png"))
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
