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
"""

from __future__ import annotations

from dataclasses import dataclass
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

    def raw(self, x: np.ndarray, parallel: bool | None = None) -> np.ndarray:
        """Raw scores (LightGBM's ``raw_score=True``; the prediction of a regression),
        shape ``(n,)``; on every core for a batch (``parallel`` ``None``: from
        :data:`PARALLEL_ROWS` rows)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty(x.shape[0])
        if parallel is None:
            parallel = x.shape[0] >= PARALLEL_ROWS
        kernel = _raw_parallel if parallel else _raw
        kernel(x, *(getattr(self, f) for f in _FIELDS), out)
        return out


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
def _row(
    x: np.ndarray,
    r: int,
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
) -> float:  # pragma: no cover - compiled by numba; tested through Forest.raw
    """Row ``r``'s raw score: the leaf values of every tree, added in tree order."""
    total = 0.0
    for t in range(root.shape[0]):
        node = root[t]
        while node >= 0:
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
        total += leaf_value[~node]
    return total


# Two functions, not one jitted twice: numba's on-disk cache keys a function by its name
# and line (see nba.policy.treeshap).
@numba.njit(cache=True, nogil=True)
def _raw(x: np.ndarray, *args: np.ndarray) -> None:  # pragma: no cover - compiled
    out = args[-1]
    for r in range(x.shape[0]):
        out[r] = _row(x, r, *args[:-1])


@numba.njit(cache=True, nogil=True, parallel=True)
def _raw_parallel(x: np.ndarray, *args: np.ndarray) -> None:  # pragma: no cover - compiled
    out = args[-1]
    for r in numba.prange(x.shape[0]):
        out[r] = _row(x, r, *args[:-1])
