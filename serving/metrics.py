"""Prometheus metrics of the API (one registry per app, so tests never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "nba_request_seconds",
            "Time to answer a request, by route and status class.",
            ["route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "nba_decisions_total",
            "Recommendation answers by top action ('none' when nothing was worth offering).",
            ["action_id"],
            registry=self.registry,
        )
        self.degraded = Counter(
            "nba_degraded_total",
            "Answers ranked without the live profile, by cause.",
            ["cause"],
            registry=self.registry,
        )
        self.unknown_customers = Counter(
            "nba_unknown_customers_total",
            "Cold-start answers for customers without a profile.",
            registry=self.registry,
        )
        self.outcomes = Counter(
            "nba_outcomes_total",
            "Outcomes reported, by outcome and status (recorded / duplicate).",
            ["outcome", "status"],
            registry=self.registry,
        )
        self.events = Counter(
            "nba_events_total",
            "Interactions pushed and recorded (POST /v1/interactions).",
            registry=self.registry,
        )
        self.model_version = Gauge(
            "nba_model_version",
            "Registered version of nba-policy being served (0 = none).",
            registry=self.registry,
        )
        self.feature_read = Histogram(
            "nba_feature_read_seconds",
            "Online profile read time.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
