"""The agent desk in a real browser: Playwright drives Debian's Chromium (headless,
installed by `make system-deps`; no browser download) against a live `nba serve` on
loopback. An agent enters the key, looks a customer up, declines the top action with one
click and sees it held back in the refreshed ranking; the keyboard reports too, and an
unknown customer gets a clear banner. The run saves a screenshot of the desk."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from nba.catalog import load_catalog
from tests.conftest import free_port
from tests.serving.conftest import Workspace, cli_key, nba_server, post_json, server_env

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("NBA_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("NBA_TEST_ARTIFACTS", "test-artifacts"))


def _one_decline_holds_back(action_id: str) -> bool:
    """True if a single decline suppresses the action (by its contact policy)."""
    action = next(a for a in load_catalog().actions if a.id == action_id)
    policy = action.contact_policy
    return (policy.suppress_after_declines or 99) <= 1 or (policy.max_offers or 99) <= 1


@pytest.fixture(scope="module")
def desk(sqlite_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make system-deps` (installs chromium)")
    log = tmp_path_factory.mktemp("desk") / "decision_log.db"
    # The page is tested here, not the profile read's latency: a generous budget keeps a
    # busy 2-core CI machine (Chromium, the server and the tests) from degrading answers.
    env = {**server_env(sqlite_workspace, f"sqlite:///{log}"), "NBA_FEATURE_BUDGET_MS": "2000"}
    key = cli_key(env, "recommend,outcomes")
    port = free_port()
    with nba_server(env, port):
        # A customer whose top action one decline holds back (asked over the API itself,
        # so the page is tested on what the engine really answers).
        chosen = None
        for cid in sqlite_workspace.customers:
            body = {"customer_id": cid, "channel": "phone"}
            recs = post_json(port, "/v1/recommendations", body, key)["recommendations"]
            if len(recs) >= 2 and _one_decline_holds_back(recs[0]["action_id"]):
                chosen = cid
                break
        assert chosen is not None, "no customer whose top action one decline holds back"
        yield {"port": port, "key": key, "customer": chosen}


@contextmanager
def _desk_page(port: int, key: str, clean: bool = True) -> Iterator[Any]:
    """The desk in a fresh headless Chromium tab at 1280x800, key entered; fails the test
    on any JavaScript error and, when ``clean``, on any console error or failed request
    (a refused call, a missing favicon, an invalid input pattern)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        errors: list[str] = []
        console: list[str] = []
        failed: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.on(
            "console", lambda m: console.append(m.text) if m.type in ("error", "warning") else None
        )
        pg.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        pg.on(
            "response", lambda r: failed.append(f"{r.url} {r.status}") if r.status >= 400 else None
        )
        pg.goto(f"http://127.0.0.1:{port}/")  # redirects to /desk/
        # No key yet: the page asks for one, once for the tab.
        pg.get_by_label("Key", exact=True).fill(key)
        pg.get_by_role("button", name="Save").click()
        yield pg
        assert errors == [], f"JavaScript errors on the page: {errors}"
        if clean:
            assert console == [], f"console errors or warnings: {console}"
            assert failed == [], f"failed requests: {failed}"
        browser.close()


@pytest.fixture
def page(desk: dict[str, Any]) -> Iterator[Any]:
    with _desk_page(desk["port"], desk["key"]) as pg:
        yield pg


def _look_up(pg: Any, customer: str) -> None:
    pg.get_by_label("Customer id").fill(customer)
    pg.keyboard.press("Enter")


