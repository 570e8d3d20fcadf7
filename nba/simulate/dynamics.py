"""How a simulated customer's hidden state moves from week to week, and when they leave.

One set of functions serves the world's main run (:mod:`nba.simulate.world`) and the
Monte Carlo rollouts of its ground truth (:mod:`nba.simulate.truth`), so the truth is the
world's own behaviour, not a second model of it. Every function takes its random numbers
as arguments (uniforms in [0, 1)), so the rollouts can share them across actions (common
random numbers) while the main run draws them from its one generator.

The effects of what agents do (sizes chosen to be those of a real contact centre, no
larger):

- a customer who asks to cancel is *leaving*: about a fifth leave each week, most within
  two months, unless a retention gesture is accepted (a few change their mind anyway);
- an accepted retention gesture calms the customer (dissatisfaction falls) and stops the
  leaving; to a customer who would have stayed it is mostly cost;
- a product offer declined by an unhappy or stressed customer angers them further
  ("sleeping dogs"): dissatisfaction rises, and with it complaints and churn;
- an accepted installment offer eases financial stress, and with it the churn of customers
  who cannot pay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEAVING_HAZARD = 0.2
"""Weekly chance that a customer who asked to cancel leaves."""
CHANGE_OF_MIND = 0.04
"""Weekly chance that a leaving customer decides to stay after all."""
RETENTION_CALM = 0.4
INSTALLMENT_RELIEF = 0.35
BACKFIRE_SHOCK = 0.12
ANNOYANCE_SHOCK = 0.04
"""A declined product offer annoys anyone a little; unhappy or stressed customers a lot."""
UNHAPPY = 0.45
TOUCHY = 0.35
STRESSED = 0.5


@dataclass
class State:
    """The hidden state that drives churn; arrays of one shape (customers, or rollouts)."""

    base_stress: np.ndarray
    base_dissat: np.ndarray
    episode: np.ndarray
    relief: np.ndarray
    shock: np.ndarray
    leaving: np.ndarray

    def copy(self) -> State:
        return State(*(np.array(a, copy=True) for a in self.__dict__.values()))

    def take(self, rows: np.ndarray, dtype: type | None = None) -> State:
        """A copy of the given rows (rows may repeat); numbers in ``dtype`` if given."""
        parts = (a[rows] for a in self.__dict__.values())
        if dtype is None:
            return State(*parts)
        return State(*(a if a.dtype == bool else a.astype(dtype) for a in parts))

    @property
    def stress(self) -> np.ndarray:
        out: np.ndarray = np.clip(self.base_stress + 0.45 * self.episode - self.relief, 0.0, 1.0)
        return out

    @property
    def dissat(self) -> np.ndarray:
        out: np.ndarray = np.clip(self.base_dissat + self.shock, 0.0, 1.0)
        return out


def week_step(
    s: State, u_on: np.ndarray, u_off: np.ndarray, u_incident: np.ndarray, size: np.ndarray
) -> None:
    """One week of latent dynamics, in place: stress episodes start and end, relief fades,
    incidents shock the customer and the shock fades. ``size`` is uniform in [0, 1)."""
    on = u_on < 0.008 + 0.04 * s.base_stress
    off = u_off < 0.08
    s.episode = np.where(s.episode, ~off, on)
    s.relief = s.relief * 0.92
    incident = (u_incident < 0.015 + 0.05 * s.base_dissat) * (0.2 + 0.3 * size)
    s.shock = 0.85 * s.shock + incident


def cancellation_rate(dissat: np.ndarray) -> np.ndarray:
    """Expected cancellation requests per week."""
    out: np.ndarray = 0.25 * np.clip(dissat - UNHAPPY, 0.0, 1.0)
    return out


def ask_or_reconsider(s: State, asked: np.ndarray, u_mind: np.ndarray) -> None:
    """A cancellation request makes the customer leaving; some leaving ones reconsider."""
    s.leaving = (s.leaving & ~(u_mind < CHANGE_OF_MIND)) | asked


def churn_hazard(s: State) -> np.ndarray:
    """Weekly chance of leaving: a small base rate, dissatisfaction, payment trouble
    (contracts ended for non-payment), and above all an open cancellation request."""
    unhappy = np.clip(s.dissat - UNHAPPY, 0.0, 1.0)
    out: np.ndarray = (
        0.0008
        + 0.04 * unhappy * np.sqrt(np.sqrt(unhappy))  # x ** 1.25, several times faster
        + 0.03 * np.clip(s.stress - 0.5, 0.0, 1.0)
        + LEAVING_HAZARD * s.leaving
    )
    return out


def retention_accepted(s: State, rows: np.ndarray) -> None:
    s.shock[rows] -= RETENTION_CALM
    s.leaving[rows] = False


def installment_accepted(s: State, rows: np.ndarray, u_clear: np.ndarray) -> None:
    """``u_clear`` (one per row) decides whether the stress episode ends (half the time)."""
    s.relief[rows] += INSTALLMENT_RELIEF
    s.episode[rows] &= u_clear >= 0.5


def backfires(s: State) -> np.ndarray:
    """Who a declined product offer angers: unhappy or stressed customers."""
    out: np.ndarray = (s.dissat > TOUCHY) | (s.stress > STRESSED)
    return out


def product_declined(s: State, rows: np.ndarray) -> None:
    """A declined product offer: annoyance, anger for those it backfires on. Rows may
    repeat (several declines in a week add up)."""
    shock = np.where(backfires(s)[rows], BACKFIRE_SHOCK, ANNOYANCE_SHOCK)
    np.add.at(s.shock, rows, shock)
