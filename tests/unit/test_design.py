"""The response model's input rows (nba.policy.design.candidate_rows): every column of
every row against a plain construction, in the serial and the parallel (many rows) path,
and into reused memory."""

from __future__ import annotations

import numpy as np
import pytest

from nba.catalog import Catalog, load_catalog
from nba.policy.design import (
    CONTEXT_COLUMNS,
    MODEL_COLUMNS,
    MODEL_FEATURES,
    MONOTONE_FAMILY,
    MONOTONE_FEATURES,
    MONOTONE_SUFFIX,
    Scratch,
    candidate_rows,
)
from nba.profiles import NUMERIC_FEATURE_NAMES
from nba.vocabulary import FAMILIES


def _inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    profile_x = rng.normal(size=(n, len(NUMERIC_FEATURE_NAMES)))
    profile_x[rng.random(profile_x.shape) < 0.1] = np.nan
    return profile_x, rng.integers(0, 4, n).astype(float), rng.integers(0, 9, n).astype(float)


def _expected_row(
    profile: np.ndarray, channel: float, reason: float, action: int, catalog: Catalog
) -> np.ndarray:
    """One row as the model's documentation describes it, column by column."""
    family = catalog.actions[action].family
    values: dict[str, float] = {
        f: float(profile[NUMERIC_FEATURE_NAMES.index(f)]) for f in MODEL_FEATURES
    }
    for f in MONOTONE_FEATURES:
        if family == MONOTONE_FAMILY:  # moved to the family's own monotone column
            values[f + MONOTONE_SUFFIX] = values[f]
            values[f] = np.nan
        else:
            values[f + MONOTONE_SUFFIX] = np.nan
    context = (channel, reason, float(action), float(FAMILIES.index(family)))
    values.update(zip(CONTEXT_COLUMNS, context, strict=True))
    return np.array([values[c] for c in MODEL_COLUMNS])


@pytest.mark.parametrize("n_contacts", [3, 4000])  # 4000 x 11 rows: the parallel path
def test_rows_equal_a_plain_construction(n_contacts: int) -> None:
    catalog = load_catalog()
    k = len(catalog.actions)
    assert any(a.family == MONOTONE_FAMILY for a in catalog.actions)
    profile_x, channels, reasons = _inputs(n_contacts, 1)
    full = candidate_rows(profile_x, channels, reasons, catalog)
    assert full.shape == (n_contacts * k, len(MODEL_COLUMNS))
    for r in range(0, full.shape[0], max(1, full.shape[0] // 300)):
        i, j = divmod(r, k)
        expected = _expected_row(profile_x[i], channels[i], reasons[i], j, catalog)
        np.testing.assert_array_equal(full[r], expected)
    # Chosen (contact, action) pairs, sorted by family as ranking builds them: the same rows.
    rng = np.random.default_rng(2)
    who = rng.integers(0, n_contacts, 3 * n_contacts)
    act = rng.integers(0, k, who.size)
    by_family = np.argsort([FAMILIES.index(catalog.actions[a].family) for a in act], kind="stable")
    who, act = who[by_family], act[by_family]
    chosen = candidate_rows(profile_x, channels, reasons, catalog, act, who)
    np.testing.assert_array_equal(chosen, full[who * k + act])


def test_scratch_memory_is_reused_and_grows() -> None:
    catalog = load_catalog()
    profile_x, channels, reasons = _inputs(50, 3)
    scratch = Scratch()
    fresh = candidate_rows(profile_x, channels, reasons, catalog)
    first = candidate_rows(profile_x, channels, reasons, catalog, scratch=scratch)
    np.testing.assert_array_equal(first, fresh)
    smaller = candidate_rows(profile_x[:20], channels, reasons, catalog, scratch=scratch)
    assert np.shares_memory(first, smaller)  # no new memory for a smaller batch
    np.testing.assert_array_equal(smaller, fresh[: 20 * len(catalog.actions)])
    larger, _, _ = _inputs(400, 4)
    grown = candidate_rows(larger, *(np.zeros(400),) * 2, catalog, scratch=scratch)
    assert grown.shape == (400 * len(catalog.actions), len(MODEL_COLUMNS))
    assert not np.shares_memory(first, grown)
