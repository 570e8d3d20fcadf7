"""The agent desk's back end: the customer summary in plain words, example customers
that really are in the situation they are listed for, and the static page itself.
(The page in a real browser: test_desk_browser.py.)"""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from serving.desk import summarise
from tests.serving.conftest import Api, ApiFactory, Workspace, break_online_store

pytestmark = pytest.mark.slow


def _newest_profiles(api: Api) -> dict[str, dict[str, object]]:
    table = pq.read_table(api.settings.profiles_path)
    ts = table.column("event_timestamp")
    newest = table.filter(pc.equal(ts, pc.max(ts)))
    return {row["customer_id"]: row for row in newest.to_pylist()}


def test_summary_of_a_known_customer_is_in_plain_words(api: Api) -> None:
    profiles = _newest_profiles(api)
    cid = next(c for c, p in profiles.items() if (p["n_missed_payment_90d"] or 0) > 0)
    r = api.client.get(f"/v1/customers/{cid}", headers=api.headers("recommend"))
    assert r.status_code == 200, r.text
    body = r.json()
    profile = profiles[cid]
    assert body["known"] and body["customer_id"] == cid
    assert body["tenure"].startswith("customer for ") and "years" in body["tenure"]
    products = str(profile["active_products"] or "").split(",")
    assert body["products"] == [p.replace("_", " ") for p in products if p]
    assert "missed payment" in body["payment_status"] and "payment trouble" in body["attention"]
    texts = [v for v in body.values() if isinstance(v, str)]
    texts += [t for v in body.values() if isinstance(v, list) for t in v]
    assert not any("_" in t for t in texts if t != cid)  # never a raw feature name


def test_summary_of_an_unknown_customer_says_so(api: Api) -> None:
    r = api.client.get("/v1/customers/NOBODY-42", headers=api.headers("recommend"))
    assert r.status_code == 200, r.text
    assert r.json()["known"] is False and r.json()["tenure"] is None


def test_summary_needs_a_key_and_a_valid_id(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.client.get(f"/v1/customers/{api.workspace.customers[0]}").status_code == 401
    r = api.client.get("/v1/customers/bad%09id", headers=api.headers("recommend"))  # a tab
    assert r.status_code == 422 and "customer_id" in r.json()["detail"]
    # the contract's ids with a space or a slash inside are served (known: false here)
    for odd in ("Kunde%2042", "M%C3%BCller/7"):
        r = api.client.get(f"/v1/customers/{odd}", headers=api.headers("recommend"))
        assert r.status_code == 200 and r.json()["known"] is False


def test_summary_when_the_online_store_fails_is_a_clear_503(
    api_factory: ApiFactory, sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_online_store(monkeypatch)
    api = api_factory(sqlite_workspace)
    r = api.client.get(f"/v1/customers/{sqlite_workspace.customers[0]}", headers=api.headers())
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json() == {
        "code": "online_store_unavailable",
        "detail": "the customer's profile could not be read right now",
    }


def test_example_customers_are_in_the_situation_they_are_listed_for(sqlite_api: Api) -> None:
    api = sqlite_api
    r = api.client.get("/v1/customers/examples", headers=api.headers("recommend"))
    assert r.status_code == 200, r.text
    examples = r.json()
    profiles = _newest_profiles(api)
    whys = {e["why"] for e in examples}
    assert {"asked to cancel", "missed payments"} <= whys
    assert len({e["customer_id"] for e in examples}) == len(examples)
    column = {
        "asked to cancel": ("n_cancellation_request_30d", lambda v: (v or 0) > 0),
        "missed payments": ("n_missed_payment_90d", lambda v: (v or 0) > 0),
        "complained recently": ("n_complaint_30d", lambda v: (v or 0) > 0),
        "no e-mail address on file": ("email_known", lambda v: v == 0),
        "nothing special": ("customer_id", lambda v: True),
    }
    for e in examples:
        name, holds = column[e["why"]]
        assert holds(profiles[e["customer_id"]][name]), e


def test_the_desk_page_is_served_and_home_points_to_it(sqlite_api: Api) -> None:
    api = sqlite_api
    home = api.client.get("/", follow_redirects=False)
    assert home.status_code in (302, 303, 307) and home.headers["location"] == "/desk/"
    page = api.client.get("/desk/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="lookup"' in page.text and "desk.js" in page.text
    script = api.client.get("/desk/desk.js")
    assert script.status_code == 200 and "/v1/recommendations" in script.text


def test_summarise_words_a_quiet_customer() -> None:
    row = {
        "tenure_days": 3 * 365.25,
        "active_products": "mobile,tv_premium",
        "n_missed_payment_90d": 0,
        "n_complaint_30d": 0,
        "n_complaint_90d": 1,
        "days_since_interaction": 12,
        "sentiment_mean_30d": 0.5,
        "email_known": 1,
    }
    s = summarise("C1", row, None)
    assert s.tenure == "customer for 3.0 years" and s.products == ["mobile", "tv premium"]
    assert s.payment_status == "no missed payments in the last 3 months"
    assert s.complaints == "no complaints in the last 30 days; one complaint in the last 3 months"
    assert s.last_contact == "last contact 12 days ago" and s.attention == []
    assert s.email == "e-mail address on file" and s.recent_contacts == []
