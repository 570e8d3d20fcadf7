"""Plain-language reasons for agents, from per-prediction contributions.

The response model's ``pred_contrib`` says which inputs pushed an action's acceptance up.
The strongest positive ones become short sentences in the customer's terms ("two missed
payments in the last 3 months", "asked to cancel"); raw feature names never reach agents.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from nba.policy.design import MODEL_COLUMNS, MONOTONE_FEATURES, base_feature
from nba.vocabulary import INTERACTION_TYPES

_NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_WINDOW = {
    7: "this week",
    30: "in the last 30 days",
    90: "in the last 3 months",
    365: "in the last year",
}
_TYPE_NOUN = {
    "inquiry": ("inquiry", "inquiries"),
    "complaint": ("complaint", "complaints"),
    "cancellation_request": ("cancellation request", "cancellation requests"),
    "billing_question": ("billing question", "billing questions"),
    "payment": ("payment", "payments"),
    "missed_payment": ("missed payment", "missed payments"),
    "login": ("login", "logins"),
    "purchase": ("purchase", "purchases"),
    "contract_change": ("contract change", "contract changes"),
    "other": ("other contact", "other contacts"),
    "interactions": ("contact", "contacts"),
}
_FAMILY_NOUN = {
    "retention_gesture": "retention offer",
    "installment_offer": "installment offer",
    "information_request": "information request",
    "product_offer": "product offer",
}
_REASON_TEXT = {
    "inquiry": "is asking a question",
    "complaint": "is calling to complain",
    "cancellation_request": "asked to cancel",
    "billing_question": "has a billing question",
    "contract_change": "wants to change the contract",
    "missed_payment": "is calling about a missed payment",
    "payment": "is calling about a payment",
    "purchase": "is calling about a purchase",
}
# Inputs that are not about the customer: never a reason.
_SILENT = {"ctx_action", "ctx_family", "ctx_channel", "monthly_fees", "n_interactions_7d"}


def _count(n: float, singular: str, plural: str) -> str:
    k = round(n)
    word = _NUMBERS[k] if 0 <= k < len(_NUMBERS) else str(k)
    return f"{word} {singular if k == 1 else plural}"


def _days(d: float) -> str:
    k = round(d)
    if k <= 0:
        return "today"
    if k == 1:
        return "yesterday"
    return f"{k} days ago"


Formatter = Callable[[float, bool, "str | None"], "str | None"]
"""(value, missing, contact reason) -> sentence or None."""


def sentence(feature: str, value: float | None, reason: str | None = None) -> str | None:
    """A plain sentence for one input and its value; ``None`` if it has nothing to say."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    v = 0.0 if missing else float(value)  # type: ignore[arg-type]
    return formatter(feature)(v, missing, reason)


@functools.cache
def formatter(feature: str) -> Formatter:
    """The sentence maker of one input, worked out once per feature (batch scoring makes
    millions of sentences)."""
    if feature in MONOTONE_FEATURES:
        # Payment trouble is empty in the column an action's family does not use (see
        # nba.policy.design): an empty value there says nothing ("missed 0% of payments"
        # beside "missed 71%" would contradict the profile).
        inner = _formatter(feature)
        return lambda v, missing, reason: None if missing else inner(v, missing, reason)
    return _formatter(feature)


