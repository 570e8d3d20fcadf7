"""The statements of the run summaries are computed from what was done, never assumed."""

from __future__ import annotations

import re

import pytest

from pipelines.review.training import Split, feature_words
from pipelines.review.words import few_cases, interval, money
from pipelines.train import split_points


@pytest.mark.parametrize("n", [600, 1_300, 9_000, 125_046])
@pytest.mark.parametrize("order", ["time", "shuffled"])
def test_the_split_is_told_as_it_was_cut(n: int, order: str) -> None:
    a, b, c = split_points(n)
    split = Split(n, a, b, c, order, ("2025-01-01 00:00", "2025-06-30 00:00"),
                  ("2025-06-12 00:00", "2025-06-30 00:00"))  # fmt: skip
    text = split.words()
    told = [int(x.replace(",", "")) for x in re.findall(r"([\d,]+) \(\d+%\)", text)]
    assert told == [a, b - a, c - b, n - c]
    assert sum(told) == n and text.startswith(f"{n:,} logged decisions")
    shares = [int(x) for x in re.findall(r"\((\d+)%\)", text)]
    assert shares == [round(100 * k / n) for k in told]
    if order == "time":
        assert "newest period (2025-06-12 to 2025-06-30)" in text and "random" not in text
    else:
        assert "newest period" not in text and "drawn at random from the whole period" in text


def test_money_and_intervals_carry_the_currency_and_sign() -> None:
    assert money(1234.5) == "€1,234.50"
    assert money(-3.1, "USD") == "-$3.10"
    assert money(1.4, "CHF", signed=True) == "+1.40 CHF"
    assert interval(-0.6, 3.4) == "[-€0.60, +€3.40]"
    assert interval(float("nan"), 1.0) == "[interval not known]"
    assert few_cases(4).startswith("only 4 contacts") and few_cases(5_000) == ""


def test_model_columns_are_told_in_words() -> None:
    assert feature_words("tenure_days") == "Days since the relationship started"
    assert feature_words("missed_payment_ratio_365d__installment").endswith("(installment offers)")
    assert feature_words("ctx_reason") == "Why the customer got in touch"
    assert "_" not in feature_words("n_complaint_90d")
