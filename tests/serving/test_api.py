"""The real-time API through its HTTP interface (TestClient, lifespan included), on the
real Feast online stores (SQLite and Redis), the real MLflow champion and a real SQLite
decision log."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from nba.exceptions import NBAError
from nba.feature_store import open_store
from nba.policy.exploration import Exploration, in_control
from nba.policy.policy import COLD_REASON
from nba.tracking import CHAMPION, MODEL_NAME, ModelRef, configure, resolve, set_alias
from serving.engine import (
    DEGRADED_REASON_TEXT,
    Pending,
    ProfileRead,
    Recommender,
    profile_read,
)
from serving.keys import revoke_key
from serving.metrics import Metrics
from serving.models import load_apart, load_champion
from serving.online import OnlineProfiles
from serving.schemas import RecommendationRequest
from tests.serving.conftest import Api, ApiFactory, Workspace, break_online_store

pytestmark = pytest.mark.slow


def _customer_with_recommendations(api: Api, **extra: Any) -> tuple[str, dict[str, Any]]:
    for cid in api.workspace.customers[::7]:
        answer = api.recommend(cid, **extra)
        if answer["recommendations"]:
            return cid, answer
    raise AssertionError("no customer with a recommendation")


def test_recommendation_answer_is_ranked_explained_and_logged(api: Api) -> None:
    cid, a = _customer_with_recommendations(api, reason="complaint", agent_id="agent-1")
    assert a["known_customer"] is True and a["degraded"] is False
    assert a["degraded_reason"] is None and a["features_timestamp"]
    recs, suppressed = a["recommendations"], a["suppressed"]
    assert 1 <= len(recs) <= 3
    priorities = [r["priority"] for r in recs]
    assert priorities[0] == max(priorities)  # best first; then each family's best first
    for family in {r["family"] for r in recs}:
        mine = [r["priority"] for r in recs if r["family"] == family]
        assert mine == sorted(mine, reverse=True)
    for r in recs:
        # The workspace's model ranks by what actions change: priority is the expected
        # value of a yes plus the learned change in the coming months' revenue.
        assert 0 < r["propensity"] < 1 and r["long_term_value"] is not None
        assert r["priority"] == pytest.approx(r["propensity"] * r["value"] + r["long_term_value"])
        assert r["priority"] > 0
        assert r["reasons"] and all(" " in s and "_" not in s for s in r["reasons"])
    assert a["nothing_reason"] is None
    ready = api.client.get("/readyz").json()
    assert ready["objective"] == "incremental" and ready["objective_note"] is None
    assert all(s["rule"] for s in suppressed)
    assert not {r["action_id"] for r in recs} & {s["action_id"] for s in suppressed}

    logged = api.client.get(f"/v1/decisions/{a['decision_id']}", headers=api.headers()).json()
    assert [r["action_id"] for r in logged["ranking"]] == [r["action_id"] for r in recs]
    assert logged["model_version"] == a["model_version"]
    assert logged["customer_id"] == cid and logged["agent_id"] == "agent-1"
    assert logged["features_timestamp"] and logged["outcomes"] == []

    # The same policy in process, on the same online profile, ranks identically.
    model = load_champion(api.settings)
    found = OnlineProfiles(open_store(api.settings)).read(cid)
    assert found is not None
    rec = Recommender(api.settings, api.log, Metrics())
    req = RecommendationRequest(customer_id=cid, channel="phone", reason="complaint")
    profile = profile_read(found)
    decision = rec.decide_batch(model, [Pending(model, req, profile, [])])[0]
    assert [r.action_id for r in decision.recommendations] == [r["action_id"] for r in recs]
    assert [r.propensity for r in decision.recommendations] == [r["propensity"] for r in recs]
    assert [r.reasons for r in decision.recommendations] == [r["reasons"] for r in recs]


def test_unknown_customer_gets_a_cold_start_answer(api: Api) -> None:
    a = api.recommend("NEVER-SEEN-42", limit=5)
    assert a["known_customer"] is False and a["degraded"] is False
    assert a["features_timestamp"] is None
    assert a["recommendations"], "the catalog and priors still give an answer"
    model = load_champion(api.settings)
    priors = dict(zip(model.policy.catalog.ids, model.policy.model.prior_rates(), strict=True))
    for r in a["recommendations"]:
        assert r["reasons"] == [COLD_REASON]
        assert r["propensity"] == pytest.approx(priors[r["action_id"]])


def test_outcomes_are_idempotent_and_in_the_contract_decisions_table(sqlite_api: Api) -> None:
    api = sqlite_api
    _, a = _customer_with_recommendations(api)
    action = a["recommendations"][0]["action_id"]
    body = {"decision_id": a["decision_id"], "action_id": action, "outcome": "declined"}
    first = api.client.post("/v1/outcomes", json=body, headers=api.headers())
    again = api.client.post("/v1/outcomes", json=body, headers=api.headers())
    assert (first.status_code, first.json()["status"]) == (200, "recorded")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    changed = api.client.post(
        "/v1/outcomes", json={**body, "outcome": "accepted"}, headers=api.headers()
    )
    assert changed.status_code == 409 and "already recorded" in changed.json()["detail"]
    rows = api.log.query(
        "SELECT decision_id, customer_id, timestamp, channel, action_id, outcome, "
        "propensity, value FROM decisions"
    )
    assert len(rows) == 1
    decision_id, _, _, channel, action_id, outcome, propensity, value = rows[0]
    assert decision_id == f"{a['decision_id']}:{action}"
    assert (channel, action_id, outcome, propensity, value) == (
        "phone",
        action,
        "declined",
        1.0,  # the greedy policy shows its top action with certainty
        None,
    )


def test_a_decline_shows_in_the_very_next_recommendation(api: Api) -> None:
    cid, a = _customer_with_recommendations(api, limit=11)
    top = a["recommendations"][0]["action_id"]
    cp = load_champion(api.settings).policy.catalog.by_id(top).contact_policy
    needed = min(cp.max_offers or 99, cp.suppress_after_declines or 99)
    for _ in range(needed):
        assert top in [r["action_id"] for r in a["recommendations"]]
        r = api.client.post(
            "/v1/outcomes",
            json={"decision_id": a["decision_id"], "action_id": top, "outcome": "declined"},
            headers=api.headers(),
        )
        assert r.status_code == 200, r.text
        a = api.recommend(cid, limit=11)
    assert top not in [r["action_id"] for r in a["recommendations"]]
    rules = {s["action_id"]: s["rule"] for s in a["suppressed"]}
    assert rules[top].startswith("contact policy:")


def test_an_accepted_gesture_pauses_every_offer_at_once(api: Api) -> None:
    """The company's contact policy reads the decision log at once: after a retention
    gesture is accepted, the next answer offers nothing, and says why in plain words."""
    for cid in api.workspace.customers[::3]:
        a = api.recommend(cid, limit=11)
        gestures = [r for r in a["recommendations"] if r["family"] == "retention_gesture"]
        if gestures:
            break
    else:
        raise AssertionError("no customer with a retention gesture among the candidates")
    r = api.client.post(
        "/v1/outcomes",
        json={"decision_id": a["decision_id"], "action_id": gestures[0]["action_id"],
              "outcome": "accepted"},
        headers=api.headers(),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    after = api.recommend(cid, limit=11)
    assert after["recommendations"] == []
    rules = {s["rule"] for s in after["suppressed"]}
    pause = (
        "contact policy: the customer accepted a retention gesture today; nothing more is "
        "offered for 14 days after that"
    )
    assert pause in rules
    assert {s["action_id"] for s in after["suppressed"]} >= {
        r["action_id"] for r in a["recommendations"]
    }


BAD_KEY = "nba_000000000000_" + "x" * 43


@pytest.mark.parametrize(
    ("method", "path", "key", "status"),
    [
        ("POST", "/v1/recommendations", None, 401),
        ("POST", "/v1/recommendations", "not-a-key", 401),
        ("POST", "/v1/recommendations", BAD_KEY, 401),
        ("POST", "/v1/recommendations", "outcomes", 403),
        ("POST", "/v1/recommendations", "admin", 403),
        ("POST", "/v1/recommendations", "recommend", 200),
        ("POST", "/v1/outcomes", None, 401),
        ("POST", "/v1/outcomes", "recommend", 403),
        ("POST", "/v1/outcomes", "outcomes", 404),  # past auth: the decision is unknown
        ("POST", "/admin/reload", "recommend", 403),
        ("POST", "/admin/reload", "admin", 200),
        ("GET", "/v1/decisions/nope", None, 401),
        ("GET", "/healthz", None, 200),
        ("GET", "/livez", None, 200),
        ("GET", "/readyz", None, 200),
        ("GET", "/metrics", None, 401),  # counts per action: not for everyone
        ("GET", "/metrics", "recommend", 403),
        ("GET", "/metrics", "metrics", 200),
    ],
)
def test_auth_matrix(
    sqlite_api: Api, method: str, path: str, key: str | None, status: int
) -> None:
    api = sqlite_api
    headers = {} if key is None else {"X-API-Key": api.keys.get(key, key)}
    body: dict[str, Any] = {
        "/v1/recommendations": {"customer_id": api.workspace.customers[0], "channel": "phone"},
        "/v1/outcomes": {
            "decision_id": "d1",
            "action_id": "ask_email_address",
            "outcome": "accepted",
        },
    }.get(path, {})
    r = api.client.request(method, path, json=body or None, headers=headers)
    assert r.status_code == status, r.text
    if status == 401:
        assert "API key" in r.json()["detail"] and r.json()["code"] == "unauthorized"
    if status == 403:
        assert "scope" in r.json()["detail"] and r.json()["code"] == "forbidden"


def test_a_revoked_key_stops_working_on_the_next_request(sqlite_api: Api) -> None:
    api = sqlite_api
    body = {"customer_id": api.workspace.customers[0], "channel": "chat"}
    key = api.keys["recommend"]
    ok = api.client.post("/v1/recommendations", json=body, headers={"X-API-Key": key})
    assert ok.status_code == 200
    assert revoke_key(api.log, key)
    gone = api.client.post("/v1/recommendations", json=body, headers={"X-API-Key": key})
    assert gone.status_code == 401


def test_auth_can_be_switched_off_for_a_local_trial(
    api_factory: ApiFactory, sqlite_workspace: Workspace
) -> None:
    api = api_factory(sqlite_workspace, NBA_AUTH="false")
    body = {"customer_id": sqlite_workspace.customers[0], "channel": "phone"}
    assert api.client.post("/v1/recommendations", json=body).status_code == 200


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["body.customer_id", "body.channel"]),
        ({"customer_id": "C1", "channel": "fax"}, ["body.channel"]),
        ({"customer_id": "C1", "channel": "phone", "limit": 0}, ["body.limit"]),
        ({"customer_id": "C1", "channel": "phone", "limit": "three"}, ["body.limit"]),
        ({"customer_id": "", "channel": "phone"}, ["body.customer_id"]),
        ({"customer_id": "x" * 200, "channel": "phone"}, ["body.customer_id"]),
        ({"customer_id": " C1", "channel": "phone"}, ["body.customer_id"]),
        ({"customer_id": "C1\n", "channel": "phone"}, ["body.customer_id"]),
        ({"customer_id": 42, "channel": "phone"}, ["body.customer_id"]),
        ({"customer_id": "C1", "channel": "phone", "reason": "bored"}, ["body.reason"]),
        ({"customer_id": "C1", "channel": "phone", "coupon": "X"}, ["body.coupon"]),
    ],
)
def test_malformed_recommendation_bodies_get_422_naming_the_field(
    sqlite_api: Api, body: dict[str, Any], fields: list[str]
) -> None:
    r = sqlite_api.client.post("/v1/recommendations", json=body, headers=sqlite_api.headers())
    assert r.status_code == 422
    for field in fields:
        assert field in r.json()["detail"]


def test_invalid_json_and_oversized_bodies_are_refused(sqlite_api: Api) -> None:
    api = sqlite_api
    headers = {**api.headers(), "content-type": "application/json"}
    broken = api.client.post("/v1/recommendations", content=b"{not json", headers=headers)
    assert broken.status_code == 422 and "body" in broken.json()["detail"]
    huge = json.dumps({"customer_id": "C1", "channel": "phone", "pad": "x" * 50_000})
    r = api.client.post("/v1/recommendations", content=huge.encode(), headers=headers)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_bad_outcomes_get_the_reason(sqlite_api: Api) -> None:
    api = sqlite_api
    _, a = _customer_with_recommendations(api)
    shown = {r["action_id"] for r in a["recommendations"]}
    catalog = load_champion(api.settings).policy.catalog
    not_shown = next(i for i in catalog.ids if i not in shown)
    cases = [
        ({"decision_id": "nope", "action_id": catalog.ids[0]}, 404, "unknown decision"),
        ({"decision_id": a["decision_id"], "action_id": "free_lunch"}, 422, "unknown action"),
        ({"decision_id": a["decision_id"], "action_id": not_shown}, 422, "not recommended"),
    ]
    for partial, status, text in cases:
        body = {**partial, "outcome": "accepted"}
        r = api.client.post("/v1/outcomes", json=body, headers=api.headers())
        assert (r.status_code, text in r.json()["detail"]) == (status, True), r.text
    r = api.client.post(
        "/v1/outcomes",
        json={"decision_id": a["decision_id"], "action_id": next(iter(shown)), "outcome": "?"},
        headers=api.headers(),
    )
    assert r.status_code == 422 and "body.outcome" in r.json()["detail"]
    assert api.log.count("outcomes") == 0


def _default_ranking(api: Api, customer_id: str) -> list[str]:
    model = load_champion(api.settings)
    rec = Recommender(api.settings, api.log, Metrics())
    req = RecommendationRequest(customer_id=customer_id, channel="phone")
    profile = ProfileRead(model.default_profile, "", None, True)
    decision = rec.decide_batch(model, [Pending(model, req, profile, [])])[0]
    return [r.action_id for r in decision.recommendations]


def test_a_failing_online_store_degrades_the_answer_instead_of_failing_it(
    api_factory: ApiFactory, sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_online_store(monkeypatch)
    api = api_factory(sqlite_workspace)
    cid = sqlite_workspace.customers[3]
    a = api.recommend(cid)
    # Stable words, never the store's own error text.
    assert a["degraded"] is True and a["degraded_reason"] == "the online store could not be read"
    assert a["known_customer"] is True and a["features_timestamp"] is None
    assert [r["action_id"] for r in a["recommendations"]] == _default_ranking(api, cid)
    assert all(r["reasons"] == [DEGRADED_REASON_TEXT] for r in a["recommendations"])
    metrics = api.client.get("/metrics", headers=api.headers("metrics")).text
    assert 'nba_degraded_total{cause="store_error"} 1.0' in metrics


def test_a_slow_online_store_degrades_the_answer(
    api_factory: ApiFactory, sqlite_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = OnlineProfiles.read_many

    def slow(self: OnlineProfiles, ids: list[str]) -> list[Any]:
        time.sleep(0.3)
        return real(self, ids)

    monkeypatch.setattr(OnlineProfiles, "read_many", slow)
    api = api_factory(sqlite_workspace, NBA_FEATURE_BUDGET_MS="20")
    a = api.recommend(sqlite_workspace.customers[4])
    assert a["degraded"] is True and "20 ms budget" in a["degraded_reason"]
    logged = api.client.get(f"/v1/decisions/{a['decision_id']}", headers=api.headers()).json()
    assert logged["degraded"] is True and "20 ms" in logged["degraded_reason"]


def test_without_a_model_the_service_is_alive_but_not_ready(
    api_factory: ApiFactory, tmp_path: Any
) -> None:
    empty = Workspace(tmp_path / "empty", tmp_path, {"NBA_HOME": str(tmp_path / "empty")}, [])
    api = api_factory(empty)
    assert api.client.get("/healthz").status_code == 200
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and not ready.json()["ready"]
    assert "nba train" in ready.json()["detail"]
    assert str(tmp_path) not in ready.text  # the tracking store's path stays in the log
    r = api.client.post(
        "/v1/recommendations",
        json={"customer_id": "C1", "channel": "phone"},
        headers=api.headers(),
    )
    assert r.status_code == 503 and "nba train" in r.json()["detail"]


def test_reload_swaps_the_champion_without_a_failed_request(sqlite_api: Api) -> None:
    api = sqlite_api
    configure(api.settings)
    client = MlflowClient()
    current = client.get_model_version_by_alias(MODEL_NAME, "champion")
    new = mlflow.register_model(current.source, MODEL_NAME)
    seen: list[tuple[int, str]] = []
    stop = threading.Event()
    body = {"customer_id": api.workspace.customers[1], "channel": "phone"}

    def hammer() -> None:
        while not stop.is_set():
            r = api.client.post("/v1/recommendations", json=body, headers=api.headers())
            seen.append((r.status_code, r.json().get("model_version", "")))

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        time.sleep(0.3)
        set_alias("champion", str(new.version), api.settings)
        r = api.client.post("/admin/reload", headers=api.headers("admin"))
        assert r.status_code == 200 and r.json() == {
            "model_version": str(new.version),
            "changed": True,
        }
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join()
        set_alias("champion", str(current.version), api.settings)
    assert seen and all(status == 200 for status, _ in seen)
    versions = [v for _, v in seen]
    assert versions[0] == str(current.version) and versions[-1] == str(new.version)
    assert set(versions) == {str(current.version), str(new.version)}


def test_a_version_loaded_apart_answers_exactly_as_one_loaded_here(sqlite_api: Api) -> None:
    """The server loads new versions in a helper process and unpickles them: same answers,
    reasons included, as the version loaded in its own process."""
    api = sqlite_api
    ref = resolve(CHAMPION, api.settings)
    here, apart = load_champion(api.settings, ref), load_apart(api.settings, ref)
    assert (apart.version, apart.objective) == (here.version, here.objective)
    rec = Recommender(api.settings, api.log, Metrics())
    reader = OnlineProfiles(open_store(api.settings))
    compared = 0
    for cid in api.workspace.customers[:20]:
        found = reader.read(cid)
        if found is None:
            continue
        req = RecommendationRequest(customer_id=cid, channel="phone", reason="complaint")
        profile = profile_read(found)
        a, b = (rec.decide_batch(m, [Pending(m, req, profile, [])])[0] for m in (here, apart))
        assert [(r.action_id, r.propensity, r.reasons) for r in a.recommendations] == [
            (r.action_id, r.propensity, r.reasons) for r in b.recommendations
        ]
        compared += bool(a.recommendations)
    assert compared >= 5


def test_a_version_that_cannot_be_loaded_leaves_the_served_one_answering(
    sqlite_api: Api, tmp_path: Path
) -> None:
    api = sqlite_api
    configure(api.settings)
    current = MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion")
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "MLmodel").write_text("this is not a model\n", encoding="utf-8")
    bad = mlflow.register_model(broken.as_uri(), MODEL_NAME)
    with pytest.raises(NBAError, match=f"model version {bad.version} could not be loaded"):
        load_apart(
            api.settings, ModelRef(f"models:/{MODEL_NAME}/{bad.version}", str(bad.version), None)
        )
    set_alias("champion", str(bad.version), api.settings)
    try:
        r = api.client.post("/admin/reload", headers=api.headers("admin"))
        assert r.status_code == 200
        assert r.json() == {"model_version": str(current.version), "changed": False}
        answer = api.recommend(api.workspace.customers[1])
        assert answer["model_version"] == str(current.version)
    finally:
        set_alias("champion", str(current.version), api.settings)


def test_metrics_count_decisions_outcomes_and_latency(sqlite_api: Api) -> None:
    api = sqlite_api
    _, a = _customer_with_recommendations(api)
    top = a["recommendations"][0]["action_id"]
    api.client.post(
        "/v1/outcomes",
        json={"decision_id": a["decision_id"], "action_id": top, "outcome": "accepted"},
        headers=api.headers(),
    )
    text = api.client.get("/metrics", headers=api.headers("metrics")).text
    counted = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("nba_decisions_total{")
    ]
    assert sum(counted) >= 1 and f'nba_decisions_total{{action_id="{top}"}}' in text
    assert 'nba_outcomes_total{outcome="accepted",status="recorded"} 1.0' in text
    assert 'nba_request_seconds_count{route="/v1/recommendations",status="2xx"}' in text
    assert f"nba_model_version {float(a['model_version'])}" in text


def test_logs_carry_no_customer_data_or_keys(
    sqlite_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = sqlite_api
    caplog.set_level("INFO")
    cid = api.workspace.customers[2]
    api.recommend(cid)
    api.client.post(
        "/v1/recommendations", json={"customer_id": cid, "channel": "fax"}, headers=api.headers()
    )
    access = [r for r in caplog.records if r.name == "nba.access"]
    assert [getattr(r, "status", None) for r in access][-2:] == [200, 422]
    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert cid not in everything
    assert not any(k in everything for k in api.keys.values())


def test_openapi_documents_every_endpoint_with_examples(sqlite_api: Api) -> None:
    spec = sqlite_api.client.get("/openapi.json").json()
    for path in ("/v1/recommendations", "/v1/outcomes", "/admin/reload", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert schemas["RecommendationRequest"]["examples"]
    assert schemas["OutcomeRequest"]["examples"]
    assert "APIKeyHeader" in spec["components"]["securitySchemes"]


def _greedy_top(api: Api, customer_id: str) -> tuple[str, int]:
    """The policy's own best action for the customer, and how many candidates it has."""
    model = load_champion(api.settings)
    found = OnlineProfiles(open_store(api.settings)).read(customer_id)
    assert found is not None
    rec = Recommender(api.settings, api.log, Metrics())
    req = RecommendationRequest(customer_id=customer_id, channel="phone", limit=20)
    decision = rec.decide_batch(model, [Pending(model, req, profile_read(found), [])])[0]
    return decision.recommendations[0].action_id, len(decision.recommendations)