def _formatter(feature: str) -> Formatter:
    if feature == "ctx_reason":
        return lambda v, missing, reason: (
            f"customer {_REASON_TEXT[reason]}" if reason in _REASON_TEXT else None
        )
    if feature in _SILENT:
        return lambda v, missing, reason: None
    m = re.fullmatch(r"n_(.+)_(\d+)d", feature)
    if m and m.group(1) in _TYPE_NOUN:
        one, many = _TYPE_NOUN[m.group(1)]
        window = _WINDOW[int(m.group(2))]
        return lambda v, missing, reason: f"{_count(v, one, many)} {window}"
    if m and m.group(1).startswith("via_"):
        channel = m.group(1)[4:]
        window = _WINDOW[int(m.group(2))]
        return lambda v, missing, reason: (
            f"{_count(v, 'contact', 'contacts')} by {channel} {window}"
        )
    m = re.fullmatch(r"n_(offers|declines|accepts)_(.+)_(\d+)d", feature)
    if m:
        verb = {"offers": "was offered", "declines": "declined", "accepts": "accepted"}[m[1]]
        noun = _FAMILY_NOUN[m[2]]
        window = _WINDOW[int(m[3])]
        return lambda v, missing, reason: f"{verb} {_count(v, noun, noun + 's')} {window}"
    m = re.fullmatch(r"days_since_(.+)", feature)
    if m:
        found = _days_since_formatter(m.group(1))
        if found is not None:
            return found
    return _other_formatter(feature)


KeyFn = Callable[[np.ndarray], np.ndarray]


@functools.cache
@functools.cache
def text_key(feature: str) -> KeyFn | None:
    """A vectorised function with: equal keys -> equal sentences (for present values), so
    a batch formats one sentence per key rather than per value; ``None``: the value itself.
    Counts and days are rounded half-to-even by ``round`` and ``np.rint`` alike."""
    whole = {"n_negative_sentiment_90d", "n_active_products", "n_products_ended_90d"}
    if (
        feature in whole
        or re.fullmatch(r"n_(.+)_(\d+)d", feature)
        or feature.startswith("days_since_")
    ):
        return np.rint
    if feature.startswith("sentiment_mean"):
        return lambda v: np.where(v < -0.2, -1.0, np.where(v > 0.2, 1.0, 0.0))
    if feature in ("sentiment_trend", "complaint_trend"):
        return np.sign
    if feature in ("email_known", "is_business"):
        return lambda v: (v != 0).astype(float)
    return None


def _days_since_formatter(what: str) -> Formatter | None:
    if what.startswith("offer_"):
        noun = _FAMILY_NOUN[what[6:]]
        return lambda v, missing, reason: (
            f"no {noun} {_WINDOW[365]}" if missing else f"last {noun} {_days(v)}"
        )
    if what == "interaction":
        return lambda v, missing, reason: (
            "no contact in the last year" if missing else f"last contact {_days(v)}"
        )
    if what in INTERACTION_TYPES:
        one, many = _TYPE_NOUN[what]
        return lambda v, missing, reason: (
            f"no {many} {_WINDOW[365]}" if missing else f"last {one} {_days(v)}"
        )
    if what == "contract_start":
        return lambda v, missing, reason: (
            None if missing else f"newest contract started {_days(v)}"
        )
    return None


def _other_formatter(feature: str) -> Formatter:
    if feature.startswith("sentiment_mean"):
        window = _WINDOW[int(feature.rsplit("_", 1)[1][:-1])]

        def mood(v: float, missing: bool, reason: str | None) -> str | None:
            if missing:
                return None
            word = "unhappy" if v < -0.2 else "satisfied" if v > 0.2 else "neutral"
            return f"sounded {word} in contacts {window}"

        return mood
    texts: dict[str, Formatter] = {
        "sentiment_trend": lambda v, missing, reason: (
            None if missing else ("getting unhappier lately" if v < 0 else "mood improving lately")
        ),
        "complaint_trend": lambda v, missing, reason: (
            "complaining more than before"
            if v > 0
            else "complaining less than before"
            if v < 0
            else "no change in complaints"
        ),
        "missed_payment_ratio_365d": lambda v, missing, reason: (
            "paid every bill on time in the last year"
            if v == 0
            else f"missed {v:.0%} of payments in the last year"
        ),
        "amount_missed_90d": lambda v, missing, reason: (
            f"{v:,.2f} in missed payments in the last 3 months"
        ),
        "amount_paid_90d": lambda v, missing, reason: f"paid {v:,.2f} in the last 3 months",
        "amount_purchased_365d": lambda v, missing, reason: (
            f"bought for {v:,.2f} in the last year"
        ),
        "n_negative_sentiment_90d": lambda v, missing, reason: (
            f"{_count(v, 'unhappy contact', 'unhappy contacts')} in the last 3 months"
        ),
        "tenure_days": lambda v, missing, reason: (
            None if missing else f"customer for {v / 365.25:.1f} years"
        ),
        "age_years": lambda v, missing, reason: None if missing else f"aged {v:.0f}",
        "email_known": lambda v, missing, reason: (
            "e-mail address on file" if v else "no e-mail address on file"
        ),
        "monthly_revenue": lambda v, missing, reason: (
            None if missing else f"pays {v:,.2f} a month"
        ),
        "is_business": lambda v, missing, reason: "business customer" if v else "private customer",
        "n_active_products": lambda v, missing, reason: f"has {_count(v, 'product', 'products')}",
        "n_products_ended_90d": lambda v, missing, reason: (
            f"ended {_count(v, 'product', 'products')} in the last 3 months"
        ),
    }
    return texts.get(feature, lambda v, missing, reason: None)


