"""The response model's input: one row per (contact, candidate action).

Columns are the numeric profile features, the contact's channel and reason, and the action
and its family as categorical codes. Scoring all candidates of a batch of contacts is one
``predict`` over ``n_contacts * n_actions`` rows.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numba
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
_MODEL_FEATURE_INDEX = np.array(
    [NUMERIC_FEATURE_NAMES.index(f) for f in MODEL_FEATURES], dtype=np.int64
)

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
_MONOTONE_INDEX = np.array([MODEL_FEATURES.index(f) for f in MONOTONE_FEATURES], dtype=np.int64)


def base_feature(column: str) -> str:
    """The profile feature behind a model column."""
    return column.removesuffix(MONOTONE_SUFFIX)


MODEL_COLUMNS: tuple[str, ...] = (
    *MODEL_FEATURES,
    *(f + MONOTONE_SUFFIX for f in MONOTONE_FEATURES),
    *CONTEXT_COLUMNS,
)
MONOTONE_CONSTRAINTS: tuple[int, ...] = tuple(
    1 if c.endswith(MONOTONE_SUFFIX) else 0 for c in MODEL_COLUMNS
)
PER_ACTION_COLUMNS: tuple[int, ...] = tuple(
    j
    for j, c in enumerate(MODEL_COLUMNS)
    if c in ("ctx_action", "ctx_family") or base_feature(c) in MONOTONE_FEATURES
)
"""The columns in which one contact's rows differ (the action or branch, its family, the
payment trouble that moves to the installment family's columns): the compiled tree walk
shares the rest between them (:mod:`nba.policy.forest`)."""


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
    scratch: Scratch | None = None,
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

    scratch
        If given, the rows are written into its memory (overwritten by the next call with
        the same scratch) instead of a new array.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_rows, len(MODEL_COLUMNS))``, built in one allocation (batch scoring
        builds millions of rows).
    """
    family = np.array([_FAMILY_CODE[a.family] for a in catalog.actions], dtype=np.int64)
    return _rows(
        profile_x,
        channels,
        reasons,
        len(catalog.actions),
        family,
        _FAMILY_CODE[MONOTONE_FAMILY],
        action_index,
        contact_index,
        scratch,
    )


NOTHING_FAMILY = len(FAMILIES)
"""Family code of presenting nothing, in the uplift model's rows."""
ACCEPTED, NOT_ACCEPTED = 0, 1
N_BRANCHES = 2 * (len(FAMILIES) + 1)
"""What can follow a contact: each family's action accepted or not, and nothing."""


def branch_code(family_code: np.ndarray, accepted: np.ndarray) -> np.ndarray:
    """The branch of (family, accepted or not); family ``NOTHING_FAMILY`` is nothing."""
    out: np.ndarray = 2 * np.asarray(family_code, dtype=np.int64) + np.where(
        accepted, ACCEPTED, NOT_ACCEPTED
    )
    return out


NOTHING_BRANCH = 2 * NOTHING_FAMILY + NOT_ACCEPTED


def branch_rows(
    profile_x: np.ndarray,
    channels: np.ndarray,
    reasons: np.ndarray,
    branch: np.ndarray,
    contact_index: np.ndarray | None = None,
    scratch: Scratch | None = None,
) -> np.ndarray:
    """Rows of the uplift model (:mod:`nba.policy.uplift`): the columns of
    :func:`candidate_rows`, with the branch (:func:`branch_code`) in ``ctx_action`` and its
    family (or ``NOTHING_FAMILY``) in ``ctx_family``."""
    family = np.repeat(np.arange(len(FAMILIES) + 1, dtype=np.int64), 2)
    return _rows(
        profile_x,
        channels,
        reasons,
        N_BRANCHES,
        family,
        _FAMILY_CODE[MONOTONE_FAMILY],
        branch,
        contact_index,
        scratch,
    )


