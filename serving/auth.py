"""A limit on failed API keys per client address: after ``limit`` failures within a
minute, the address gets 429 (with Retry-After) until the oldest failure is a minute old.
Guessing a 256-bit secret is hopeless anyway; the limit keeps a scanner from filling the
logs and the database with lookups."""

from __future__ import annotations

import time
from collections import OrderedDict, deque

WINDOW_SECONDS = 60.0
_MAX_ADDRESSES = 10_000  # memory bound under a spray from many addresses


class FailedKeys:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - WINDOW_SECONDS:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def blocked_for(self, address: str, now: float | None = None) -> float:
        """Seconds until this address may try a key again (0: now)."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        failures = self._recent(address, now)
        if len(failures) < self.limit:
            return 0.0
        return max(failures[0] + WINDOW_SECONDS - now, 0.0)

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        failures = self._failures.setdefault(address, deque(maxlen=max(self.limit, 1)))
        self._failures.move_to_end(address)
        failures.append(now)
        while len(self._failures) > _MAX_ADDRESSES:
            self._failures.popitem(last=False)
