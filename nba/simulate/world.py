"""A synthetic customer world that writes exactly the tables of the data contract.

Customers carry latent traits (financial stress, dissatisfaction, digital affinity, product
needs) that are never written out. They evolve week by week (stress episodes, incidents that
anger customers and fade) and show only through what customers do: missed payments, billing
questions, complaints, cancellation requests, sentiment, logins, purchases, and churn.

At inbound contacts on agent channels a *logging policy* with known randomisation picks one
action and logs its propensity: with probability ``exploration`` a uniformly random eligible
action, otherwise the legacy product-first rule (the first eligible product offer). Outcomes
come from :mod:`nba.simulate.response` and feed back into the world (an accepted installment
eases stress, an accepted retention gesture calms the customer, a declined product offer to
an unhappy customer angers them further).

The last ``holdout_weeks`` weeks have no decisions: their agent contacts are written to
``contacts`` and the expected net value of every action at each of them to
``truth/expected_value.parquet``, so any policy can be scored against the oracle.

Everything is drawn from one seeded generator in a fixed order: the same configuration gives
the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nba.catalog import NO_ACTION, Catalog, load_catalog
from nba.exceptions import NBAError
from nba.simulate import dynamics as dyn
from nba.simulate.response import ContactState, acceptance_probability
from nba.simulate.truth import HeldOut, expected_outcomes

PRODUCTS: tuple[str, ...] = (
    "mobile_basic",
    "mobile_plus",
    "broadband",
    "tv_stream",
    "device_insurance",
)
FEES: dict[str, float] = {
    "mobile_basic": 15.0,
    "mobile_plus": 35.0,
    "broadband": 40.0,
    "tv_stream": 20.0,
    "device_insurance": 8.0,
}
REGIONS = ("north", "south", "east", "west", "capital")
AGENT_CHANNELS = ("phone", "chat", "branch")
SERVICE_TYPES = (
    "inquiry",
    "complaint",
    "cancellation_request",
    "billing_question",
    "contract_change",
)
SERVICE_CHANNELS = ("phone", "chat", "email", "app", "web", "branch", "letter")
WEEK = 7 * 86400.0
DAY = 86400.0


@dataclass(frozen=True)
class SimulationConfig:
    """Size and randomness of the world. ``months`` counts 30.44-day months."""

    customers: int = 25_000
    months: int = 12
    seed: int = 42
    holdout_weeks: int = 4
    history_months: int = 6
    """Months of history (interactions, contracts) before the decision log starts."""
    exploration: float = 0.7
    nothing_share: float = 0.3
    """Share of agent contacts at which the logging policy presents nothing (and logs it)."""
    rollouts: int = 200
    """Monte Carlo rollouts per held-out contact for the ground truth's long-term value."""
    start: str = "2025-01-01"

    def validate(self) -> None:
        if self.customers < 1:
            raise NBAError(f"--customers must be at least 1, got {self.customers}")
        if self.months < 2:
            raise NBAError(f"--months must be at least 2, got {self.months}")
        if not 1 <= self.holdout_weeks < self.weeks - 2:
            raise NBAError(
                f"--holdout-weeks must be between 1 and {self.weeks - 3} for "
                f"{self.months} months, got {self.holdout_weeks}"
            )
        if self.history_months < 0:
            raise NBAError(f"history months must be >= 0, got {self.history_months}")
        if not 0.0 < self.exploration <= 1.0:
            raise NBAError(f"exploration must be in (0, 1], got {self.exploration}")
        if not 0.0 <= self.nothing_share < 1.0:
            raise NBAError(f"the share of 'nothing' must be in [0, 1), got {self.nothing_share}")
        if self.rollouts < 2:
            raise NBAError(f"rollouts must be at least 2, got {self.rollouts}")

    @property
    def weeks(self) -> int:
        """Weeks of the decision log (including the held-out weeks)."""
        return round(self.months * 30.44 / 7)

    @property
    def history_weeks(self) -> int:
        return round(self.history_months * 30.44 / 7)


@dataclass
class World:
    """The simulated tables (Arrow), ready to be written."""

    tables: dict[str, pa.Table]
    truth: dict[str, pa.Table]
    summary: dict[str, int | float]