def _rows(
    profile_x: np.ndarray,
    channels: np.ndarray,
    reasons: np.ndarray,
    n_actions: int,
    family: np.ndarray,
    monotone_family: int,
    action_index: np.ndarray | None,
    contact_index: np.ndarray | None,
    scratch: Scratch | None,
) -> np.ndarray:
    n = profile_x.shape[0]
    if action_index is None:
        contact_index = np.repeat(np.arange(n), n_actions)
        action_index = np.tile(np.arange(n_actions), n)
    elif contact_index is None:
        contact_index = np.arange(n)
    act = np.asarray(action_index, dtype=np.int64)
    who = np.asarray(contact_index, dtype=np.int64)
    shape = (act.size, len(MODEL_COLUMNS))
    out = scratch.array(shape) if scratch is not None else np.empty(shape)
    # One pass per row (no intermediate gathers, no strided column writes): batch scoring
    # builds millions of rows, and two cores share them when there are many.
    fill = _fill_rows_parallel if act.size >= _PARALLEL_ROWS else _fill_rows
    inputs = (
        np.ascontiguousarray(profile_x, dtype=np.float64),
        np.ascontiguousarray(channels, dtype=np.float64),
        np.ascontiguousarray(reasons, dtype=np.float64),
        who,
        act,
        family,
        _MODEL_FEATURE_INDEX,
        _MONOTONE_INDEX,
        monotone_family,
    )
    fill(inputs, out)
    return out


_PARALLEL_ROWS = 20_000


class Scratch(threading.local):
    """Memory reused by one thread's calls (one per thread). Batch scoring builds a few
    hundred MB of candidate rows per chunk: new memory costs the kernel a page fault per
    page on first touch, seconds over a large base, and more when memory is fragmented."""

    def __init__(self) -> None:
        self._memory = np.empty(0)

    def array(self, shape: tuple[int, int]) -> np.ndarray:
        """A C-ordered float array of ``shape`` in this thread's memory (contents undefined)."""
        size = shape[0] * shape[1]
        if size > self._memory.size:
            self._memory = np.empty(size + size // 4)  # headroom: chunks vary in size
        return self._memory[:size].reshape(shape)


@numba.njit(cache=True)
def _fill_row(
    r: int,
    profile_x: np.ndarray,
    channels: np.ndarray,
    reasons: np.ndarray,
    who: np.ndarray,
    act: np.ndarray,
    family: np.ndarray,
    features: np.ndarray,
    monotone: np.ndarray,
    monotone_family: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through candidate_rows
    i, a = who[r], act[r]
    f = family[a]
    n_feat, n_own = features.size, monotone.size
    for j in range(n_feat):
        out[r, j] = profile_x[i, features[j]]
    for q in range(n_own):
        if f == monotone_family:
            # Payment trouble moves to the installment family's own (monotone) columns.
            out[r, n_feat + q] = out[r, monotone[q]]
            out[r, monotone[q]] = np.nan
        else:
            out[r, n_feat + q] = np.nan
    ctx = n_feat + n_own
    out[r, ctx] = channels[i]
    out[r, ctx + 1] = reasons[i]
    out[r, ctx + 2] = a
    out[r, ctx + 3] = f


# Two functions, not one jitted twice (see nba.policy.treeshap: numba's cache keys a
# function by name and line). ``inputs``: _fill_row's arguments between ``r`` and ``out``.
@numba.njit(cache=True)
def _fill_rows(
    inputs: tuple[np.ndarray | int, ...], out: np.ndarray
) -> None:  # pragma: no cover - compiled; tested through candidate_rows
    for r in range(out.shape[0]):
        _fill_row(r, *inputs, out)  # type: ignore[arg-type, call-arg]  # numba typing


@numba.njit(cache=True, parallel=True)
def _fill_rows_parallel(
    inputs: tuple[np.ndarray | int, ...], out: np.ndarray
) -> None:  # pragma: no cover - compiled; tested through candidate_rows
    for r in numba.prange(out.shape[0]):
        _fill_row(r, *inputs, out)  # type: ignore[arg-type, call-arg]  # numba typing