def test_epsilon_exploration_logs_the_exact_probability_of_the_shown_action(
    api_factory: ApiFactory, sqlite_workspace: Workspace
) -> None:
    api = api_factory(
        sqlite_workspace, NBA_EXPLORATION="epsilon", NBA_EPSILON="0.5", NBA_EXPLORATION_SEED="7"
    )
    customer = next(c for c in sqlite_workspace.customers if _greedy_top(api, c)[1] >= 3)
    best, k = _greedy_top(api, customer)
    tops, probabilities = [], set()
    for _ in range(60):
        answer = api.recommend(customer, limit=2)
        recs = answer["recommendations"]
        assert isinstance(recs, list) and len(recs) == 2
        logged = api.log.decision(str(answer["decision_id"]))
        assert logged is not None and logged["arm"] == "nba"
        top = logged["ranking"][0]
        assert top["action_id"] == recs[0]["action_id"]
        expected = 0.5 + 0.5 / k if top["action_id"] == best else 0.5 / k
        assert top["shown_probability"] == pytest.approx(expected)
        assert logged["ranking"][1]["shown_probability"] is None
        tops.append(top["action_id"])
        probabilities.add(round(top["shown_probability"], 9))
    assert len(set(tops)) > 1 and tops.count(best) > 20  # explores, mostly exploits
    # The reported outcome carries the logged probability into the decisions table.
    r = api.client.post(
        "/v1/outcomes",
        json={"decision_id": answer["decision_id"], "action_id": tops[-1], "outcome": "declined"},
        headers=api.headers(),
    )
    assert r.status_code == 200, r.text
    row = api.log.query(
        "SELECT propensity FROM outcomes WHERE decision_id = ?", (answer["decision_id"],)
    )
    assert row[0][0] == pytest.approx(logged["ranking"][0]["shown_probability"])