def top_reasons(
    contributions: list[float],
    values: list[float | None],
    reason: str | None,
    k: int = 3,
    unspoken: frozenset[str] = frozenset(),
) -> list[str]:
    """The ``k`` strongest positive contributions as distinct sentences.

    ``contributions`` and ``values`` follow ``MODEL_COLUMNS`` order (``values`` holds the
    row's inputs; the reason code's value is ignored in favour of ``reason``); features in
    ``unspoken`` are never a reason (the catalog's ``unspoken_reasons``).
    """
    c = np.asarray(contributions[: len(MODEL_COLUMNS)], dtype=float)
    # Largest first, ties by column order (lexsort's last key is the primary one).
    order = np.lexsort((np.arange(c.size), -c))
    out: list[str] = []
    for j in order.tolist():
        if c[j] <= 0 or len(out) >= k:
            break
        if base_feature(MODEL_COLUMNS[j]) in unspoken:
            continue
        text = sentence(base_feature(MODEL_COLUMNS[j]), values[j], reason)
        if text and text not in out:
            out.append(text)
    return out


@dataclass(frozen=True)
class ReasonLists:
    """Reasons of many rows, flat: row ``r`` has ``texts[ids[offsets[r]:offsets[r + 1]]]``
    (the layout of an Arrow list column, so batch scoring writes it without a Python loop)."""

    offsets: np.ndarray
    ids: np.ndarray
    texts: list[str]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, r: int) -> list[str]:
        return [self.texts[i] for i in self.ids[self.offsets[r] : self.offsets[r + 1]].tolist()]

    def prepend(self, leading: tuple[np.ndarray, list[str]]) -> ReasonLists:
        """Each row's reasons behind one more sentence: ``leading`` is (a text index per
        row, -1 for none; those texts)."""
        first, texts = leading
        has = first >= 0
        counts = np.diff(self.offsets) + has
        offsets = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        ids = np.empty(int(offsets[-1]), dtype=np.int64)
        ids[offsets[:-1][has]] = first[has] + len(self.texts)
        rest = np.repeat(offsets[:-1] + has, np.diff(self.offsets)) + (
            np.arange(self.ids.size) - np.repeat(self.offsets[:-1], np.diff(self.offsets))
        )
        ids[rest] = self.ids
        return ReasonLists(offsets, ids, [*self.texts, *texts])

    def take(self, rows: np.ndarray) -> ReasonLists:
        """The reasons of ``rows``, in that order."""
        counts = np.diff(self.offsets)[rows]
        offsets = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        flat = np.repeat(self.offsets[rows] - offsets[:-1], counts) + np.arange(offsets[-1])
        return ReasonLists(offsets, self.ids[flat], self.texts)


