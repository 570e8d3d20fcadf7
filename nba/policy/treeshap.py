"""Exact TreeSHAP for small trees, about 30x faster than LightGBM's ``pred_contrib``.

Why: reasons come from per-row SHAP contributions of the recommended rows. LightGBM's
``pred_contrib`` costs ~29 us per row on the demo model (2 cores), so a base of 1M customers
x 3 recommendations would spend ~90 s there alone. The response model's trees are small
(``num_leaves=7``: at most 6 splits), and that makes an exact shortcut possible.

The path-dependent SHAP values of a tree (what ``pred_contrib`` computes) are the Shapley
values of the game ``v(S) = E[tree(x) | x_S]``, where the expectation follows the training
counts at splits on features outside ``S``. ``v(S)`` depends on ``x`` only through the
left/right decision at each split. A tree with ``m`` splits has at most ``2**m`` decision
patterns, so each tree gets a table ``pattern -> SHAP values of its features``, computed once
per model by brute force over feature subsets. Explaining a row is then: evaluate each
split, form the pattern, add one table row per tree (a compiled loop, ``numba``).

Trees with more than ``MAX_SPLITS`` splits make the table too large; such a model falls
back to ``pred_contrib`` (same numbers, slower). ``tests/model/test_treeshap.py`` checks
the values against ``pred_contrib`` to 1e-9 and the decision logic against ``pred_leaf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numba
import numpy as np

MAX_SPLITS = 10
"""Largest tree (in splits) given a table: 2**10 patterns x up to 10 features."""

_ZERO = 1.0000000180025095e-35  # LightGBM's kZeroThreshold (1e-35f as a double)
_NUMERIC, _CATEGORICAL = 0, 1
MISSING_CODE = {"None": 0, "Zero": 1, "NaN": 2}
"""LightGBM's missing-value types, as the compiled split decision reads them."""