def test_decline_the_top_action_and_see_it_held_back(page: Any, desk: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    pg = page
    _look_up(pg, desk["customer"])
    ranked = pg.locator("#ranked > li")
    expect(ranked.first).to_be_visible()
    expect(pg.locator("#profile")).to_contain_text("customer for")
    top = ranked.first
    top_id = top.get_attribute("data-action-id")
    top_name = top.locator("h3").inner_text()
    assert top.locator(".reasons li").count() >= 1  # the reasons, in plain words
    assert "_" not in top.locator(".reasons").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / "desk.png"))

    top.get_by_role("button", name=f"Declined: {top_name}").click()
    expect(pg.locator("#status")).to_contain_text(f"Recorded: declined “{top_name}”")
    # The confirmation sits above the refreshed ranking, on screen, not below the fold.
    confirmation = pg.locator("#confirmation")
    expect(confirmation).to_contain_text(f"Recorded: declined “{top_name}”")
    box = confirmation.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 800
    held = pg.locator(f'#suppressed > li[data-action-id="{top_id}"]')
    expect(held).to_have_count(1)
    expect(held).to_contain_text("declined it just now")
    expect(pg.locator(f'#ranked > li[data-action-id="{top_id}"]')).to_have_count(0)
    pg.locator("#held-back > summary").click()
    expect(held).to_be_visible()
    pg.screenshot(path=str(ARTIFACTS / "desk-after-decline.png"))


def test_the_top_three_fit_the_screen_with_money_and_a_stale_profile_notice(
    page: Any, desk: dict[str, Any]
) -> None:
    """At 1280x800 the top three actions are on screen without scrolling; amounts carry
    the currency and the expected value that ranks them; the simulated profile is older
    than the stale threshold, so the agent is told, and its last contact is not "today"."""
    from playwright.sync_api import expect

    pg = page
    _look_up(pg, desk["customer"])
    ranked = pg.locator("#ranked > li")
    expect(ranked.first).to_be_visible()
    assert ranked.count() >= 3
    for i in range(3):
        box = ranked.nth(i).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 800, f"action {i + 1}: {box}"
    numbers = ranked.first.locator(".numbers").inner_text()
    assert numbers.startswith("expected value €") and "chance of a yes" in numbers
    stale = pg.locator("#stale")
    expect(stale).to_be_visible()
    expect(stale).to_contain_text("days old")
    last = pg.locator('#profile-facts dd[data-fact="Last contact"]').inner_text()
    assert "today" not in last


def test_a_wrong_key_is_explained_in_plain_words(desk: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    with _desk_page(desk["port"], "nba_000000000000_" + "x" * 43, clean=False) as pg:
        # The first call is refused: the key dialog opens again, saying why in plain words.
        expect(pg.locator("#key-dialog")).to_be_visible()
        expect(pg.locator("#status")).to_contain_text("Your access key is missing or not valid")
        text = pg.locator("body").inner_text()
        assert "X-API-Key" not in text and "revoked" not in text


def test_the_keyboard_reports_for_the_top_action(page: Any, desk: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    pg = page
    _look_up(pg, desk["customer"])
    first = pg.locator("#ranked > li").first
    expect(first).to_be_visible()
    name = first.locator("h3").inner_text()
    pg.locator("#actions-title").click()  # focus leaves the form: keys act on the ranking
    pg.keyboard.press("n")
    expect(pg.locator("#status")).to_contain_text(f"Recorded: no response “{name}”")


def test_an_unknown_customer_gets_a_clear_banner(page: Any) -> None:
    from playwright.sync_api import expect

    _look_up(page, "NOBODY-1")
    expect(page.locator("#banner")).to_contain_text("New or unknown customer")
    expect(page.locator("#ranked > li").first).to_be_visible()  # general suggestions


def test_a_degraded_answer_gets_a_clear_banner(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    """A server without its online store (the file is gone): every answer is degraded,
    and the page says so instead of pretending."""
    from playwright.sync_api import expect

    home = tmp_path / "home"
    shutil.copytree(sqlite_workspace.home, home)
    (home / "feast" / "online_store.db").unlink()
    env = server_env(sqlite_workspace, f"sqlite:///{tmp_path / 'log.db'}") | {
        "NBA_HOME": str(home)
    }
    key = cli_key(env, "recommend,outcomes")
    port = free_port()
    with nba_server(env, port), _desk_page(port, key, clean=False) as pg:  # 503s expected
        _look_up(pg, sqlite_workspace.customers[0])
        expect(pg.locator("#banner")).to_contain_text("Limited answer")
        expect(pg.locator("#ranked > li").first).to_be_visible()  # still an answer
