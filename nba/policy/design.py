"""The response model's input: one row per (contact, candidate action).

Columns are the numeric profile features, the contact's channel and reason, and the action
and its family as categorical codes. Scoring all candidates of a batch of contacts is one
``predict`` over ``n_contacts * n_actions`` rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nba.catalog import Catalog
from nba.profiles import NUMERIC_FEATURE_NAMES
from nba.vocabulary import CHANNELS, FAMILIES, INTERACTION_TYPES

CONTEXT_COLUMNS: tuple[str, ...] = ("ctx_channel", "ctx_reason", "ctx_action", "ctx_family")
"""Categorical columns after the profile features (integer codes)."""

NOT_POINT_IN_TIME: frozenset[str] = frozenset({"monthly_revenue"})
"""Profile features that are snapshots taken when the data was extracted, not as of the
decision: ``customers.monthly_revenue`` already includes products bought, and is 0 after
churn, *later* than a past decision, so it would leak outcomes into training. They remain
available to catalog expressions (values, eligibility)."""

MODEL_FEATURES: tuple[str, ...] = tuple(
    f for f in NUMERIC_FEATURE_NAMES if f not in NOT_POINT_IN_TIME
)
_MODEL_FEATURE_INDEX = np.array([NUMERIC_FEATURE_NAMES.index(f) for f in MODEL_FEATURES])

MONOTONE_FAMILY = "installment_offer"
MONOTONE_FEATURES: tuple[str, ...] = (
    "n_missed_payment_7d",
    "n_missed_payment_30d",
    "n_missed_payment_90d",
    "n_missed_payment_365d",
    "amount_missed_90d",
    "missed_payment_ratio_365d",
)
"""More payment trouble never lowers an installment offer's acceptance. For rows of that
family these inputs move to their own columns (suffix ``__installment``) under a +1
monotone constraint, and the shared columns are empty there; other families keep the
shared columns, unconstrained (payment trouble rightly lowers a product offer's chances)."""
MONOTONE_SUFFIX = "__installment"
_MONOTONE_INDEX = np.array([MODEL_FEATURES.index(f) for f in MONOTONE_FEATURES])

MODEL_COLUMNS: tuple[str, ...] = (
    *MODEL_FEATURES,
    *(f + MONOTONE_SUFFIX for f in MONOTONE_FEATURES),
    *CONTEXT_COLUMNS,
)
MONOTONE_CONSTRAINTS: tuple[int, ...] = tuple(
    1 if c.endswith(MONOTONE_SUFFIX) else 0 for c in MODEL_COLUMNS
)


def base_feature(column: str) -> str:
    """The profile feature behind a model column."""
    return column.removesuffix(MONOTONE_SUFFIX)


CATEGORICAL_COLUMNS: tuple[str, ...] = CONTEXT_COLUMNS
NO_REASON = len(INTERACTION_TYPES)  # code of an unknown / absent contact reason

_CHANNEL_CODE = {c: i for i, c in enumerate(CHANNELS)}
_REASON_CODE = {r: i for i, r in enumerate(INTERACTION_TYPES)}
_FAMILY_CODE = {f: i for i, f in enumerate(FAMILIES)}


def channel_codes(channels: Sequence[object]) -> np.ndarray:
    other = _CHANNEL_CODE["other"]
    return np.array([_CHANNEL_CODE.get(str(c), other) for c in channels], dtype=float)


def reason_codes(reasons: Sequence[object]) -> np.ndarray:
    other = _REASON_CODE["other"]
    return np.array(
        [NO_REASON if r is None or r != r else _REASON_CODE.get(str(r), other) for r in reasons],
        dtype=float,
    )


def profile_matrix(profiles: Mapping[str, Sequence[object] | np.ndarray], n: int) -> np.ndarray:
    """Numeric profile features as a float matrix of shape ``(n, n_features)``; null = NaN."""
    out = np.empty((n, len(NUMERIC_FEATURE_NAMES)), dtype=float)
    for j, name in enumerate(NUMERIC_FEATURE_NAMES):
        col = profiles[name]
        if isinstance(col, np.ndarray) and col.dtype.kind in "fiub":
            out[:, j] = col
        else:
            out[:, j] = np.array([np.nan if v is None else v for v in col], dtype=float)
    return out


def profile_vector(row: Mapping[str, object]) -> np.ndarray:
    """One profile as a row of :func:`profile_matrix` (missing or null = NaN), without its
    per-column work: the API builds one on every request."""
    values = [row.get(n) for n in NUMERIC_FEATURE_NAMES]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def candidate_rows(
    profile_x: np.ndarray,
    channels: np.ndarray,
    reasons: np.ndarray,
    catalog: Catalog,
    action_index: np.ndarray | None = None,
    contact_index: np.ndarray | None = None,
) -> np.ndarray:
    """Design matrix for contacts x actions.

    Parameters
    ----------
    profile_x
        Shape ``(n_contacts, n_numeric_features)``, from :func:`profile_matrix`; only the
        ``MODEL_FEATURES`` columns enter the model.
    channels, reasons
        Codes, shape ``(n_contacts,)``.
    action_index
        If given, one row per entry: contact ``contact_index[r]`` (default: ``r``, one row
        per contact, as in training) with catalog action ``action_index[r]``. If ``None``,
        every action for every contact, contact-major: row ``i * n_actions + j`` is contact
        ``i`` with action ``j``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_rows, len(MODEL_COLUMNS))``, built in one allocation (batch scoring
        builds millions of rows).
    """
    n = profile_x.shape[0]
    if action_index is None:
        k = len(catalog.actions)
        contact_index = np.repeat(np.arange(n), k)
        action_index = np.tile(np.arange(k), n)
    elif contact_index is None:
        contact_index = np.arange(n)
    act = np.asarray(action_index).astype(int)
    who = np.asarray(contact_index).astype(int)
    fam = np.array([_FAMILY_CODE[a.family] for a in catalog.actions], dtype=float)
    family = fam[act]
    n_feat, n_own = len(MODEL_FEATURES), len(MONOTONE_FEATURES)
    out = np.empty((act.size, len(MODEL_COLUMNS)))
    out[:, :n_feat] = profile_x[:, _MODEL_FEATURE_INDEX][who]
    own = out[:, n_feat : n_feat + n_own]
    own[:] = np.nan
    gated = np.flatnonzero(family == _FAMILY_CODE[MONOTONE_FAMILY])
    if gated.size:
        # Rows sorted by family (as ranking builds them) make the gated rows one slice.
        rows = (
            slice(int(gated[0]), int(gated[-1]) + 1)
            if gated[-1] - gated[0] + 1 == gated.size
            else gated
        )
        for q, col in enumerate(_MONOTONE_INDEX.tolist()):
            own[rows, q] = out[rows, col]
            out[rows, col] = np.nan
    ctx = n_feat + n_own
    out[:, ctx] = channels[who]
    out[:, ctx + 1] = reasons[who]
    out[:, ctx + 2] = act
    out[:, ctx + 3] = family
    return out