class _Log:
    """Column lists that grow week by week and become one Arrow table."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.parts.setdefault(k, []).append(np.asarray(v))

    def get(self, key: str, dtype: type | str) -> np.ndarray:
        parts = self.parts.get(key, [])
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _choice_by_weights(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``weights`` (shape ``(n, k)``, rows need not sum to 1)."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(weights.shape[0]) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), weights.shape[1] - 1)


SIMULATED_EXPRESSION_FEATURES = frozenset({"monthly_revenue", "monthly_fees", "amount_missed_90d"})


def _amounts(
    catalog: Catalog, revenue: np.ndarray, fees: np.ndarray, missed_90d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(value, cost) of each action per contact, shapes ``(n, n_actions)``, from the
    customer's monthly revenue (a snapshot), the fees of their contracts at the contact and
    the payments they missed in the 90 days before it (as the profile features have them)."""
    feats = {"monthly_revenue": revenue, "monthly_fees": fees, "amount_missed_90d": missed_90d}
    n = revenue.shape[0]
    value = np.empty((n, len(catalog.actions)))
    cost = np.empty((n, len(catalog.actions)))
    for j, a in enumerate(catalog.actions):
        value[:, j] = a.value_of(feats, n)
        cost[:, j] = a.cost_of(feats, n)
    return value, cost


def _missed_before(
    recent: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    customer: np.ndarray,
    moment: np.ndarray,
    days: float = 90.0,
) -> np.ndarray:
    """Sum of missed payment amounts of each (customer, moment) within ``days`` before it,
    strictly before (``recent``: the last weeks' missed payments as (customer, time, amount))."""
    out = np.zeros(customer.shape[0])
    if not recent or not customer.size:
        return out
    ev_c, ev_t, ev_amt = (np.concatenate(x) for x in zip(*recent, strict=True))
    order = np.argsort(ev_c, kind="stable")
    ev_c, ev_t, ev_amt = ev_c[order], ev_t[order], ev_amt[order]
    lo = np.searchsorted(ev_c, customer, "left")
    hi = np.searchsorted(ev_c, customer, "right")
    for i in np.flatnonzero(hi > lo):
        t, a = ev_t[lo[i] : hi[i]], ev_amt[lo[i] : hi[i]]
        out[i] = a[(t < moment[i]) & ((moment[i] - t) / DAY <= days)].sum()
    return out


def _check_catalog(catalog: Catalog) -> None:
    for a in catalog.actions:
        if a.product is not None and a.product not in PRODUCTS:
            raise NBAError(
                f"action '{a.id}' sells '{a.product}', which the simulator does "
                f"not know (products: {', '.join(PRODUCTS)})"
            )
        extra = a.expression_names - SIMULATED_EXPRESSION_FEATURES
        if extra:
            raise NBAError(
                "the simulator evaluates value and cost expressions over "
                f"{' and '.join(sorted(SIMULATED_EXPRESSION_FEATURES))} only; action "
                f"'{a.id}' uses {', '.join(sorted(extra))}"
            )


