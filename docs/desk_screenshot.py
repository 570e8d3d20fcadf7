"""Refresh ``docs/desk.png``: the agent desk at 1280x800 on the `make demo` workspace.

Starts ``nba serve`` on ``NBA_HOME`` (default ``./.nba``), makes a key, opens the desk in
Debian's Chromium (headless, through Playwright), looks up the first example customer who
asked to cancel and saves the screenshot. Run after ``make demo``::

    .venv/bin/python docs/desk_screenshot.py [--out docs/desk.png]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("NBA_TEST_CHROMIUM", "/usr/bin/chromium")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "desk.png")
    args = parser.parse_args()
    env = {**os.environ, "NBA_HOME": os.environ.get("NBA_HOME", str(ROOT / ".nba"))}
    if not (Path(env["NBA_HOME"]) / "mlflow.db").is_file():
        print(f"no workspace at {env['NBA_HOME']}: run `make demo` first", file=sys.stderr)
        return 2
    nba = str(ROOT / ".venv" / "bin" / "nba")
    made = subprocess.run(
        [nba, "keys", "create", "--scopes", "recommend,outcomes", "--label", "docs screenshot"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    key = made.stdout.split()[-1]  # the last word of the last line
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [nba, "serve", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_ready(port)
        examples = _get(port, "/v1/customers/examples", key)
        customer = next(e["customer_id"] for e in examples if e["why"] == "asked to cancel")
        _shoot(port, key, customer, args.out)
    finally:
        server.terminate()
        server.wait(30)
    print(f"saved {args.out} (customer {customer})")
    return 0


def _wait_ready(port: int) -> None:
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("nba serve did not become ready within 60 s")


def _get(port: int, path: str, key: str) -> list[dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=10) as r:
        data: list[dict[str, str]] = json.loads(r.read())
        return data


def _shoot(port: int, key: str, customer: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_label("Key", exact=True).fill(key)
        page.get_by_role("button", name="Save").click()
        page.get_by_label("Customer id").fill(customer)
        page.get_by_label("Why they got in touch").select_option("cancellation_request")
        page.keyboard.press("Enter")
        expect(page.locator("#ranked > li").first).to_be_visible()
        page.screenshot(path=str(out))
        browser.close()


if __name__ == "__main__":
    raise SystemExit(main())
