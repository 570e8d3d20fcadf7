"""The policy: catalog + response model + arbitration + explanations, for a batch of contacts.

Used as is in process (training evaluation, tests) and wrapped by the MLflow pyfunc model in
``models/nba_policy.py`` for serving and batch scoring, so both rank identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nba.catalog import Catalog
from nba.policy.arbitration import (
    OK,
    RULE_NOT_WORTH_IT,
    RULE_VALUE_UNKNOWN,
    History,
    Screen,
    amounts,
    feature_arrays,
    rule_text,
    screen,
)
from nba.policy.contact_rules import families_first
from nba.policy.design import (
    NOTHING_BRANCH,
    NOTHING_FAMILY,
    Scratch,
    branch_code,
    branch_rows,
    candidate_rows,
    channel_codes,
    reason_codes,
)
from nba.policy.explain import ReasonLists, change_sentences, reason_lists
from nba.policy.response import ResponseModel
from nba.policy.uplift import FEES_COLUMN, UpliftModel
from nba.vocabulary import FAMILIES

_CANDIDATE_ROWS, _EXPLAINED_ROWS, _CONTRIBUTIONS = Scratch(), Scratch(), Scratch()
_BRANCH_ROWS = Scratch()
_BRANCH_BLOCK = 100_000
"""Each thread's memory for the design rows of :meth:`Policy._candidate_scores`, and the
ranked rows and their contributions in :meth:`Policy.rank` (reused: see ``Scratch``)."""

PRIOR_REASON = "little evidence for this action yet: using its family's average rate"
COLD_REASON = "new to us: no profile yet, so this uses the average acceptance rate"


@dataclass
class Contacts:
    """A batch of contacts with their profiles.

    ``profile_x`` has shape ``(n, n_numeric_features)`` (``design.profile_matrix``);
    ``active_products`` is the profile's text feature; ``history`` the past decisions.
    ``cold`` marks contacts without a profile (unknown customers): their propensities are
    the actions' prior rates, not the model's.
    """

    contact_id: list[str]
    customer_id: list[str]
    channel: list[str]
    reason: list[str | None]
    profile_x: np.ndarray
    active_products: list[str]
    history: History = field(default_factory=History)
    cold: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.contact_id)


@dataclass(frozen=True)
class Recommendation:
    action_id: str
    family: str
    name: str
    script: str | None
    propensity: float
    value: float
    priority: float
    reasons: list[str]
    cost: float = 0.0
    long_term_value: float | None = None
    """Δ: the learned change in revenue over the horizon (None: acceptance ranking)."""


@dataclass(frozen=True)
class Suppressed:
    action_id: str
    rule: str


@dataclass
class Decision:
    contact_id: str
    customer_id: str
    recommendations: list[Recommendation]
    suppressed: list[Suppressed]


@dataclass
class Scores:
    """Everything arbitration computed, shapes ``(n_contacts, n_actions)``."""

    propensity: np.ndarray
    net_value: np.ndarray
    priority: np.ndarray
    status: np.ndarray
    count: np.ndarray
    change: np.ndarray | None = None
    """Δ: the learned change in revenue over the horizon (None: acceptance ranking)."""
    cost: np.ndarray | None = None
    """Cost if accepted."""
    age: np.ndarray | None = None
    """Days since the newest offer or decline behind a contact-policy rule."""


@dataclass
class Ranking:
    """The recommended rows of a batch: contact-major, best first within a contact.

    ``contact`` indexes the batch's contacts, ``action`` the catalog; ``rank`` starts at 1.
    """

    contact: np.ndarray
    action: np.ndarray
    rank: np.ndarray
    propensity: np.ndarray
    net_value: np.ndarray
    priority: np.ndarray
    reasons: ReasonLists
    change: np.ndarray | None = None
    cost: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.contact.size)


class Policy:
    """Ranks the catalog's actions for contacts.

    priority = P(accept) x (value - cost) x lever + Δ, where Δ (with an ``uplift`` model)
    is what presenting the action changes in the revenue of the horizon against presenting
    nothing; without one, the acceptance ranking. Nothing is the answer where no action's
    priority is above zero.
    """

    def __init__(
        self,
        catalog: Catalog,
        model: ResponseModel,
        version: str = "dev",
        uplift: UpliftModel | None = None,
    ) -> None:
        self.catalog = catalog
        self.model = model
        self.version = version
        self.uplift = uplift
        self._family_code = np.array(
            [FAMILIES.index(a.family) for a in catalog.actions], dtype=int
        )

    def _change(
        self, contacts: Contacts, p: np.ndarray, who: np.ndarray, act: np.ndarray
    ) -> np.ndarray | None:
        """Δ of each candidate (contact ``who[r]``, action ``act[r]``) as a ``(n, k)``
        matrix (NaN elsewhere); ``None`` without an uplift model. ``p`` is the ``(n, k)``
        acceptance probability.

        Δ(a) = p(a) x kept(accepted, family of a) + (1 - p(a)) x kept(not accepted, family)
        - kept(nothing), times the fees at stake over the horizon: an action changes the
        months that follow through what the customer does with it (see
        :mod:`nba.policy.uplift`)."""
        if self.uplift is None:
            return None
        n, k = len(contacts), len(self.catalog.actions)
        out = np.full((n, k), np.nan)
        if not who.size:
            return out
        fam = self._family_code[act]
        # One accepted and one not-accepted row per (contact, family), one nothing row per
        # contact: far fewer rows than candidates x outcomes.
        pair = np.unique(who * (NOTHING_FAMILY + 1) + fam)
        pair_who, pair_fam = pair // (NOTHING_FAMILY + 1), pair % (NOTHING_FAMILY + 1)
        asked = np.unique(who)
        branches = np.concatenate(
            [
                branch_code(pair_fam, np.ones(pair.size, dtype=bool)),
                branch_code(pair_fam, np.zeros(pair.size, dtype=bool)),
                np.full(asked.size, NOTHING_BRANCH),
            ]
        )
        rows_of = np.concatenate([pair_who, pair_who, asked])
        kept = self._kept_share(contacts, branches, rows_of)
        at = np.searchsorted(pair, who * (NOTHING_FAMILY + 1) + fam)
        accepted, declined = kept[at], kept[pair.size + at]
        base = np.empty(n)
        base[asked] = kept[2 * pair.size :]
        q = p[who, act]
        stake = np.nan_to_num(contacts.profile_x[who, FEES_COLUMN], nan=0.0)
        stake *= self.uplift.horizon_months_
        out[who, act] = stake * (q * accepted + (1 - q) * declined - base[who])
        if contacts.cold is not None and contacts.cold.any():
            out[contacts.cold] = 0.0  # no profile: nothing known about what it changes
        return out

    def _kept_share(
        self, contacts: Contacts, branches: np.ndarray, rows_of: np.ndarray
    ) -> np.ndarray:
        """The uplift model's kept share for (branch, contact) pairs, in blocks (bounded
        memory on batches of millions)."""
        assert self.uplift is not None
        channels, reasons = channel_codes(contacts.channel), reason_codes(contacts.reason)
        # One contact's branches side by side: the tree walk shares their common part.
        by_contact = np.argsort(rows_of, kind="stable")
        branches, rows_of = branches[by_contact], rows_of[by_contact]
        out = np.empty(branches.size)
        for lo in range(0, branches.size, _BRANCH_BLOCK):
            hi = min(lo + _BRANCH_BLOCK, branches.size)
            x = branch_rows(
                contacts.profile_x,
                channels,
                reasons,
                branches[lo:hi],
                rows_of[lo:hi],
                scratch=_BRANCH_ROWS,
            )
            out[by_contact[lo:hi]] = self.uplift.kept_share(x)
        return out

    def kept_if_nothing(self, contacts: Contacts) -> np.ndarray | None:
        """Per contact, the revenue of the horizon the uplift model expects to be kept if
        nothing is presented (``None`` without one): the baseline against which every
        action's Δ is counted, and a per-customer reward model for off-policy evaluation."""
        if self.uplift is None:
            return None
        n = len(contacts)
        rows = np.arange(n)
        kept = self._kept_share(contacts, np.full(n, NOTHING_BRANCH), rows)
        stake = np.nan_to_num(contacts.profile_x[:, FEES_COLUMN], nan=0.0)
        out = stake * self.uplift.horizon_months_ * kept
        if contacts.cold is not None and contacts.cold.any():
            out[contacts.cold] = 0.0
        return np.asarray(out, dtype=float)

    def score(self, contacts: Contacts) -> Scores:
        """Propensity, value and rules for every contact x action (one ``predict``).

        Evaluation needs every propensity; ranking uses :meth:`rank`, which scores only the
        candidates.
        """
        n, k = len(contacts), len(self.catalog.actions)
        who, act, x = self._rows_by_family(contacts, *np.divmod(np.arange(n * k), k))
        p = np.empty((n, k))
        p[who, act] = self.model.predict_proba(x) if n else np.empty(0)
        change = self._change(contacts, p, who, act)
        return self._arbitrate(contacts, p, change)

    def _rows_by_family(
        self, contacts: Contacts, who: np.ndarray, act: np.ndarray, scratch: Scratch | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The design rows of (contact ``who[r]``, action ``act[r]``) sorted by family, so
        each family model scores a slice, not a copy of its rows; and ``who``, ``act`` in
        that order."""
        by_family = np.argsort(self._family_code[act], kind="stable")
        who, act = who[by_family], act[by_family]
        x = candidate_rows(
            contacts.profile_x,
            channel_codes(contacts.channel),
            reason_codes(contacts.reason),
            self.catalog,
            action_index=act,
            contact_index=who,
            scratch=scratch,
        )
        return who, act, x

    def _arbitrate(
        self,
        contacts: Contacts,
        p: np.ndarray,
        change: np.ndarray | None,
        money: tuple[np.ndarray, np.ndarray] | None = None,
        sc: Screen | None = None,
    ) -> Scores:
        """``money``: :func:`amounts`, ``sc``: :func:`screen`, if already computed (both
        cost time per answer)."""
        n = len(contacts)
        feats = feature_arrays(contacts.profile_x)
        if sc is None:
            sc = screen(
                self.catalog, feats, contacts.active_products, contacts.channel, contacts.history
            )
        if contacts.cold is not None and contacts.cold.any():
            p[contacts.cold] = self.model.prior_rates()
        net, cost = money if money is not None else amounts(self.catalog, feats, n)
        priority = p * net if change is None else p * net + change
        status = sc.status.copy()
        ok = status == OK
        status[ok & np.isnan(net)] = RULE_VALUE_UNKNOWN
        status[(status == OK) & ~(priority > 0)] = RULE_NOT_WORTH_IT
        return Scores(p, net, priority, status, sc.count, change, cost, sc.age)

    def _candidate_scores(self, contacts: Contacts) -> tuple[Scores, np.ndarray, np.ndarray]:
        """Like :meth:`score`, but the model scores only the actions that pass the rules
        and could be worth it (a positive value; with an uplift model, any known value);
        the others are dropped whatever their propensity, and get NaN. Returns the scores,
        the candidates' design rows (sorted by family, so each family model scores a slice;
        in this thread's scratch memory, valid until its next call) and each (contact,
        action)'s row in it (-1: none).
        """
        n, k = len(contacts), len(self.catalog.actions)
        feats = feature_arrays(contacts.profile_x)
        sc = screen(
            self.catalog, feats, contacts.active_products, contacts.channel, contacts.history
        )
        money = amounts(self.catalog, feats, n)
        net = money[0]
        worth = (net > 0) if self.uplift is None else np.isfinite(net)
        who, act = np.nonzero((sc.status == OK) & worth)
        who, act, x = self._rows_by_family(contacts, who, act, scratch=_CANDIDATE_ROWS)
        p = np.full((n, k), np.nan)
        if who.size:
            p[who, act] = self.model.predict_proba(x)
        row = np.full((n, k), -1, dtype=np.int64)
        row[who, act] = np.arange(who.size)
        change = self._change(contacts, p, who, act)
        return self._arbitrate(contacts, p, change, money, sc), x, row

    def rank(self, contacts: Contacts, limit: int | None = None) -> tuple[Ranking, Scores]:
        """Ranked recommendations of every contact (best first, at most ``limit``), columnar,
        with their reasons; and the scores (for the suppressed actions' rules)."""
        scores, x, row = self._candidate_scores(contacts)
        k = scores.status.shape[1]
        ok = scores.status == OK
        # Highest priority first; catalog order breaks ties (stable sort).
        order = np.argsort(-np.where(ok, scores.priority, -np.inf), axis=1, kind="stable")
        if self.catalog.company_policy.families_first:
            order = families_first(order, ok, self._family_code)
        width = k if limit is None else min(limit, k)
        order = order[:, :width]
        shown = np.minimum(ok.sum(axis=1), width)
        who, position = np.nonzero(np.arange(width)[None, :] < shown[:, None])
        act = order[who, position]
        cold = contacts.cold[who] if contacts.cold is not None else np.zeros(who.size, dtype=bool)
        prior = np.array([self.model.uses_prior(j) for j in range(k)], dtype=bool)[act]
        explained = ~cold & ~prior
        # Explain in design-row order (sorted by family: each family model explains a
        # slice), then put the reasons back in ranking order.
        where = row[who[explained], act[explained]]
        by_row = np.argsort(where, kind="stable")
        rows = _EXPLAINED_ROWS.array((where.size, x.shape[1]))
        np.take(x, where[by_row], axis=0, out=rows, mode="clip")  # "raise" would buffer
        contributions = self.model.contributions(
            rows, out=_CONTRIBUTIONS.array((where.size, x.shape[1] + 1))
        )
        unspoken = self.catalog.unspoken_reasons
        found = reason_lists(contributions, rows, unspoken=unspoken).take(np.argsort(by_row))
        reasons = _with_fixed_reasons(found, explained, cold)
        change = None if scores.change is None else scores.change[who, act]
        if change is not None:
            reasons = reasons.prepend(change_sentences(change, self.catalog.horizon_days))
        ranking = Ranking(
            who,
            act,
            position + 1,
            scores.propensity[who, act],
            scores.net_value[who, act],
            scores.priority[who, act],
            reasons,
            change,
            None if scores.cost is None else scores.cost[who, act],
        )
        return ranking, scores

    def decide(self, contacts: Contacts, limit: int | None = None) -> list[Decision]:
        """Ranked recommendations (best first, at most ``limit``) and suppressed actions."""
        ranking, scores = self.rank(contacts, limit)
        k = len(self.catalog.actions)
        bounds = np.searchsorted(ranking.contact, np.arange(len(contacts) + 1))
        decisions = []
        for i in range(len(contacts)):
            recs = []
            for r in range(int(bounds[i]), int(bounds[i + 1])):
                a = self.catalog.actions[int(ranking.action[r])]
                recs.append(
                    Recommendation(
                        a.id,
                        a.family,
                        a.name,
                        a.script,
                        float(ranking.propensity[r]),
                        float(ranking.net_value[r]),
                        float(ranking.priority[r]),
                        ranking.reasons.row(r),
                        0.0 if ranking.cost is None else float(ranking.cost[r]),
                        None if ranking.change is None else float(ranking.change[r]),
                    )
                )
            suppressed = [
                Suppressed(
                    self.catalog.actions[j].id,
                    rule_text(
                        self.catalog,
                        j,
                        int(scores.status[i, j]),
                        int(scores.count[i, j]),
                        contacts.channel[i],
                        float(scores.age[i, j]) if scores.age is not None else np.inf,
                    ),
                )
                for j in range(k)
                if scores.status[i, j] != OK
            ]
            decisions.append(
                Decision(contacts.contact_id[i], contacts.customer_id[i], recs, suppressed)
            )
        return decisions


def _with_fixed_reasons(
    found: ReasonLists, explained: np.ndarray, cold: np.ndarray
) -> ReasonLists:
    """All ranked rows' reasons: the explained rows' from ``found``, and one fixed sentence
    for the others (cold start, or an action answered by its prior)."""
    counts = np.ones(explained.size, dtype=np.int64)
    counts[explained] = np.diff(found.offsets)
    offsets = np.zeros(explained.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    texts = [*found.texts, COLD_REASON, PRIOR_REASON]
    ids = np.empty(int(offsets[-1]), dtype=np.int64)
    flat_explained = np.repeat(explained, counts)
    ids[flat_explained] = found.ids
    fixed = np.where(cold[~explained], len(texts) - 2, len(texts) - 1)
    ids[~flat_explained] = fixed
    return ReasonLists(offsets, ids, texts)