def test_the_control_group_is_flagged_and_stable(
    api_factory: ApiFactory, sqlite_workspace: Workspace
) -> None:
    api = api_factory(sqlite_workspace, NBA_CONTROL_SHARE="0.5", NBA_EXPLORATION_SEED="3")
    arms = {}
    for customer in sqlite_workspace.customers[:40]:
        first = api.recommend(customer)
        again = api.recommend(customer)
        a = api.log.decision(str(first["decision_id"]))
        b = api.log.decision(str(again["decision_id"]))
        assert a is not None and b is not None and a["arm"] == b["arm"]  # stable
        arms[customer] = a["arm"]
        if a["arm"] == "control" and a["ranking"]:
            _, k = _greedy_top(api, customer)
            assert a["ranking"][0]["shown_probability"] == pytest.approx(1 / k)
        elif a["ranking"]:
            assert a["ranking"][0]["shown_probability"] == 1.0
    assert 8 <= list(arms.values()).count("control") <= 32


def test_thompson_exploration_logs_a_probability_for_every_answer(
    api_factory: ApiFactory, sqlite_workspace: Workspace
) -> None:
    api = api_factory(
        sqlite_workspace,
        NBA_EXPLORATION="thompson",
        NBA_THOMPSON_STRENGTH="20",
        NBA_EXPLORATION_SEED="5",
    )
    customer = next(c for c in sqlite_workspace.customers if _greedy_top(api, c)[1] >= 3)
    best, _ = _greedy_top(api, customer)
    tops = []
    for _ in range(40):
        answer = api.recommend(customer)
        logged = api.log.decision(str(answer["decision_id"]))
        assert logged is not None
        p = logged["ranking"][0]["shown_probability"]
        assert 0 < p <= 1
        tops.append(logged["ranking"][0]["action_id"])
    assert tops.count(best) > 10 and len(set(tops)) > 1


