"""LightGBM trees evaluated by a compiled loop: the same raw scores, without the
per-call cost of ``Booster.predict``.

Why: an API answer scores about a dozen rows in four or five boosters (the response
models of the families shown, the uplift model). LightGBM's Python predict costs ~100 us
per call whatever the rows, most of it in setting up the call; that is a fifth of the
in-process answer. Here every tree is flattened once per model (nodes in arrays, children
by index, categorical bitsets) and a ``numba`` loop walks the rows through them, adding
the leaf values tree after tree from 0.0, in LightGBM's order, so the sums are the same
to the last bit. The split decisions are those of :mod:`nba.policy.treeshap` (missing
values, zero threshold, categories), checked against ``pred_leaf`` there;
``tests/model/test_forest.py`` checks the scores against ``Booster.predict`` to 1e-9.

Rows of one contact (one per candidate action, or per branch of the uplift model) differ
only in a few columns: the action's. Given those columns (``vary``), consecutive rows
equal in every other column the trees read form a group, and each tree is walked once per
group down to its first split on a varying column; only from there on per row. Trees that
never split on the action (about half of them) cost one walk per contact, not one per
candidate; the sums are the same, added in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numba
import numpy as np

from nba.policy.treeshap import MISSING_CODE, goes_left

PARALLEL_ROWS = 1024
"""Rows from which the walk runs on every core (an API answer's dozen rows do not)."""


@dataclass(frozen=True)
class Forest:
    """The trees of one booster, flattened. A child index ``>= 0`` is a node, ``~i`` is
    leaf ``i``; a tree's root is a node index, or a leaf for a single-leaf tree."""

    root: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    categorical: np.ndarray
    missing: np.ndarray
    default_left: np.ndarray
    cat_start: np.ndarray
    cat_words: np.ndarray
    cat_bits: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray
    _plans: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def raw(
        self, x: np.ndarray, parallel: bool | None = None, vary: tuple[int, ...] | None = None
    ) -> np.ndarray:
        """Raw scores (LightGBM's ``raw_score=True``; the prediction of a regression),
        shape ``(n,)``; on every core for a batch (``parallel`` ``None``: from
        :data:`PARALLEL_ROWS` rows).

        ``vary``: the columns in which rows of one contact differ (the module's docstring);
        any rows give the same scores, and rows of one contact next to each other give
        them sooner."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        n = x.shape[0]
        out = np.empty(n)
        if not n:
            return out
        if parallel is None:
            parallel = n >= PARALLEL_ROWS
        if vary is None:  # every row its own group
            per_row = np.zeros(self.feature.size, dtype=np.bool_)
            ends = np.arange(1, n + 1, dtype=np.int64)
        else:
            per_row, shared_columns = self._plan(vary)
            starts = np.empty(n, dtype=np.bool_)
            (_new_group_parallel if parallel else _new_group)(x, shared_columns, starts)
            ends = np.append(np.flatnonzero(starts[1:]) + 1, n)
        kernel = _grouped_parallel if parallel else _grouped
        kernel(x, ends, per_row, *(getattr(self, f) for f in _FIELDS), out)
        return out

    def _plan(self, vary: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Which nodes split on a varying column, and which columns a group shares."""
        if vary not in self._plans:
            varying = np.isin(self.feature, np.asarray(vary, dtype=np.int64))
            shared = np.unique(self.feature[~varying]).astype(np.int64)
            self._plans[vary] = (varying, shared)
        return self._plans[vary]


_FIELDS = (
    "root",
    "feature",
    "threshold",
    "categorical",
    "missing",
    "default_left",
    "cat_start",
    "cat_words",
    "cat_bits",
    "left",
    "right",
    "leaf_value",
)


def compile_forest(booster: lgb.Booster, num_iteration: int | None = None) -> Forest:
    """The trees of ``booster``'s first ``num_iteration`` rounds (all if ``None``)."""
    nodes: dict[str, list[Any]] = {f: [] for f in _FIELDS if f not in ("root", "cat_bits")}
    leaf_value: list[float] = []
    bits: list[int] = []
    roots: list[int] = []

    def add(node: dict[str, Any]) -> int:
        if "split_index" not in node:
            leaf_value.append(float(node["leaf_value"]))
            return ~(len(leaf_value) - 1)
        i = len(nodes["feature"])
        nodes["feature"].append(int(node["split_feature"]))
        nodes["missing"].append(MISSING_CODE[node["missing_type"]])
        nodes["default_left"].append(bool(node["default_left"]))
        if node["decision_type"] == "==":
            cats = [int(c) for c in str(node["threshold"]).split("||")]
            mask = [0] * (max(cats) // 32 + 1)
            for c in cats:
                mask[c // 32] |= 1 << (c % 32)
            nodes["categorical"].append(True)
            nodes["threshold"].append(0.0)
            nodes["cat_start"].append(len(bits))
            nodes["cat_words"].append(len(mask))
            bits.extend(mask)
        else:
            nodes["categorical"].append(False)
            nodes["threshold"].append(float(node["threshold"]))
            nodes["cat_start"].append(0)
            nodes["cat_words"].append(0)
        nodes["left"].append(0)
        nodes["right"].append(0)
        nodes["left"][i] = add(node["left_child"])
        nodes["right"][i] = add(node["right_child"])
        return i

    for info in booster.dump_model(num_iteration=num_iteration)["tree_info"]:
        roots.append(add(info["tree_structure"]))
    return Forest(
        root=np.array(roots, dtype=np.int64),
        feature=np.array(nodes["feature"], dtype=np.int64),
        threshold=np.array(nodes["threshold"], dtype=np.float64),
        categorical=np.array(nodes["categorical"], dtype=np.bool_),
        missing=np.array(nodes["missing"], dtype=np.int64),
        default_left=np.array(nodes["default_left"], dtype=np.bool_),
        cat_start=np.array(nodes["cat_start"], dtype=np.int64),
        cat_words=np.array(nodes["cat_words"], dtype=np.int64),
        cat_bits=np.array(bits, dtype=np.uint32),
        left=np.array(nodes["left"], dtype=np.int64),
        right=np.array(nodes["right"], dtype=np.int64),
        leaf_value=np.array(leaf_value, dtype=np.float64),
    )


@numba.njit(cache=True, nogil=True)
def _differs(
    x: np.ndarray, r: int, columns: np.ndarray
) -> bool:  # pragma: no cover - compiled; tested through Forest.raw
    """Whether row ``r`` differs from row ``r - 1`` in ``columns`` (NaN equals NaN; equal
    values take the same branch at every split)."""
    for c in columns:
        a, b = x[r, c], x[r - 1, c]
        if a != b and not (np.isnan(a) and np.isnan(b)):
            return True
    return False


@numba.njit(cache=True, nogil=True)
def _new_group(
    x: np.ndarray, columns: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled; tested through Forest.raw
    """``out[r]``: row ``r`` starts a run of rows equal in ``columns``."""
    out[0] = True
    for r in range(1, x.shape[0]):
        out[r] = _differs(x, r, columns)


@numba.njit(cache=True, nogil=True, parallel=True)
def _new_group_parallel(
    x: np.ndarray, columns: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled; tested through Forest.raw
    out[0] = True
    for r in numba.prange(1, x.shape[0]):
        out[r] = _differs(x, r, columns)


@numba.njit(cache=True, nogil=True)
def _group(
    x: np.ndarray,
    lo: int,
    hi: int,
    per_row: np.ndarray,
    root: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    categorical: np.ndarray,
    missing: np.ndarray,
    default_left: np.ndarray,
    cat_start: np.ndarray,
    cat_words: np.ndarray,
    cat_bits: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    leaf_value: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled; tested through Forest.raw
    """Rows ``lo:hi`` (equal outside the varying columns): each tree walked with row
    ``lo``; from its first split on a varying column (the fork) the other rows walk on
    their own, and if it has none, they end in its leaf."""
    for r in range(lo, hi):
        out[r] = 0.0
    for t in range(root.shape[0]):
        fork = -1
        for r in range(lo, hi):
            node = root[t] if r == lo else fork
            while node >= 0:
                if fork < 0 and per_row[node]:
                    fork = node
                if goes_left(
                    x[r, feature[node]],
                    categorical[node],
                    missing[node],
                    default_left[node],
                    threshold[node],
                    cat_start[node],
                    cat_words[node],
                    cat_bits,
                ):
                    node = left[node]
                else:
                    node = right[node]
            out[r] += leaf_value[~node]
            if fork < 0:  # no varying split on the path: every row ends in this leaf
                for q in range(lo + 1, hi):
                    out[q] += leaf_value[~node]
                break


# Two functions, not one jitted twice: numba's on-disk cache keys a function by its name
# and line (see nba.policy.treeshap).
@numba.njit(cache=True, nogil=True)
def _grouped(
    x: np.ndarray, ends: np.ndarray, per_row: np.ndarray, *args: np.ndarray
) -> None:  # pragma: no cover - compiled
    for g in range(ends.shape[0]):
        _group(x, 0 if g == 0 else ends[g - 1], ends[g], per_row, *args)


@numba.njit(cache=True, nogil=True, parallel=True)
def _grouped_parallel(
    x: np.ndarray, ends: np.ndarray, per_row: np.ndarray, *args: np.ndarray
) -> None:  # pragma: no cover - compiled
    for g in numba.prange(ends.shape[0]):
        _group(x, 0 if g == 0 else ends[g - 1], ends[g], per_row, *args)
