"""Which action to show: exploit, explore, or (for the control group) pick at random.

The policy ranks a contact's candidates (eligible actions worth offering, best first). A
purely greedy engine always shows the top one, so it never learns what the others would
have done, and its log cannot evaluate another policy. Here the shown action is *drawn*
from a distribution over the candidates, and the probability of the drawn action is
logged with the decision: every logged decision is then usable for off-policy evaluation
and unbiased retraining (:mod:`nba.ope`).

Modes (``NBA_EXPLORATION``):

- ``off``: the top candidate with probability 1;
- ``epsilon``: the top candidate with 1 - epsilon, otherwise a uniformly random candidate
  (so the top one has 1 - epsilon + epsilon / K);
- ``thompson``: each candidate's acceptance probability is drawn from a Beta distribution
  around its calibrated propensity (``thompson_strength`` pseudo-observations), the
  candidate with the best drawn priority wins. Its exact probability has no closed form,
  so it is estimated with a fixed number of draws and the shown action is then drawn from
  that estimate: the logged probability is exactly the one used. A floor keeps every
  candidate possible, which OPE needs.

The **control group** is a share of customers, stable by a hash of the customer id, who
get a uniformly random eligible action instead of the NBA (probability 1 / K), flagged in
the log: the baseline against which the NBA's lift is measured.

The **challenger arm** (``NBA_CHALLENGER_SHARE``, off by default) is the next share of
customers by the same hash: they are served by ``@challenger`` instead of ``@champion``,
with the same exploration, and flagged ``challenger`` in the log, so the promotion gate
can compare the two policies on their own traffic (:mod:`pipelines.evaluate`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nba.exceptions import NBAError

Mode = Literal["off", "epsilon", "thompson"]
Arm = Literal["nba", "challenger", "control"]
"""``nba``: served by the champion."""
MODES: tuple[Mode, ...] = ("off", "epsilon", "thompson")


class ExplorationError(NBAError):
    """A malformed exploration setting."""


@dataclass(frozen=True)
class Exploration:
    mode: Mode = "off"
    epsilon: float = 0.1
    thompson_strength: float = 200.0
    """Pseudo-observations behind a propensity: more means less exploration."""
    thompson_draws: int = 256
    floor: float = 0.01
    """Least probability of any candidate under Thompson sampling, divided by K."""
    control_share: float = 0.0
    challenger_share: float = 0.0
    salt: str = "nba-control"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ExplorationError(f"exploration mode must be one of {MODES}, not {self.mode!r}")
        for name, v, lo, hi in (
            ("epsilon", self.epsilon, 0.0, 1.0),
            ("control share", self.control_share, 0.0, 1.0),
            ("challenger share", self.challenger_share, 0.0, 1.0),
            ("floor", self.floor, 0.0, 1.0),
        ):
            if not lo <= v <= hi:
                raise ExplorationError(f"{name} must be between {lo} and {hi}, got {v}")
        if self.control_share + self.challenger_share > 1:
            raise ExplorationError(
                f"control share {self.control_share} and challenger share "
                f"{self.challenger_share} add up to more than 1"
            )
        if not self.thompson_strength > 0 or self.thompson_draws < 1:
            raise ExplorationError("thompson strength must be > 0 and draws >= 1")


@dataclass(frozen=True)
class Choice:
    index: int
    """Position of the shown action among the candidates (-1: nothing to show)."""
    probability: float
    """Exact probability with which it was chosen."""
    arm: Arm
    distribution: np.ndarray
    """Probability of every candidate."""


def _position(customer_id: str, config: Exploration) -> float:
    digest = hashlib.sha256(f"{config.salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(customer_id: str, config: Exploration) -> Arm:
    """Stable assignment by a hash of the customer id: the control group first, then the
    challenger's share, the rest served by the champion. The control group is the same
    with or without challenger traffic."""
    if config.control_share <= 0 and config.challenger_share <= 0:
        return "nba"
    u = _position(customer_id, config)
    if u < config.control_share:
        return "control"
    if u < config.control_share + config.challenger_share:
        return "challenger"
    return "nba"


def in_control(customer_id: str, config: Exploration) -> bool:
    """Stable assignment: the same customer is always in (or out of) the control group."""
    return assign_arm(customer_id, config) == "control"


def distribution(
    propensity: np.ndarray, net_value: np.ndarray, config: Exploration, rng: np.random.Generator
) -> np.ndarray:
    """Probability of showing each candidate (given best first), under the NBA arm."""
    k = len(propensity)
    if k == 0:
        return np.zeros(0)
    if config.mode == "off" or k == 1:
        out = np.zeros(k)
        out[0] = 1.0
        return out
    if config.mode == "epsilon":
        out = np.full(k, config.epsilon / k)
        out[0] += 1.0 - config.epsilon
        return out
    p = np.clip(np.asarray(propensity, dtype=float), 1e-6, 1 - 1e-6)
    n = config.thompson_strength
    draws = rng.beta(p * n, (1 - p) * n, size=(config.thompson_draws, k))
    wins = np.bincount(np.argmax(draws * np.asarray(net_value), axis=1), minlength=k)
    out = wins / config.thompson_draws
    return (1 - config.floor) * out + config.floor / k


def choose(
    customer_id: str,
    propensity: np.ndarray,
    net_value: np.ndarray,
    config: Exploration,
    rng: np.random.Generator,
) -> Choice:
    """Draw the candidate to show. ``propensity``/``net_value`` are the candidates', best
    first (for a control-group customer: every eligible action's, each equally likely;
    for a challenger-arm customer: the challenger's candidates)."""
    k = len(propensity)
    arm = assign_arm(customer_id, config)
    if k == 0:
        return Choice(-1, 1.0, arm, np.zeros(0))
    if arm == "control":
        dist = np.full(k, 1.0 / k)
    else:
        dist = distribution(propensity, net_value, config, rng)
    index = int(rng.choice(k, p=dist)) if dist[0] < 1.0 else 0
    return Choice(index, float(dist[index]), arm, dist)


def shown_order(n: int, index: int) -> list[int]:
    """Positions of ``n`` ranked candidates in the order shown: the drawn one (``index``)
    first, the others keeping their rank."""
    if index <= 0:
        return list(range(n))
    return [index, *range(index), *range(index + 1, n)]
