"""Request and response bodies of the API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nba.vocabulary import ID_PATTERN

Channel = Literal["phone", "chat", "email", "app", "web", "branch", "letter", "other"]
Reason = Literal[
    "inquiry",
    "complaint",
    "cancellation_request",
    "billing_question",
    "payment",
    "missed_payment",
    "login",
    "purchase",
    "contract_change",
    "other",
]
Outcome = Literal["accepted", "declined", "no_response"]

# The data contract's id rule (nba.vocabulary.ID_PATTERN): any id the contract accepts can
# be served.
IDENTIFIER_PATTERN = ID_PATTERN
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)
]


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C0000042",
                    "channel": "phone",
                    "reason": "billing_question",
                    "agent_id": "agent-7",
                    "limit": 3,
                }
            ]
        },
    )

    customer_id: Identifier = Field(description="The customer on the line.")
    channel: Channel = Field(description="Channel of the contact.")
    reason: Reason | None = Field(
        default=None, description="Why the customer got in touch, if known."
    )
    agent_id: Identifier | None = Field(default=None, description="The agent asking.")
    limit: int = Field(default=3, ge=1, le=20, description="Most recommendations to return.")


class RecommendationOut(BaseModel):
    action_id: str
    family: str
    name: str
    script: str | None = Field(description="Talk track for the agent.")
    propensity: float = Field(description="Calibrated probability the customer accepts.")
    value: float = Field(description="Net value if accepted: (value - cost) x lever.")
    priority: float = Field(
        description="The ranking score: propensity x value, plus long_term_value when the "
        "model ranks by what actions change."
    )
    reasons: list[str] = Field(description="Why, in plain words.")
    long_term_value: float | None = Field(
        default=None,
        description="What presenting the action changes in the customer's revenue over the "
        "catalog's horizon, against presenting nothing (learned); null when the model ranks "
        "by acceptance.",
    )


class SuppressedOut(BaseModel):
    action_id: str
    name: str
    rule: str = Field(description="The rule that removed the action, in plain words.")


class RecommendationResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision_id": "3f1c2a9e8b7d4c6a9e0f1b2c3d4e5f60",
                    "model_version": "1",
                    "degraded": False,
                    "degraded_reason": None,
                    "known_customer": True,
                    "features_timestamp": "2025-12-30T23:59:47Z",
                    "recommendations": [
                        {
                            "action_id": "installment_plan_3m",
                            "family": "installment_offer",
                            "name": "Spread the open amount over 3 months",
                            "script": "I can split what is open into three payments.",
                            "propensity": 0.41,
                            "value": 38.0,
                            "priority": 15.6,
                            "reasons": ["missed 2 payments in the last 3 months"],
                        }
                    ],
                    "suppressed": [
                        {
                            "action_id": "offer_broadband",
                            "name": "Broadband offer",
                            "rule": "customer already has broadband",
                        }
                    ],
                }
            ]
        }
    )

    decision_id: str = Field(description="Quote it when reporting the outcome.")
    model_version: str
    degraded: bool = Field(description="True when ranked without the live profile.")
    degraded_reason: str | None
    known_customer: bool = Field(description="False: no profile yet, a cold-start answer.")
    features_timestamp: datetime | None = Field(description="When the profile was computed.")
    recommendations: list[RecommendationOut]
    nothing_reason: str | None = Field(
        default=None,
        description="When no action is recommended: why, in plain words (nothing is a "
        "real answer: help with the request, offer nothing).",
    )
    suppressed: list[SuppressedOut]
    currency: str = Field(
        default="EUR", description="ISO 4217 code of value, cost and priority (a setting)."
    )


class OutcomeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decision_id": "3f1c2a9e8b7d4c6a9e0f1b2c3d4e5f60",
                    "action_id": "installment_plan_3m",
                    "outcome": "declined",
                    "agent_id": "agent-7",
                }
            ]
        },
    )

    decision_id: Identifier = Field(description="From the recommendation answer.")
    action_id: Identifier = Field(description="The action presented.")
    outcome: Outcome
    agent_id: Identifier | None = Field(default=None)


class OutcomeResponse(BaseModel):
    decision_id: str
    action_id: str
    outcome: Outcome
    status: Literal["recorded", "duplicate"] = Field(
        description="'duplicate': this outcome was already recorded; nothing changed."
    )


class CustomerSummary(BaseModel):
    """The customer at a glance, in plain words (for the agent desk)."""

    customer_id: str
    known: bool = Field(description="False: no profile yet (a new or unknown customer).")
    profile_as_of: datetime | None = None
    profile_age_days: float | None = Field(
        default=None, description="How old the profile is now, in days."
    )
    profile_stale: bool = Field(
        default=False,
        description="True when the profile is older than NBA_STALE_PROFILE_DAYS: recent "
        "contacts may be missing from it.",
    )
    profile_updated: str | None = Field(
        default=None, description="How fresh the profile is, in words."
    )
    today: list[str] = Field(
        default_factory=list,
        description="Interactions pushed in the last 24 hours, oldest first, in words "
        '("called at 09:14 about a missed payment").',
    )
    tenure: str | None = None
    products: list[str] = Field(default_factory=list, description="Active products.")
    recent_contacts: list[str] = Field(
        default_factory=list, description="Contacts in the last 30 days, by kind."
    )
    last_contact: str | None = None
    complaints: str | None = None
    payment_status: str | None = None
    mood: str | None = None
    email: str | None = None
    attention: list[str] = Field(
        default_factory=list, description="What the agent should keep in mind."
    )


class CustomerExample(BaseModel):
    customer_id: str
    why: str = Field(description="The situation the customer is in.")


class Problem(BaseModel):
    """Every error answer: a stable code to branch on and what is wrong, in one sentence."""

    code: str = Field(
        description="Stable: unauthorized, forbidden, not_found, conflict, invalid_request, "
        "unreadable_body, body_too_large, request_timeout, too_many_failed_keys, "
        "model_not_ready, decision_log_unavailable, online_store_unavailable, "
        "internal_error (see the README)."
    )
    detail: str


class ReloadResponse(BaseModel):
    model_version: str
    changed: bool


class Readiness(BaseModel):
    ready: bool = Field(description="A model is loaded and the decision log can commit.")
    model_version: str | None
    feature_store: str = Field(description="The online store's kind: sqlite or redis.")
    feature_store_status: Literal["ok", "degraded", "unavailable"] = Field(
        default="ok",
        description="degraded: its last read failed (answers are ranked without the live "
        "profile); unavailable: not opened.",
    )
    decision_log: str = Field(description="The decision log's kind: sqlite or postgresql.")
    decision_log_status: Literal["ok", "unavailable"] = "ok"
    objective: str | None = Field(
        default=None,
        description="What the loaded model ranks by: 'incremental' (what an action changes) "
        "or 'acceptance'.",
    )
    objective_note: str | None = Field(
        default=None, description="Why the model fell back to the acceptance ranking, if it did."
    )
    detail: str | None = None


class InteractionIn(BaseModel):
    """One interaction, in the data contract's ``interactions`` format, with the id the
    pushing system gives it (pushing it again is recognised, never counted twice)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "crm-7781-20261207-0914",
                    "customer_id": "C0000042",
                    "timestamp": "2026-12-07T09:14:00Z",
                    "channel": "phone",
                    "type": "missed_payment",
                    "amount": 39.9,
                    "sentiment": -0.4,
                }
            ]
        },
    )

    event_id: str = Field(max_length=128, description="Unique per event, chosen by the sender.")
    customer_id: str = Field(max_length=128)
    timestamp: datetime = Field(description="When it happened (UTC if no zone is given).")
    channel: str = Field(description="phone, chat, email, app, web, branch, letter or other.")
    type: str = Field(
        description="inquiry, complaint, cancellation_request, billing_question, payment, "
        "missed_payment, login, purchase, contract_change or other."
    )
    amount: float | None = Field(default=None, description="Money amount, where there is one.")
    sentiment: float | None = Field(default=None, description="-1 to 1, where known.")


class InteractionsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[InteractionIn] = Field(min_length=1, max_length=1000)


class InteractionsResponse(BaseModel):
    status: Literal["recorded"] = "recorded"
    recorded: int = Field(description="Events committed (all of the request's).")
    customers: list[str] = Field(description="Customers whose profile is being updated.")