_SCAN = 8
"""Candidates per row looked at by :func:`reason_lists`; rows needing more go the slow way."""


def reason_lists(
    contrib: np.ndarray, x: np.ndarray, k: int = 3, unspoken: frozenset[str] = frozenset()
) -> ReasonLists:
    """:func:`top_reasons` for every row of ``x`` (model rows) and ``contrib`` (their
    contributions), vectorised; the result is identical row by row.

    Each row's ``_SCAN`` largest positive contributions, in ``top_reasons``' order (value,
    then column), are picked by a compiled loop; a row whose window runs out before ``k``
    distinct sentences is done by ``top_reasons``. Sentences are made once per distinct
    (column, value key).
    """
    n, ncol = x.shape[0], len(MODEL_COLUMNS)
    m = min(_SCAN, ncol)
    speaks = np.ones(ncol, dtype=np.bool_)
    speaks[_SILENT_COLUMNS] = False
    speaks[[j for j, col in enumerate(MODEL_COLUMNS) if base_feature(col) in unspoken]] = False
    top = np.full((n, m), -1, dtype=np.int64)
    vals = np.full((n, m), -np.inf)
    _top_positive(np.ascontiguousarray(contrib, dtype=np.float64), speaks, top, vals)
    text_ids, texts = _sentence_ids(top, top >= 0, x)

    chosen = np.full((n, k), -1, dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    for q in range(m):
        open_ = ~done & (count < k)
        done |= open_ & (top[:, q] < 0)  # no more positive contributions
        open_ &= ~done
        tid = text_ids[:, q]
        fresh = open_ & (tid >= 0) & ~(chosen == tid[:, None]).any(axis=1)
        rows = np.flatnonzero(fresh)
        chosen[rows, count[rows]] = tid[rows]
        count[rows] += 1
    # The window ran out with sentences missing, and more positive inputs may follow.
    slow = ~done & (count < k) & (top[:, -1] >= 0)
    if slow.any():
        index = {t: i for i, t in enumerate(texts)}
        for r in np.flatnonzero(slow).tolist():
            found = top_reasons(
                contrib[r, :ncol].tolist(), x[r].tolist(), _reason_of(x[r]), k, unspoken
            )
            ids = [index.setdefault(t, len(index)) for t in found]
            chosen[r] = -1
            chosen[r, : len(ids)] = ids
            count[r] = len(ids)
        texts = list(index)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(count, out=offsets[1:])
    return ReasonLists(offsets, chosen[chosen >= 0], texts)


_REASON_COLUMN = MODEL_COLUMNS.index("ctx_reason")
_SILENT_COLUMNS = [j for j, col in enumerate(MODEL_COLUMNS) if base_feature(col) in _SILENT]


def _reason_of(row: np.ndarray) -> str | None:
    return _reason_of_code(float(row[_REASON_COLUMN]))


_FEW = 64
"""Candidates below which :func:`_sentence_ids` goes one by one (an API answer: a few
rows), above which it works per column (batch scoring: millions)."""


def _sentence_ids(
    top: np.ndarray, positive: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Sentence id of each candidate (row, top[row, q]) where ``positive``; -1 for no
    sentence. Equal sentences share an id, so duplicates are caught by id."""
    ids = np.full(top.shape, -1, dtype=np.int64)
    index: dict[str, int] = {}
    rows = np.nonzero(positive)
    if rows[0].size <= _FEW:
        # Per-column numpy work costs more than it saves on a dozen candidates.
        for r, q in zip(rows[0].tolist(), rows[1].tolist(), strict=True):
            value = float(x[r, top[r, q]])
            text = _sentence_of(int(top[r, q]), None if math.isnan(value) else value)
            if text:
                ids[r, q] = index.setdefault(text, len(index))
        return ids, list(index)
    cols = top[rows]
    values = x[rows[0], cols]
    # Group the candidates by column with one sort (not one scan of them per column).
    by_col = np.argsort(cols, kind="stable")
    starts = np.flatnonzero(np.diff(cols[by_col], prepend=-1))
    ends = np.append(starts[1:], by_col.size)
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        sel = by_col[lo:hi]
        col = int(cols[sel[0]])
        v = values[sel]
        missing = np.isnan(v)
        feature = base_feature(MODEL_COLUMNS[col])
        key = text_key(feature)
        present = np.where(missing, 0.0, v)
        keys = key(present) if key is not None else present
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        for flag in (False, True):
            part = missing == flag
            if not part.any():
                continue
            found = np.full(uniq.size, -1, dtype=np.int64)
            used = np.unique(inverse[part])
            # Any value with this key makes the same sentence: take the first one.
            texts = [_sentence_of(col, None if flag else v) for v in present[first[used]].tolist()]
            found[used] = [index.setdefault(t, len(index)) if t else -1 for t in texts]
            ids[rows[0][sel[part]], rows[1][sel[part]]] = found[inverse[part]]
    return ids, list(index)


@functools.lru_cache(maxsize=1 << 16)
def _sentence_of(col: int, value: float | None) -> str | None:
    """The sentence of model column ``col`` at ``value`` (``None``: missing); cached, since
    one answer after another asks for the same few."""
    feature = base_feature(MODEL_COLUMNS[col])
    if value is None:
        value = float("nan")
    if col == _REASON_COLUMN:
        return sentence(feature, value, _reason_of_code(value))
    return sentence(feature, value)


def _reason_of_code(code: float) -> str | None:
    """The contact reason behind a reason code (an unlisted reason has no sentence either
    way, so 'other' stands in for it)."""
    return INTERACTION_TYPES[int(code)] if 0 <= code < len(INTERACTION_TYPES) else None


@numba.njit(cache=True)
def _top_positive(
    contrib: np.ndarray, speaks: np.ndarray, top: np.ndarray, vals: np.ndarray
) -> None:  # pragma: no cover - compiled; tested through reason_lists
    """Per row, the ``top.shape[1]`` largest positive contributions of the columns that
    can speak, largest first, ties by column (insertion into a short sorted list)."""
    m = top.shape[1]
    for r in range(contrib.shape[0]):
        size = 0
        for j in range(speaks.size):
            v = contrib[r, j]
            if not speaks[j] or not v > 0:
                continue
            if size == m and v <= vals[r, m - 1]:
                continue  # equal values keep the earlier column
            q = size if size < m else m - 1
            while q > 0 and vals[r, q - 1] < v:
                if q < m:
                    vals[r, q] = vals[r, q - 1]
                    top[r, q] = top[r, q - 1]
                q -= 1
            vals[r, q] = v
            top[r, q] = j
            if size < m:
                size += 1


CHANGE_WORTH_SAYING = 5.0
"""A change in revenue smaller than this is not worth a sentence."""


def change_sentences(change: np.ndarray, horizon_days: int) -> tuple[np.ndarray, list[str]]:
    """What an action changes, in words an agent can say: per row a text index (-1 for a
    change too small to mention) and the distinct texts. Amounts are rounded (to 5 below
    100, to 10 above), so a batch has a few hundred distinct sentences, not millions."""
    months = max(1, round(horizon_days / 30.44))
    span = f"over the next {months} month{'s' if months != 1 else ''}"
    step = np.where(np.abs(change) < 100, 5.0, 10.0)
    amount = np.round(np.nan_to_num(change) / step) * step
    speak = np.abs(np.nan_to_num(change)) >= CHANGE_WORTH_SAYING
    keys, first = np.unique(np.where(speak, amount, 0.0), return_inverse=True)
    texts = [
        f"likely keeps this customer: about {k:,.0f} more revenue {span}"
        if k > 0
        else f"may put this customer off: about {-k:,.0f} less revenue {span}"
        for k in keys
    ]
    return np.where(speak, first, -1).astype(np.int64), texts
