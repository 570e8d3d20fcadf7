"""The simulator's truth dressed as one of the engine's models, for benchmarks that ask how
far a part of the engine is from the truth."""

from __future__ import annotations

import numpy as np


class TrueRates:
    """Given acceptance probabilities (contacts x catalog actions) as a response model, for
    rows built over every catalog action of every contact (as ``Policy.score`` builds them).

    Each row's action is read from its ``ctx_action`` column; its contact is its rank among
    that action's rows. That holds in any row order that keeps the contacts' order within
    an action (``Policy.score`` sorts the rows by family, stably). Reading the rows as
    contact-major, as this class did until ``Policy.score`` sorted them, gave rows another
    row's rate.
    """

    def __init__(self, p: np.ndarray, prior: np.ndarray) -> None:
        self.p, self.prior = p, prior

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        from nba.policy.design import MODEL_COLUMNS

        act = x[:, MODEL_COLUMNS.index("ctx_action")].astype(np.int64)
        who = np.empty_like(act)
        for a in np.unique(act):
            rows = np.flatnonzero(act == a)
            if rows.size != self.p.shape[0]:
                raise ValueError(f"action {a}: {rows.size} rows for {self.p.shape[0]} contacts")
            who[rows] = np.arange(rows.size)
        return self.p[who, act]

    def prior_rates(self) -> np.ndarray:
        return self.prior
