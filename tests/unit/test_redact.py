"""Secrets in decision-log URLs are masked in every form a URL can carry them."""

from __future__ import annotations

import pytest

from nba.decision_log import redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://nba:pw@db:5432/nba", "postgresql://nba:***@db:5432/nba"),
        ("postgresql://db/nba?user=nba&password=pw", "postgresql://db/nba?user=nba&password=***"),
        ("postgresql://db/nba?PASSWORD=pw&sslmode=require", "postgresql://db/nba?PASSWORD=***&sslmode=require"),
        ("postgresql://nba:pw@db/nba?sslpassword=x", "postgresql://nba:***@db/nba?sslpassword=***"),
        ("postgresql://nba@db/nba", "postgresql://nba@db/nba"),
        ("sqlite:////var/nba/log.db", "sqlite:////var/nba/log.db"),
    ],
)  # fmt: skip
def test_every_password_is_masked(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "pw" not in redact(url).replace("password", "")