@dataclass(frozen=True)
class TreeTables:
    """The flattened trees of one booster, ready for :func:`_explain_row`."""

    n_nodes: np.ndarray  # (T,) splits per tree
    node_feature: np.ndarray  # (T, MAX_SPLITS) column index, by LightGBM split_index
    node_threshold: np.ndarray  # (T, MAX_SPLITS)
    node_kind: np.ndarray  # numeric / categorical
    node_missing: np.ndarray  # 0 None, 1 Zero, 2 NaN
    node_default_left: np.ndarray
    node_cat_start: np.ndarray  # first word of the split's category bitset in cat_bits
    node_cat_words: np.ndarray
    cat_bits: np.ndarray  # uint32 bitsets of the categories that go left
    n_slots: np.ndarray  # (T,) distinct features per tree
    slot_feature: np.ndarray  # (T, MAX_SPLITS)
    table_offset: np.ndarray  # (T,) into table: offset + pattern * n_slots + slot
    table: np.ndarray
    bias: float  # expected value: the sum of v(empty set) over trees
    n_columns: int

    def contributions(
        self, x: np.ndarray, parallel: bool, out: np.ndarray | None = None
    ) -> np.ndarray:
        """SHAP values of the raw score, shape ``(n, n_columns + 1)``; the last column is
        the expected value, as in ``pred_contrib``. ``out``, if given, must be zeros."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if out is None:
            out = np.zeros((x.shape[0], self.n_columns + 1))
        kernel = _contrib_parallel if parallel else _contrib_serial
        kernel(x, tuple(getattr(self, name) for name in _NODE_ARGS), out)
        out[:, -1] = self.bias
        return out


def compile_booster(booster: lgb.Booster, num_iteration: int | None = None) -> TreeTables | None:
    """Tables for the trees of ``booster``'s first ``num_iteration`` rounds (all if
    ``None``); ``None`` if a tree has too many splits."""
    dump = booster.dump_model(num_iteration=num_iteration)
    trees = dump["tree_info"]
    t_count = len(trees)
    shape = (t_count, MAX_SPLITS)
    n_nodes = np.zeros(t_count, dtype=np.int64)
    feature = np.zeros(shape, dtype=np.int64)
    threshold = np.zeros(shape)
    kind = np.zeros(shape, dtype=np.int64)
    missing = np.zeros(shape, dtype=np.int64)
    default_left = np.zeros(shape, dtype=np.bool_)
    cat_start = np.zeros(shape, dtype=np.int64)
    cat_words = np.zeros(shape, dtype=np.int64)
    n_slots = np.zeros(t_count, dtype=np.int64)
    slot_feature = np.zeros(shape, dtype=np.int64)
    offsets = np.zeros(t_count, dtype=np.int64)
    bits: list[int] = []
    tables: list[np.ndarray] = []
    bias = 0.0
    size = 0
    for t, info in enumerate(trees):
        splits: list[dict[str, Any]] = []
        _collect_splits(info["tree_structure"], splits)
        if len(splits) > MAX_SPLITS:
            return None
        n_nodes[t] = len(splits)
        for node in splits:
            i = int(node["split_index"])
            feature[t, i] = int(node["split_feature"])
            missing[t, i] = MISSING_CODE[node["missing_type"]]
            default_left[t, i] = bool(node["default_left"])
            if node["decision_type"] == "==":
                kind[t, i] = _CATEGORICAL
                cats = [int(c) for c in str(node["threshold"]).split("||")]
                words = max(cats) // 32 + 1
                mask = [0] * words
                for c in cats:
                    mask[c // 32] |= 1 << (c % 32)
                cat_start[t, i], cat_words[t, i] = len(bits), words
                bits.extend(mask)
            else:
                threshold[t, i] = float(node["threshold"])
        features = sorted({int(node["split_feature"]) for node in splits})
        n_slots[t] = len(features)
        slot_feature[t, : len(features)] = features
        phi, empty = _tree_table(info["tree_structure"], splits, features)
        offsets[t] = size
        size += phi.size
        tables.append(phi.ravel())
        bias += empty
    return TreeTables(
        n_nodes,
        feature,
        threshold,
        kind,
        missing,
        default_left,
        cat_start,
        cat_words,
        np.array(bits, dtype=np.uint32),
        n_slots,
        slot_feature,
        offsets,
        np.concatenate(tables) if tables else np.zeros(0),
        bias,
        booster.num_feature(),
    )


def _collect_splits(node: dict[str, Any], out: list[dict[str, Any]]) -> None:
    if "split_index" in node:
        out.append(node)
        _collect_splits(node["left_child"], out)
        _collect_splits(node["right_child"], out)


def _count(node: dict[str, Any]) -> float:
    return float(node["internal_count"] if "split_index" in node else node["leaf_count"])


def _tree_table(
    root: dict[str, Any], nodes: list[dict[str, Any]], features: list[int]
) -> tuple[np.ndarray, float]:
    """SHAP values per decision pattern, shape ``(2**m, len(features))`` for the ``m``
    splits ``nodes`` (in pre-order, as :func:`_collect_splits` lists them), and ``v(empty)``.

    Pattern bit ``i`` is 1 when the row goes left at the split with ``split_index`` ``i``.
    The tree is flattened here (nodes in pre-order, so children follow their parent) and
    the tables are built by :func:`_shapley_table`, compiled and without Python's lock: a
    server loading a new version beside the one it serves keeps answering meanwhile.
    """
    m = len(nodes)
    if m == 0:
        return np.zeros((1, 0)), float(root["leaf_value"])
    slot = {f: s for s, f in enumerate(features)}
    # Internal nodes by pre-order index; a child is an internal index >= 0 or ~leaf index.
    left = np.zeros(m, dtype=np.int64)
    right = np.zeros(m, dtype=np.int64)
    bit = np.zeros(m, dtype=np.int64)
    node_slot = np.zeros(m, dtype=np.int64)
    count = np.zeros(m)
    leaf_value = np.zeros(m + 1)
    leaf_count = np.zeros(m + 1)
    order = {id(node): i for i, node in enumerate(nodes)}
    n_leaves = 0
    for i, node in enumerate(nodes):
        bit[i] = int(node["split_index"])
        node_slot[i] = slot[int(node["split_feature"])]
        count[i] = _count(node)
        for side, target in (("left_child", left), ("right_child", right)):
            child = node[side]
            if "split_index" in child:
                target[i] = order[id(child)]
            else:
                leaf_value[n_leaves] = float(child["leaf_value"])
                leaf_count[n_leaves] = _count(child)
                target[i] = ~n_leaves
                n_leaves += 1
    phi = np.zeros((2**m, len(features)))
    empty = _shapley_table(left, right, bit, node_slot, count, leaf_value, leaf_count, phi)
    return phi, empty


@numba.njit(cache=True, nogil=True)
def _shapley_table(
    left: np.ndarray,
    right: np.ndarray,
    bit: np.ndarray,
    node_slot: np.ndarray,
    count: np.ndarray,
    leaf_value: np.ndarray,
    leaf_count: np.ndarray,
    phi: np.ndarray,
) -> float:  # pragma: no cover - compiled by numba; tested through compile_booster
    """Fill ``phi`` (patterns x slots) with the Shapley values of ``v(S)`` for every
    decision pattern; return ``v(empty set)``.

    ``v(S)`` for a pattern: at a split on a feature in ``S`` follow the pattern's side, at
    any other split average both sides by their training counts.
    """
    m = left.shape[0]
    n_patterns, d = phi.shape
    n_subsets = 1 << d
    v = np.empty((n_subsets, n_patterns))
    value = np.empty((m, n_patterns))
    for subset in range(n_subsets):
        for node in range(m - 1, -1, -1):  # children (higher pre-order index) first
            known = (subset >> node_slot[node]) & 1 == 1
            lc, rc = left[node], right[node]
            w_left = count[lc] if lc >= 0 else leaf_count[~lc]
            w_right = count[rc] if rc >= 0 else leaf_count[~rc]
            for p in range(n_patterns):
                a = value[lc, p] if lc >= 0 else leaf_value[~lc]
                b = value[rc, p] if rc >= 0 else leaf_value[~rc]
                if known:
                    value[node, p] = a if (p >> bit[node]) & 1 == 1 else b
                else:
                    value[node, p] = (w_left * a + w_right * b) / count[node]
        v[subset, :] = value[0, :]
    # Shapley weights |S|! (d - |S| - 1)! / d! by subset size.
    factorial = np.ones(d + 1)
    for k in range(1, d + 1):
        factorial[k] = factorial[k - 1] * k
    weight = np.empty(d)
    for size in range(d):
        weight[size] = factorial[size] * factorial[d - size - 1] / factorial[d]
    for i in range(d):
        for subset in range(n_subsets):
            if (subset >> i) & 1:
                continue
            size = 0
            s = subset
            while s:
                size += s & 1
                s >>= 1
            with_i = subset | (1 << i)
            for p in range(n_patterns):
                phi[p, i] += weight[size] * (v[with_i, p] - v[subset, p])
    return v[0, 0]


_NODE_ARGS = (
    "n_nodes",
    "node_feature",
    "node_threshold",
    "node_kind",
    "node_missing",
    "node_default_left",
    "node_cat_start",
    "node_cat_words",
    "cat_bits",
    "n_slots",
    "slot_feature",
    "table_offset",
    "table",
)


@numba.njit(cache=True, nogil=True)
def goes_left(
    v: float,
    categorical: bool,
    missing: int,
    default_left: bool,
    threshold: float,
    cat_start: int,
    cat_words: int,
    cat_bits: np.ndarray,
) -> bool:  # pragma: no cover - compiled by numba; tested through TreeTables and Forest
    """LightGBM's decision at one split for the value ``v`` (``Tree::Decision``)."""
    if categorical:  # NaN and negatives go right
        if np.isnan(v):
            return False
        c = int(v)  # truncates toward zero, like LightGBM's static_cast
        if c < 0 or c >= 32 * cat_words:
            return False
        return (cat_bits[cat_start + c // 32] >> (c % 32)) & 1 == 1
    if np.isnan(v) and missing != 2:
        v = 0.0
    elif v >= -_ZERO and v <= _ZERO:
        v = 0.0  # LightGBM's row reader passes |v| <= kZeroThreshold as 0
    if (missing == 1 and v >= -_ZERO and v <= _ZERO) or (missing == 2 and np.isnan(v)):
        return default_left
    return v <= threshold


@numba.njit(cache=True)
def _explain_row(
    x: np.ndarray,
    r: int,
    n_nodes: np.ndarray,
    node_feature: np.ndarray,
    node_threshold: np.ndarray,
    node_kind: np.ndarray,
    node_missing: np.ndarray,
    node_default_left: np.ndarray,
    node_cat_start: np.ndarray,
    node_cat_words: np.ndarray,
    cat_bits: np.ndarray,
    n_slots: np.ndarray,
    slot_feature: np.ndarray,
    table_offset: np.ndarray,
    table: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba; tested through TreeTables
    """Add row ``r``'s table entries of every tree to ``out[r]``."""
    for t in range(n_nodes.shape[0]):
        pattern = 0
        for i in range(n_nodes[t]):
            if goes_left(
                x[r, node_feature[t, i]],
                node_kind[t, i] == _CATEGORICAL,
                node_missing[t, i],
                node_default_left[t, i],
                node_threshold[t, i],
                node_cat_start[t, i],
                node_cat_words[t, i],
                cat_bits,
            ):
                pattern |= 1 << i
        base = table_offset[t] + pattern * n_slots[t]
        for s in range(n_slots[t]):
            out[r, slot_feature[t, s]] += table[base + s]


# Two functions, not one function jitted twice: numba's on-disk cache keys a function by
# its name and line, so the second dispatcher would load the first one's code (a
# "parallel" kernel that silently ran serially).
@numba.njit(cache=True)
def _contrib_serial(
    x: np.ndarray, nodes: tuple[np.ndarray, ...], out: np.ndarray
) -> None:  # pragma: no cover - compiled by numba; tested through TreeTables
    for r in range(x.shape[0]):
        _explain_row(x, r, *nodes, out)  # type: ignore[call-arg]  # numba typing


@numba.njit(cache=True, parallel=True)
def _contrib_parallel(
    x: np.ndarray, nodes: tuple[np.ndarray, ...], out: np.ndarray
) -> None:  # pragma: no cover - compiled by numba; tested through TreeTables
    for r in numba.prange(x.shape[0]):
        _explain_row(x, r, *nodes, out)  # type: ignore[call-arg]  # numba typing
