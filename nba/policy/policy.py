"""The policy: catalog + response model + arbitration + explanations, for a batch of contacts.

Used as is in process (training evaluation, tests) and wrapped by the MLflow pyfunc model in
``models/nba_policy.py`` for serving and batch scoring, so both rank identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nba.catalog import Catalog
from nba.policy.arbitration import (
    OK,
    RULE_NOT_WORTH_IT,
    RULE_VALUE_UNKNOWN,
    History,
    feature_arrays,
    net_values,
    rule_text,
    screen,
)
from nba.policy.design import candidate_rows, channel_codes, reason_codes
from nba.policy.explain import top_reasons
from nba.policy.response import ResponseModel

PRIOR_REASON = "little evidence for this action yet: using its family's average rate"
COLD_REASON = "new to us: no profile yet, so this uses the average acceptance rate"


@dataclass
class Contacts:
    """A batch of contacts with their profiles.

    ``profile_x`` has shape ``(n, n_numeric_features)`` (``design.profile_matrix``);
    ``active_products`` is the profile's text feature; ``history`` the past decisions.
    ``cold`` marks contacts without a profile (unknown customers): their propensities are
    the actions' prior rates, not the model's.
    """

    contact_id: list[str]
    customer_id: list[str]
    channel: list[str]
    reason: list[str | None]
    profile_x: np.ndarray
    active_products: list[str]
    history: History = field(default_factory=History)
    cold: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.contact_id)


@dataclass(frozen=True)
class Recommendation:
    action_id: str
    family: str
    name: str
    script: str | None
    propensity: float
    value: float
    priority: float
    reasons: list[str]


@dataclass(frozen=True)
class Suppressed:
    action_id: str
    rule: str


@dataclass
class Decision:
    contact_id: str
    customer_id: str
    recommendations: list[Recommendation]
    suppressed: list[Suppressed]


@dataclass
class Scores:
    """Everything arbitration computed, shapes ``(n_contacts, n_actions)``."""

    propensity: np.ndarray
    net_value: np.ndarray
    priority: np.ndarray
    status: np.ndarray
    count: np.ndarray


class Policy:
    """Ranks the catalog's actions for contacts."""

    def __init__(self, catalog: Catalog, model: ResponseModel, version: str = "dev") -> None:
        self.catalog = catalog
        self.model = model
        self.version = version

    def score(self, contacts: Contacts) -> tuple[Scores, np.ndarray]:
        """Propensity, value and rules for every contact x action (one ``predict``).

        Returns the scores and the design matrix (rows contact-major).
        """
        n, k = len(contacts), len(self.catalog.actions)
        feats = feature_arrays(contacts.profile_x)
        sc = screen(
            self.catalog, feats, contacts.active_products, contacts.channel, contacts.history
        )
        x = candidate_rows(
            contacts.profile_x,
            channel_codes(contacts.channel),
            reason_codes(contacts.reason),
            self.catalog,
        )
        p = self.model.predict_proba(x).reshape(n, k) if n else np.empty((0, k))
        if contacts.cold is not None and contacts.cold.any():
            p[contacts.cold] = self.model.prior_rates()
        net = net_values(self.catalog, feats, n)
        priority = p * net
        status = sc.status.copy()
        ok = status == OK
        status[ok & np.isnan(net)] = RULE_VALUE_UNKNOWN
        status[(status == OK) & ~(priority > 0)] = RULE_NOT_WORTH_IT
        return Scores(p, net, priority, status, sc.count), x

    def decide(self, contacts: Contacts, limit: int | None = None) -> list[Decision]:
        """Ranked recommendations (best first, at most ``limit``) and suppressed actions."""
        scores, x = self.score(contacts)
        k = len(self.catalog.actions)
        ranked_per_contact = []
        for i in range(len(contacts)):
            ok = np.flatnonzero(scores.status[i] == OK)
            # Highest priority first; catalog order breaks ties (stable sort).
            ranked = ok[np.argsort(-scores.priority[i, ok], kind="stable")]
            ranked_per_contact.append(ranked if limit is None else ranked[:limit])
        # One contributions call for every recommended row of the batch (they are per row).
        row_index = np.concatenate(
            [i * k + r for i, r in enumerate(ranked_per_contact)] or [np.empty(0, dtype=int)]
        ).astype(int)
        rows = x[row_index]
        contrib = self.model.contributions(rows) if row_index.size else np.empty((0, 0))
        decisions = []
        offset = 0
        for i, ranked in enumerate(ranked_per_contact):
            recs = []
            for j in ranked:
                a = self.catalog.actions[j]
                if contacts.cold is not None and contacts.cold[i]:
                    reasons = [COLD_REASON]
                elif self.model.uses_prior(int(j)):
                    reasons = [PRIOR_REASON]
                else:
                    reasons = top_reasons(
                        contrib[offset, :-1].tolist(), rows[offset].tolist(), contacts.reason[i]
                    )
                offset += 1
                recs.append(
                    Recommendation(
                        a.id,
                        a.family,
                        a.name,
                        a.script,
                        float(scores.propensity[i, j]),
                        float(scores.net_value[i, j]),
                        float(scores.priority[i, j]),
                        reasons,
                    )
                )
            suppressed = [
                Suppressed(
                    self.catalog.actions[j].id,
                    rule_text(
                        self.catalog,
                        j,
                        int(scores.status[i, j]),
                        int(scores.count[i, j]),
                        contacts.channel[i],
                    ),
                )
                for j in range(k)
                if scores.status[i, j] != OK
            ]
            decisions.append(
                Decision(contacts.contact_id[i], contacts.customer_id[i], recs, suppressed)
            )
        return decisions