def test_challenger_traffic_is_served_by_the_challenger_and_flagged(
    api_factory: ApiFactory, sqlite_workspace: Workspace
) -> None:
    """With NBA_CHALLENGER_SHARE, a stable share of customers is answered by @challenger
    (its version in the log, arm "challenger"); the control group is unchanged."""
    api = api_factory(
        sqlite_workspace,
        NBA_CHALLENGER_SHARE="0.4",
        NBA_CONTROL_SHARE="0.2",
        NBA_EXPLORATION_SEED="3",
    )
    configure(api.settings)
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    new = mlflow.register_model(champion.source, MODEL_NAME)
    set_alias("challenger", str(new.version), api.settings)
    try:
        r = api.client.post("/admin/reload", headers=api.headers("admin"))
        assert r.status_code == 200 and r.json()["changed"] is True, r.text
        arms: dict[str, str] = {}
        for customer in sqlite_workspace.customers[:60]:
            first = api.recommend(customer)
            again = api.recommend(customer)
            a = api.log.decision(str(first["decision_id"]))
            b = api.log.decision(str(again["decision_id"]))
            assert a is not None and b is not None and a["arm"] == b["arm"]
            arms[customer] = a["arm"]
            expected = str(new.version) if a["arm"] == "challenger" else str(champion.version)
            assert first["model_version"] == expected, (customer, a["arm"])
        counts = {arm: list(arms.values()).count(arm) for arm in ("nba", "challenger", "control")}
        assert counts["challenger"] >= 12 and counts["control"] >= 4 and counts["nba"] >= 15
        # The same customers are in the control group as without challenger traffic.
        plain = Exploration(control_share=0.2)
        assert {c for c, a in arms.items() if a == "control"} == {
            c for c in arms if in_control(c, plain)
        }
    finally:
        client.delete_registered_model_alias(MODEL_NAME, "challenger")