def simulate_world(
    config: SimulationConfig,
    catalog: Catalog | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> World:
    """Run the simulation in memory. ``progress(week, weeks)`` is called once per week."""
    config.validate()
    catalog = catalog or load_catalog()
    _check_catalog(catalog)
    rng = np.random.default_rng(config.seed)
    n, n_weeks = config.customers, config.weeks
    train_weeks = n_weeks - config.holdout_weeks
    n_prod = len(PRODUCTS)
    pidx = {p: i for i, p in enumerate(PRODUCTS)}
    fees = np.array([FEES[p] for p in PRODUCTS])
    families = np.array([a.family for a in catalog.actions])
    n_act = len(catalog.actions)
    act_product = np.array([pidx[a.product] if a.product else -1 for a in catalog.actions])
    act_channels = [set(a.channels) for a in catalog.actions]

    # --- static traits -----------------------------------------------------------------
    base_stress = rng.beta(1.5, 5.0, n)
    base_dissat = rng.beta(1.5, 6.0, n)
    digital = rng.beta(2.0, 2.0, n)
    is_business = rng.random(n) < 0.15
    birth_year = rng.integers(1945, 2005, n)
    age = 2025 - birth_year
    # Needs follow traits that leave traces (logins, age, segment, device purchases), plus
    # individual noise: a model can learn them from the history, not read them off.
    need = 0.35 * rng.beta(1.2, 3.0, (n, n_prod))
    need[:, pidx["broadband"]] += 0.6 * digital**1.5
    need[:, pidx["mobile_plus"]] += 0.45 * is_business + 0.3 * digital
    need[:, pidx["tv_stream"]] += 0.5 * (age > 55) + 0.15 * (1 - digital)
    need[:, pidx["device_insurance"]] += 0.45 * rng.random(n)
    np.clip(need, 0.0, 1.0, out=need)
    region = rng.integers(0, len(REGIONS), n)
    region_null = rng.random(n) < 0.02
    birth_null = rng.random(n) < 0.05

    existing = rng.random(n) < 0.85
    signup = np.where(
        existing,
        -(30 + rng.exponential(1500.0, n)) * DAY,
        rng.random(n) * (train_weeks - 1) * WEEK,
    )
    signup = np.round(signup)

    # Holdings: a mobile plan for most, then extras.
    holds = np.zeros((n, n_prod), dtype=bool)
    mobile = rng.random(n)
    holds[:, pidx["mobile_basic"]] = mobile < 0.55
    holds[:, pidx["mobile_plus"]] = (mobile >= 0.55) & (mobile < 0.9)
    holds[:, pidx["broadband"]] = rng.random(n) < 0.45
    holds[:, pidx["tv_stream"]] = rng.random(n) < 0.2
    holds[:, pidx["device_insurance"]] = rng.random(n) < 0.15
    none_held = ~holds.any(axis=1)
    holds[none_held, pidx["mobile_basic"]] = True
    need[holds] = 0.0
    first_day = np.maximum(signup, 0.0)
    start_time = np.where(
        holds, signup[:, None] + rng.random((n, n_prod)) * (first_day - signup)[:, None], np.nan
    )
    start_time = np.round(start_time)

    email_known0 = rng.random(n) < 0.25 + 0.55 * digital
    email_since = np.where(
        email_known0, np.round(signup + rng.random(n) * (first_day - signup)), np.nan
    )

    # --- dynamic state -----------------------------------------------------------------
    alive = np.ones(n, dtype=bool)
    st = dyn.State(
        base_stress=base_stress,
        base_dissat=base_dissat,
        episode=rng.random(n) < base_stress * 0.3,
        relief=np.zeros(n),
        shock=np.zeros(n),
        leaving=np.zeros(n, dtype=bool),
    )
    churn_time = np.full(n, np.nan)

    interactions, decisions, contacts, truth = _Log(), _Log(), _Log(), _Log()
    held_out: list[HeldOut] = []
    recent_missed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    contract_rows = _Log()
    svc_type_codes = np.arange(len(SERVICE_TYPES))

    def end_contracts(rows: np.ndarray, cols: np.ndarray, when: np.ndarray) -> None:
        # A product sold earlier in the same week cannot end before it started.
        starts = start_time[rows, cols]
        contract_rows.add(c=rows, p=cols, start=starts, end=np.fmax(when, starts))
        holds[rows, cols] = False
        start_time[rows, cols] = np.nan

    warm = config.history_weeks
    for w in range(-warm, n_weeks):
        if progress:
            progress(w + warm, n_weeks + warm)
        t0 = w * WEEK
        active = alive & (signup <= t0)

        # Latent dynamics.
        dyn.week_step(st, rng.random(n), rng.random(n), rng.random(n), rng.random(n))
        stress, dissat = st.stress, st.dissat
        monthly_fees = (holds * fees).sum(axis=1)

        # Events.
        rates = {
            "login": 0.9 * digital**2,
            "inquiry": 0.03 + 0.06 * need.max(axis=1),
            "complaint": 0.01 + 0.3 * dissat**2,
            "cancellation_request": dyn.cancellation_rate(dissat),
            "billing_question": 0.015 + 0.15 * stress,
            "purchase": 0.004 + 0.06 * need[:, pidx["device_insurance"]] + 0.01 * digital,
            "contract_change": 0.006 + 0.0 * digital,
        }
        due = active & (rng.random(n) < 7.0 / 30.44)
        missed = due & (rng.random(n) < 0.02 + 0.55 * stress**2)
        cust_parts, type_parts = [], []
        for typ, rate in rates.items():
            k = rng.poisson(rate * active)
            cust_parts.append(np.repeat(np.arange(n), k))
            type_parts.append(np.full(int(k.sum()), typ, dtype=object))
        pay_c = np.flatnonzero(due)
        cust_parts.append(pay_c)
        type_parts.append(np.where(missed[pay_c], "missed_payment", "payment").astype(object))
        ev_c = np.concatenate(cust_parts)
        ev_type = np.concatenate(type_parts)
        m_ev = ev_c.shape[0]
        ev_t = np.round(t0 + rng.random(m_ev) * WEEK)
        g = digital[ev_c]
        ev_channel = np.empty(m_ev, dtype=object)
        is_login = ev_type == "login"
        ev_channel[is_login] = np.where(rng.random(int(is_login.sum())) < 0.6, "app", "web")
        is_pay = (ev_type == "payment") | (ev_type == "missed_payment")
        u = rng.random(int(is_pay.sum()))
        gp = g[is_pay]
        ev_channel[is_pay] = np.where(u < 0.5 * gp, "app", np.where(u < 0.8 * gp, "web", "letter"))
        is_buy = ev_type == "purchase"
        ev_channel[is_buy] = np.array(["web", "app", "branch"], dtype=object)[
            _choice_by_weights(
                rng, np.stack([0.4 * g[is_buy], 0.4 * g[is_buy], 1.0 - 0.8 * g[is_buy]], axis=1)
            )
        ]
        is_svc = ~(is_login | is_pay | is_buy)
        gs = g[is_svc]
        svc_w = np.stack(
            [
                0.45 - 0.25 * gs,
                0.05 + 0.25 * gs,
                np.full_like(gs, 0.1),
                0.1 * gs,
                0.05 * gs,
                0.15 - 0.1 * gs,
                0.05 - 0.05 * gs + 1e-6,
            ],
            axis=1,
        )
        ev_channel[is_svc] = np.array(SERVICE_CHANNELS, dtype=object)[
            _choice_by_weights(rng, svc_w)
        ]
        ev_amount = np.full(m_ev, np.nan)
        ev_amount[is_pay] = monthly_fees[ev_c[is_pay]]
        ev_amount[is_buy] = np.round(rng.lognormal(4.0, 0.8, int(is_buy.sum())), 2)
        human = is_svc & np.isin(ev_channel, ("phone", "chat", "email", "branch", "letter"))
        known = human & (rng.random(m_ev) < 0.6)
        mood = (
            0.45
            - 1.2 * dissat[ev_c]
            - 0.3 * stress[ev_c]
            - 0.3 * (ev_type == "complaint")
            - 0.3 * (ev_type == "cancellation_request")
        )
        sent = np.clip(mood + rng.normal(0.0, 0.25, m_ev), -1.0, 1.0)
        ev_sent = np.where(known, np.round(sent, 3), np.nan)
        interactions.add(
            c=ev_c, t=ev_t, channel=ev_channel, type=ev_type, amount=ev_amount, sentiment=ev_sent
        )
        asked = np.zeros(n, dtype=bool)
        asked[ev_c[ev_type == "cancellation_request"]] = True
        dyn.ask_or_reconsider(st, asked, rng.random(n))
        is_missed = ev_type == "missed_payment"
        recent_missed = [
            *recent_missed[-14:],
            (ev_c[is_missed], ev_t[is_missed], ev_amount[is_missed]),
        ]

        # Agent contacts: a decision (training weeks) or a held-out contact.
        is_contact = is_svc & np.isin(ev_channel, AGENT_CHANNELS)
        k_idx = np.flatnonzero(is_contact)
        k_idx = k_idx[np.lexsort((ev_c[k_idx], ev_t[k_idx]))]
        kc, kt = ev_c[k_idx], ev_t[k_idx]
        kch, kreason = ev_channel[k_idx], ev_type[k_idx]
        elig = np.ones((kc.shape[0], n_act), dtype=bool)
        email_unknown = np.isnan(email_since[kc]) | (email_since[kc] > kt)
        for j, a in enumerate(catalog.actions):
            elig[:, j] &= np.isin(kch, list(act_channels[j]))
            if a.family == "information_request":
                elig[:, j] &= email_unknown
            if act_product[j] >= 0:
                elig[:, j] &= ~holds[kc, act_product[j]]
        state = ContactState(
            stress[kc],
            dissat[kc],
            digital[kc],
            need[kc],
            PRODUCTS,
            kreason.astype(str),
            kch.astype(str),
        )
        p_true = acceptance_probability(state, catalog)
        missed_90d = _missed_before(recent_missed, kc, kt) if w >= 0 else np.zeros(kc.shape[0])
        if w < 0:
            pass  # history before the decision log: contacts without logged decisions
        elif w >= train_weeks:
            contacts.add(
                c=kc, t=kt, channel=kch, reason=kreason, fees=monthly_fees[kc], missed=missed_90d
            )
            truth.add(p=p_true, elig=elig, c=kc)
            held_out.append(HeldOut(st.take(kc), kt, t0, monthly_fees[kc], p_true))
        else:
            n_elig = elig.sum(axis=1)
            ok = n_elig > 0
            kc, kt, kch, elig, p_true, n_elig, missed_90d = (
                x[ok] for x in (kc, kt, kch, elig, p_true, n_elig, missed_90d)
            )
            m = kc.shape[0]
            r = np.floor(rng.random(m) * n_elig)
            uniform_pick = np.argmax(np.cumsum(elig, axis=1) > r[:, None], axis=1)
            legacy = elig & (families == "product_offer")
            has_legacy = legacy.any(axis=1)
            legacy_pick = np.argmax(legacy, axis=1)
            explore = rng.random(m) < config.exploration
            choice = np.where(explore | ~has_legacy, uniform_pick, legacy_pick)
            eps = config.exploration
            presented = 1.0 - config.nothing_share
            propensity = presented * np.where(
                has_legacy, eps / n_elig + (1 - eps) * (choice == legacy_pick), 1.0 / n_elig
            )
            nothing = rng.random(m) < config.nothing_share
            choice = np.where(nothing, n_act, choice)  # n_act: the logged 'no_action'
            propensity = np.where(nothing, config.nothing_share, propensity)
            p = np.where(nothing, 0.0, p_true[np.arange(m), np.minimum(choice, n_act - 1)])
            u = rng.random(m)
            accepted = u < p
            declined = ~accepted & ~nothing & (rng.random(m) < 0.65)
            decisions.add(
                c=kc,
                t=kt,
                channel=kch,
                action=choice,
                accepted=accepted,
                declined=declined,
                propensity=propensity,
                fees=monthly_fees[kc],
                missed=missed_90d,
            )
            # Feedback into the world.
            fam = np.append(families, "nothing")[choice]
            acc = accepted
            inst = np.unique(kc[acc & (fam == "installment_offer")])
            dyn.installment_accepted(st, inst, np.asarray(rng.random(inst.shape[0])))
            ret = np.unique(kc[acc & (fam == "retention_gesture")])
            dyn.retention_accepted(st, ret)
            info = acc & (fam == "information_request")
            # The address is noted a minute after it is asked for, so the profile at the
            # contact itself still shows it unknown (no label leakage). fmin ignores NaN.
            email_since[kc[info]] = np.fmin(email_since[kc[info]], kt[info] + 60.0)
            sold = acc & (fam == "product_offer")
            for c, j, t in zip(kc[sold], choice[sold], kt[sold], strict=True):
                k = act_product[j]
                if not holds[c, k]:
                    holds[c, k] = True
                    start_time[c, k] = t
                    need[c, k] = 0.0
            dyn.product_declined(st, kc[declined & (fam == "product_offer")])

        # Churn: unhappy or struggling customers leave, and above all those who asked to
        # cancel and were not kept.
        churn = active & (rng.random(n) < dyn.churn_hazard(st))
        churn_idx = np.flatnonzero(churn)
        when = np.round(t0 + rng.random(churn_idx.shape[0]) * WEEK)
        rows, cols = np.nonzero(holds[churn_idx])
        end_contracts(churn_idx[rows], cols, when[rows])
        alive[churn_idx] = False
        churn_time[churn_idx] = when

    if progress:
        progress(n_weeks + warm, n_weeks + warm)
    # Contracts still open at the end have no end date.
    rows, cols = np.nonzero(holds)
    contract_rows.add(
        c=rows, p=cols, start=start_time[rows, cols], end=np.full(rows.shape[0], np.nan)
    )

    revenue = np.where(
        alive, np.round((holds * fees).sum(axis=1) * rng.uniform(0.9, 1.3, n), 2), 0.0
    )
    return _assemble(config, catalog, locals())


def _ts(seconds: np.ndarray, start: np.datetime64) -> pa.Array:
    """Seconds since ``start`` (NaN = null) as a UTC timestamp array."""
    mask = np.isnan(seconds)
    vals = start + np.where(mask, 0, seconds).astype("int64").astype("timedelta64[s]")
    return pa.array(vals.astype("datetime64[us]"), mask=mask).cast(pa.timestamp("us", tz="UTC"))


def _assemble(config: SimulationConfig, catalog: Catalog, v: dict[str, Any]) -> World:
    """Turn the simulation's arrays (``v``: the local state of :func:`simulate_world`, by
    name) into the contract's tables, sorted and typed, plus the truth tables."""
    n = config.customers
    start = np.datetime64(config.start, "s")
    width = max(6, len(str(n)))
    cust_ids = np.array([f"C{i:0{width}d}" for i in range(n)], dtype=object)
    action_ids = np.array(catalog.ids, dtype=object)
    n_act = len(catalog.actions)

    customers = pa.table(
        {
            "customer_id": pa.array(cust_ids, pa.string()),
            "signup_date": _ts(v["signup"], start),
            "birth_year": pa.array(v["birth_year"], mask=v["birth_null"], type=pa.int64()),
            "region": pa.array(
                np.array(REGIONS, dtype=object)[v["region"]],
                mask=v["region_null"],
                type=pa.string(),
            ),
            "segment": pa.array(np.where(v["is_business"], "business", "private"), pa.string()),
            "email_since": _ts(v["email_since"], start),
            "monthly_revenue": pa.array(v["revenue"], pa.float64()),
        }
    )

    cr: _Log = v["contract_rows"]
    c_c, c_p = cr.get("c", "int64").astype(int), cr.get("p", "int64").astype(int)
    c_start, c_end = cr.get("start", "float64"), cr.get("end", "float64")
    order = np.lexsort((c_p, c_start, c_c))
    fees = np.array([FEES[p] for p in PRODUCTS])
    contracts = pa.table(
        {
            "customer_id": pa.array(cust_ids[c_c[order]], pa.string()),
            "product": pa.array(np.array(PRODUCTS, dtype=object)[c_p[order]], pa.string()),
            "start_date": _ts(c_start[order], start),
            "end_date": _ts(c_end[order], start),
            "monthly_fee": pa.array(fees[c_p[order]], pa.float64()),
        }
    )

    it: _Log = v["interactions"]
    i_c, i_t = it.get("c", "int64").astype(int), it.get("t", "float64")
    order = np.lexsort((it.get("type", object), i_t, i_c))
    interactions = pa.table(
        {
            "customer_id": pa.array(cust_ids[i_c[order]], pa.string()),
            "timestamp": _ts(i_t[order], start),
            "channel": pa.array(it.get("channel", object)[order], pa.string()),
            "type": pa.array(it.get("type", object)[order], pa.string()),
            "amount": pa.array(it.get("amount", "float64")[order], pa.float64(), from_pandas=True),
            "sentiment": pa.array(
                it.get("sentiment", "float64")[order], pa.float64(), from_pandas=True
            ),
        }
    )

    dl: _Log = v["decisions"]
    d_c, d_t = dl.get("c", "int64").astype(int), dl.get("t", "float64")
    d_a = dl.get("action", "int64").astype(int)
    acc, dec = dl.get("accepted", bool), dl.get("declined", bool)
    d_value, d_cost = _amounts(
        catalog, v["revenue"][d_c], dl.get("fees", "float64"), dl.get("missed", "float64")
    )
    nothing = d_a == n_act
    d_pick = np.minimum(d_a, n_act - 1)
    net = (d_value - d_cost)[np.arange(d_c.shape[0]), d_pick]
    nd = d_c.shape[0]
    decisions = pa.table(
        {
            "decision_id": pa.array([f"D{i:08d}" for i in range(nd)], pa.string()),
            "customer_id": pa.array(cust_ids[d_c], pa.string()),
            "timestamp": _ts(d_t, start),
            "channel": pa.array(dl.get("channel", object), pa.string()),
            "action_id": pa.array(np.append(action_ids, NO_ACTION)[d_a], pa.string()),
            "outcome": pa.array(
                np.where(acc, "accepted", np.where(dec, "declined", "no_response")), pa.string()
            ),
            "propensity": pa.array(np.round(dl.get("propensity", "float64"), 6), pa.float64()),
            "value": pa.array(np.where(acc, np.round(net, 2), 0.0), pa.float64(), mask=nothing),
        }
    )

    ct: _Log = v["contacts"]
    k_c, k_t = ct.get("c", "int64").astype(int), ct.get("t", "float64")
    nk = k_c.shape[0]
    contact_ids = np.array([f"K{i:07d}" for i in range(nk)], dtype=object)
    contacts = pa.table(
        {
            "contact_id": pa.array(contact_ids, pa.string()),
            "customer_id": pa.array(cust_ids[k_c], pa.string()),
            "timestamp": _ts(k_t, start),
            "channel": pa.array(ct.get("channel", object), pa.string()),
            "reason": pa.array(ct.get("reason", object), pa.string()),
        }
    )

    tr: _Log = v["truth"]
    p = tr.get("p", "float64").reshape(nk, n_act)
    elig = tr.get("elig", bool).reshape(nk, n_act) & _contact_policy_allows(
        catalog, k_c, k_t, d_c[~nothing], d_t[~nothing], d_a[~nothing], dec[~nothing]
    )
    gross, cost = _amounts(
        catalog, v["revenue"][k_c], ct.get("fees", "float64"), ct.get("missed", "float64")
    )
    immediate = p * (gross - cost)
    later = expected_outcomes(
        v["held_out"], catalog, catalog.horizon_days, config.rollouts, config.seed
    )
    # One row per contact and action, then one for presenting nothing.
    expected = pa.table(
        {
            "contact_id": pa.array(np.repeat(contact_ids, n_act + 1), pa.string()),
            "action_id": pa.array(np.tile(np.append(action_ids, NO_ACTION), nk), pa.string()),
            "family": pa.array(
                np.tile([*(a.family for a in catalog.actions), "nothing"], nk), pa.string()
            ),
            "eligible": pa.array(_with_nothing(elig, True).ravel(), pa.bool_()),
            "p_accept": pa.array(_with_nothing(p, 0.0).ravel(), pa.float64()),
            "value": pa.array(_with_nothing(gross, 0.0).ravel(), pa.float64()),
            "cost": pa.array(_with_nothing(cost, 0.0).ravel(), pa.float64()),
            "expected_net_value": pa.array(_with_nothing(immediate, 0.0).ravel(), pa.float64()),
            "expected_revenue": pa.array(later.revenue.ravel(), pa.float64()),
            "expected_total": pa.array(
                (_with_nothing(immediate, 0.0) + later.revenue).ravel(), pa.float64()
            ),
            "mc_se": pa.array(later.se_vs_nothing.ravel(), pa.float64()),
        }
    )
    need = v["need"]
    latent = pa.table(
        {
            "customer_id": pa.array(cust_ids, pa.string()),
            "base_stress": v["base_stress"],
            "base_dissatisfaction": v["base_dissat"],
            "digital_affinity": v["digital"],
            **{f"need_{p}": need[:, i] for i, p in enumerate(PRODUCTS)},
            "churned_at": _ts(v["churn_time"], start),
        }
    )
    summary: dict[str, int | float] = {
        "customers": n,
        "weeks": config.weeks,
        "contracts": contracts.num_rows,
        "interactions": interactions.num_rows,
        "decisions": nd,
        "accepted": int(acc.sum()),
        "no_action_decisions": int(nothing.sum()),
        "held_out_contacts": nk,
        "churned": int((~v["alive"]).sum()),
        "truth_rollouts": config.rollouts,
        "truth_mc_se_mean": float(later.se_vs_nothing[:, :-1].mean()) if nk else 0.0,
    }
    return World(
        tables={
            "customers": customers,
            "contracts": contracts,
            "interactions": interactions,
            "decisions": decisions,
            "contacts": contacts,
        },
        truth={"expected_value": expected, "latent": latent},
        summary=summary,
    )


def _with_nothing(a: np.ndarray, fill: object) -> np.ndarray:
    """``a`` (shape ``(n, n_actions)``) with one more column for nothing."""
    return np.hstack([a, np.full((a.shape[0], 1), fill, dtype=a.dtype)])


def _contact_policy_allows(
    catalog: Catalog,
    contact_customer: np.ndarray,
    contact_time: np.ndarray,
    dec_customer: np.ndarray,
    dec_time: np.ndarray,
    dec_action: np.ndarray,
    dec_declined: np.ndarray,
) -> np.ndarray:
    """Which actions each held-out contact may get under the catalog's contact policy,
    counting the logged decisions as the engine does. Shape ``(n_contacts, n_actions)``."""
    n_contacts = contact_customer.shape[0]
    allowed = np.ones((n_contacts, len(catalog.actions)), dtype=bool)
    if n_contacts == 0 or dec_customer.shape[0] == 0:
        return allowed
    contacts = pd.DataFrame(
        {"k": np.arange(n_contacts), "c": contact_customer, "t_contact": contact_time}
    )
    log = pd.DataFrame(
        {"c": dec_customer, "t_dec": dec_time, "a": dec_action, "declined": dec_declined}
    )
    pairs = contacts.merge(log, on="c")
    pairs = pairs[pairs.t_dec < pairs.t_contact]
    age = (pairs.t_contact - pairs.t_dec) / DAY
    for j, action in enumerate(catalog.actions):
        cp = action.contact_policy
        mine = pairs.a == j
        if cp.max_offers is not None and cp.window_days is not None:
            offers = pairs[mine & (age <= cp.window_days)].groupby("k").size()
            allowed[offers.index[offers >= cp.max_offers].to_numpy(), j] = False
        if cp.suppress_after_declines is not None and cp.suppress_days is not None:
            sel = mine & pairs.declined & (age <= cp.suppress_days)
            declines = pairs[sel].groupby("k").size()
            allowed[declines.index[declines >= cp.suppress_after_declines].to_numpy(), j] = False
    return allowed


def write_world(
    world: World,
    out: Path,
    config: SimulationConfig,
    catalog_source: str,
    fmt: Literal["parquet", "csv"] = "parquet",
) -> list[Path]:
    """Write the tables, the catalog used and ``truth/`` to ``out``; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    written: list[Path] = []
    for name, table in world.tables.items():
        for stale in (out / f"{name}.parquet", out / f"{name}.csv"):
            stale.unlink(missing_ok=True)
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            pacsv.write_csv(table, path)
        else:
            pq.write_table(table, path, compression="zstd")
        written.append(path)
    for name, table in world.truth.items():
        path = out / "truth" / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        written.append(path)
    (out / "actions.yaml").write_text(Path(catalog_source).read_text(encoding="utf-8"))
    written.append(out / "actions.yaml")
    meta = {
        "config": asdict(config),
        "summary": world.summary,
        "note": "truth/ is the simulator's ground truth; the engine never reads it.",
    }
    path = out / "truth" / "simulation.json"
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written
