"""The recommender behind the API: profile read, contact history, policy, decision log.

Kept apart from the HTTP layer so the same steps can be timed in-process (the benchmark's
floor) and tested without a server. One answer:

1. the live profile from the online store, within ``NBA_FEATURE_BUDGET_MS`` (in a worker
   thread, so a hung store cannot stall the server). Store down, slow or failing: the
   model ranks the model version's typical profile and the answer says ``degraded``.
   Customer not in the store: a cold-start answer from the catalog and the actions' prior
   rates (``known_customer: false``);
2. the customer's outcomes of the last year from the decision log, so the contact policy
   sees a decline the moment it is reported;
3. the policy (the same code as batch scoring and the registered pyfunc model);
4. the answer, committed to the decision log before it is returned.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np

from nba.config import Settings
from nba.decision_log import DecisionLog, ServedRecord, now_utc, ranking_entries
from nba.policy.arbitration import History
from nba.policy.design import profile_vector
from nba.policy.exploration import Choice, Exploration, assign_arm, choose, shown_order
from nba.policy.policy import Contacts, Decision
from nba.tracking import CHALLENGER, CHAMPION, ModelRef, resolve
from serving.errors import unavailable
from serving.metrics import Metrics
from serving.models import UNKNOWN_PROFILE, LoadedModel, load_apart, load_champion
from serving.online import BatchedReader, Found, OnlineProfiles
from serving.schemas import (
    RecommendationOut,
    RecommendationRequest,
    RecommendationResponse,
    SuppressedOut,
)

log = logging.getLogger("nba.serving")

DEGRADED_REASON_TEXT = "live profile unavailable right now: ranked for a typical customer"
# Why an answer is degraded, in stable words (never the store's own error text).
DEGRADED_CAUSES = {
    "store_unavailable": "the online store is unavailable",
    "store_timeout": "the online store was slower than its {:g} ms budget",
    "store_error": "the online store could not be read",
}
# Said to clients instead of the registry's own error, which names the tracking store.
NO_MODEL_TEXT = (
    "no model is loaded yet: run `nba train --data DIR`; the server picks it up by itself"
)
NOTHING_REASON = (
    "Nothing is worth offering this customer right now: just help with the request. "
    "No action is expected to do more good than harm today."
)


@dataclass(frozen=True)
class ProfileRead:
    x: np.ndarray  # one profile_matrix row (design.profile_vector)
    active_products: str
    timestamp: datetime | None
    known: bool
    degraded_cause: str | None = None
    degraded_detail: str | None = None


def profile_read(found: Found) -> ProfileRead:
    """What the policy needs of an online read (``None``: the customer is unknown)."""
    if found is None:
        return ProfileRead(UNKNOWN_PROFILE, "", None, False)
    row, ts = found
    return ProfileRead(profile_vector(row), str(row.get("active_products") or ""), ts, True)


def history_of(
    model: LoadedModel, outcomes: list[tuple[str, float, str]]
) -> list[tuple[int, float, bool, bool]]:
    """The decision log's outcomes as the contact policy counts them: (catalog index, age
    in days, declined, accepted)."""
    index = model.action_index
    return [(index.get(a, -1), age, o == "declined", o == "accepted") for a, age, o in outcomes]


@dataclass
class Pending:
    """An answer waiting for the next policy batch."""

    model: LoadedModel
    req: RecommendationRequest
    profile: ProfileRead
    history: list[tuple[int, float, bool, bool]]
    future: asyncio.Future[Decision] | None = None  # None: scored directly (benchmark)


class Recommender:
    """Everything an answer needs, loaded once (see the module docstring)."""

    def __init__(self, settings: Settings, decision_log: DecisionLog, metrics: Metrics) -> None:
        self.settings = settings
        self.log = decision_log
        self.metrics = metrics
        self.model: LoadedModel | None = None
        self.model_error: str | None = None
        self.challenger: LoadedModel | None = None
        """@challenger, loaded only with challenger traffic (``NBA_CHALLENGER_SHARE``)."""
        self.reader: BatchedReader | None = None
        self.store_error: str | None = None
        self._store_ok = True  # the last online read succeeded
        self._budget = settings.feature_budget_ms / 1000.0
        self.exploration = Exploration(
            settings.exploration,
            epsilon=settings.epsilon,
            thompson_strength=settings.thompson_strength,
            control_share=settings.control_share,
            challenger_share=settings.challenger_share,
        )
        # Without a challenger loaded, its share of customers is served by the champion
        # and logged as such (the control group stays the same customers).
        self._champion_only = replace(self.exploration, challenger_share=0.0)
        # Exploring or a control group needs every candidate, not just the shown ones.
        self._all_candidates = settings.exploration != "off" or settings.control_share > 0
        self._rng = np.random.default_rng(settings.exploration_seed)
        self._pending: list[Pending] = []
        self._flush_scheduled = False

    # --- set-up ---------------------------------------------------------------------------

    def open_feature_store(self) -> None:
        """Resolve the feature service once; on failure, answers are degraded (not refused)."""
        from nba.feature_store import open_store

        registry = self.settings.feast_dir / "registry.db"
        try:
            if not Path(registry).is_file():
                raise FileNotFoundError(
                    f"no Feast registry at {registry}: run `nba features build --data DIR`"
                )
            self.reader = BatchedReader(OnlineProfiles(open_store(self.settings)))
        except Exception as exc:
            self.reader = None
            if self.store_error != str(exc):  # once per cause, not at every retry
                log.warning("feature store unavailable", extra={"error": str(exc)})
            self.store_error = str(exc)
            return
        if self.store_error is not None:
            log.info("feature store opened")
        self.store_error = None
        self._store_ok = True

    def load_model(self) -> bool:
        """Load @champion if its version differs from the one served; True if it changed.
        The old model keeps answering until the new one is fully loaded (no failed request).
        """
        try:
            ref = resolve(CHAMPION, self.settings)  # NBAError naming the fix if none
            if self.model is not None and self.model.version == ref.version:
                return False
            loaded = self._load(ref)
        except Exception as exc:
            self.model_error = str(exc)
            log.warning("no model loaded", extra={"error": str(exc)})
            return False
        self.model, self.model_error = loaded, None
        self.metrics.model_version.set(float(loaded.version) if loaded.version.isdigit() else 0)
        log.info("model loaded", extra={"model_version": loaded.version})
        self.load_challenger()
        return True

    def _load(self, ref: ModelRef) -> LoadedModel:
        """In this process at start; in a helper process once a version answers requests,
        so that they are not kept waiting (see :mod:`serving.models`)."""
        if self.model is None:
            return load_champion(self.settings, ref)
        return load_apart(self.settings, ref)

    def load_challenger(self) -> bool:
        """With challenger traffic on, load @challenger if it is another version than the
        champion and not the one loaded; True if it changed. Without one (or if it cannot
        be loaded), the champion serves the challenger's share too."""
        if self.settings.challenger_share <= 0 or self.model is None:
            return False
        try:
            ref = resolve(CHALLENGER, self.settings)
        except Exception:
            ref = None
        if ref is None or ref.version == self.model.version:
            changed, self.challenger = self.challenger is not None, None
            return changed
        if self.challenger is not None and self.challenger.version == ref.version:
            return False
        try:
            self.challenger = self._load(ref)
        except Exception as exc:
            self.challenger = None
            log.warning("challenger not loaded", extra={"error": str(exc)})
            return False
        log.info("challenger loaded", extra={"model_version": ref.version})
        return True

    @property
    def store_status(self) -> Literal["ok", "degraded", "unavailable"]:
        if self.reader is None:
            return "unavailable"
        return "ok" if self._store_ok else "degraded"

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()

    # --- answering ------------------------------------------------------------------------

    async def read_profile(self, customer_id: str, default: np.ndarray) -> ProfileRead:
        reader = self.reader

        def degraded(cause: str, detail: str | None) -> ProfileRead:
            return ProfileRead(default, "", None, True, cause, detail)

        if reader is None:
            return degraded("store_unavailable", DEGRADED_CAUSES["store_unavailable"])
        started = time.perf_counter()
        try:
            found = await asyncio.wait_for(reader.submit(customer_id), self._budget)
        except TimeoutError:
            self._store_ok = False
            budget = self.settings.feature_budget_ms
            return degraded("store_timeout", DEGRADED_CAUSES["store_timeout"].format(budget))
        except Exception as exc:
            if self._store_ok:
                log.warning("online store read failed", extra={"error": type(exc).__name__})
            self._store_ok = False
            return degraded("store_error", DEGRADED_CAUSES["store_error"])
        self._store_ok = True
        self.metrics.feature_read.observe(time.perf_counter() - started)
        return profile_read(found)

    async def history(
        self, model: LoadedModel, customer_id: str, now: datetime
    ) -> list[tuple[int, float, bool, bool]]:
        """The customer's reported outcomes: (catalog index, age in days, declined,
        accepted)."""
        return history_of(model, await self.log.history_async(customer_id, now))

    def decide_batch(self, model: LoadedModel, batch: Sequence[Pending]) -> list[Decision]:
        """One policy call for several answers (rows are independent: batching changes
        nothing in any answer, only the per-call overhead)."""
        history = History.from_rows(
            [(i, *past) for i, p in enumerate(batch) for past in p.history]
        )
        contacts = Contacts(
            contact_id=[p.req.customer_id for p in batch],
            customer_id=[p.req.customer_id for p in batch],
            channel=[p.req.channel for p in batch],
            reason=[p.req.reason for p in batch],
            profile_x=np.vstack([p.profile.x for p in batch]),
            active_products=[p.profile.active_products for p in batch],
            history=history,
            cold=np.array([not p.profile.known for p in batch]),
        )
        limit = None if self._all_candidates else max(p.req.limit for p in batch)
        decisions: list[Decision] = model.policy.decide(contacts, limit)
        return decisions

    def serving_model(self, customer_id: str) -> tuple[LoadedModel | None, Exploration]:
        """The model that answers this customer (the challenger for its share of customers
        while one is loaded) and the exploration settings its answer is drawn with."""
        challenger = self.challenger
        if challenger is not None and assign_arm(customer_id, self.exploration) == "challenger":
            return challenger, self.exploration
        return self.model, self._champion_only if challenger is None else self.exploration

    def shown_first(
        self,
        req: RecommendationRequest,
        decision: Decision,
        exploration: Exploration | None = None,
    ) -> tuple[Choice, list[int]]:
        """Draw the action shown at the top (exploration, control group); the others keep
        their rank. Returns the choice and the shown candidates' positions in the ranking,
        cut to the request's limit."""
        recs = decision.recommendations
        choice = choose(
            req.customer_id,
            np.array([r.propensity for r in recs]),
            np.array([r.value for r in recs]),
            exploration or self._champion_only,
            self._rng,
        )
        return choice, shown_order(len(recs), choice.index)[: req.limit]

    def _decide_soon(self, pending: Pending) -> asyncio.Future[Decision]:
        """Queue an answer for the next policy batch. Answers whose profiles arrived while
        the loop was busy are scored together; at low load a batch is one answer, with no
        wait. (Scoring in a thread beside the loop was measured slower: GIL hand-offs cost
        more than LightGBM's GIL-free C code gains.)"""
        assert pending.future is not None
        self._pending.append(pending)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return pending.future

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        by_model: dict[int, list[Pending]] = {}
        for p in batch:
            by_model.setdefault(id(p.model), []).append(p)
        for group in by_model.values():
            try:
                decisions = self.decide_batch(group[0].model, group)
            except Exception as exc:
                for p in group:
                    if p.future is not None and not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, d in zip(group, decisions, strict=True):
                if p.future is not None and not p.future.done():  # client may be gone
                    p.future.set_result(d)

    async def recommend(self, req: RecommendationRequest) -> RecommendationResponse:
        model, exploration = self.serving_model(req.customer_id)
        if model is None:
            raise unavailable("model_not_ready", NO_MODEL_TEXT)
        now = now_utc()
        profile = await self.read_profile(req.customer_id, model.default_profile)
        history = await self.history(model, req.customer_id, now)
        loop = asyncio.get_running_loop()
        decision = await self._decide_soon(
            Pending(model, req, profile, history, loop.create_future())
        )
        degraded = profile.degraded_cause is not None
        choice, order = self.shown_first(req, decision, exploration)
        shown = [decision.recommendations[j] for j in order]
        recs = [
            RecommendationOut(
                action_id=r.action_id,
                family=r.family,
                name=r.name,
                script=r.script,
                propensity=r.propensity,
                value=r.value,
                priority=r.priority,
                reasons=[DEGRADED_REASON_TEXT] if degraded else list(r.reasons),
                long_term_value=r.long_term_value,
            )
            for r in shown
        ]
        response = RecommendationResponse(
            decision_id=uuid.uuid4().hex,
            model_version=model.version,
            degraded=degraded,
            degraded_reason=profile.degraded_detail,
            known_customer=profile.known,
            features_timestamp=profile.timestamp,
            recommendations=recs,
            nothing_reason=None if recs else NOTHING_REASON,
            currency=self.settings.currency,
            suppressed=[
                SuppressedOut(
                    action_id=s.action_id, name=model.action_names[s.action_id], rule=s.rule
                )
                for s in decision.suppressed
            ],
        )
        record = ServedRecord(
            decision_id=response.decision_id,
            customer_id=req.customer_id,
            timestamp=now,
            channel=req.channel,
            reason=req.reason,
            agent_id=req.agent_id,
            model_version=model.version,
            features_timestamp=profile.timestamp,
            known_customer=profile.known,
            degraded=degraded,
            degraded_reason=profile.degraded_detail,
            ranking=ranking_entries(decision.recommendations, order, choice.probability),
            arm=choice.arm,
        )
        await self.log.committed(record)  # 503 if it cannot be logged in time
        self.metrics.decisions.labels(recs[0].action_id if recs else "none").inc()
        if degraded:
            self.metrics.degraded.labels(profile.degraded_cause).inc()
        if not profile.known:
            self.metrics.unknown_customers.inc()
        return response