def test_failed_keys_from_one_address_are_limited(
    api_factory: ApiFactory, sqlite_workspace: Workspace
) -> None:
    api = api_factory(sqlite_workspace, NBA_AUTH_FAILURES_PER_MINUTE="3")
    body = {"customer_id": sqlite_workspace.customers[0], "channel": "chat"}
    statuses = [
        api.client.post("/v1/recommendations", json=body, headers={"X-API-Key": BAD_KEY})
        for _ in range(5)
    ]
    assert [r.status_code for r in statuses] == [401, 401, 401, 429, 429]
    assert statuses[-1].json()["code"] == "too_many_failed_keys"
    assert 0 < int(statuses[-1].headers["retry-after"]) <= 60
    # Blocked even with a good key until the minute is over: the address, not the key.
    good = api.client.post("/v1/recommendations", json=body, headers=api.headers())
    assert good.status_code == 429


def test_security_headers_and_no_caching_of_customer_data(sqlite_api: Api) -> None:
    api = sqlite_api
    answer = api.client.post(
        "/v1/recommendations",
        json={"customer_id": api.workspace.customers[0], "channel": "chat"},
        headers=api.headers(),
    )
    desk = api.client.get("/desk/")
    ready = api.client.get("/readyz")
    for r in (answer, desk, ready):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in desk.headers["content-security-policy"]
    assert "default-src 'self'" in desk.headers["content-security-policy"]
    assert "cache-control" not in desk.headers


def test_every_status_the_api_can_answer_is_in_the_spec(sqlite_api: Api) -> None:
    api = sqlite_api
    spec = api.client.get("/openapi.json").json()
    documented = set(spec["paths"]["/v1/recommendations"]["post"]["responses"])
    assert {"200", "400", "401", "403", "408", "413", "422", "429", "500", "503"} <= documented
    for body in (b"\xff\xfe not utf-8", b"[" * 8000):
        r = api.client.post(
            "/v1/recommendations",
            content=body,
            headers={**api.headers(), "Content-Type": "application/json"},
        )
        assert r.status_code in (400, 422), r.text
        assert set(r.json()) == {"code", "detail"} and r.json()["code"] in (
            "unreadable_body",
            "invalid_request",
        )


def test_readiness_shows_no_paths_hosts_or_counts(sqlite_api: Api) -> None:
    body = sqlite_api.client.get("/readyz").json()
    text = json.dumps(body)
    assert body["decision_log"] == "sqlite" and body["decision_log_status"] == "ok"
    assert body["feature_store"] == "sqlite" and body["feature_store_status"] == "ok"
    assert "/" not in text.replace("n/a", "")
